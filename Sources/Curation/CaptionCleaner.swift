import Foundation
import Statistics

/// Cleans captions for training text:
/// 1. NFC normalisation (decomposed Hangul from some editors becomes precomposed syllables);
/// 2. control characters (Unicode category Cc) and the invisible U+200B ZERO WIDTH SPACE and
///    U+FEFF BYTE ORDER MARK are removed; tab, line and paragraph breaks count as white space;
/// 3. every run of White_Space becomes one ASCII space, and both ends are trimmed;
/// 4. optionally, truncation to a length limit in characters (Unicode scalars, as `analyze`
///    counts them): at the last space within the final 20% of the limit, so that no word is cut,
///    otherwise at the limit, moved back to a grapheme boundary so that no emoji or jamo
///    sequence is split.
public struct CaptionCleaner: Sendable {
    public var truncateTo: Int?

    public init(truncateTo: Int? = nil) {
        self.truncateTo = truncateTo
    }

    public struct Cleaned: Sendable, Equatable {
        /// The cleaned caption, truncated when over the limit.
        public var text: String
        /// The cleaned caption before truncation (the same as `text` when not truncated).
        public var untruncated: String
        /// The text differs from the input.
        public var changed: Bool
        /// The text was cut to the length limit.
        public var truncated: Bool
        /// Length in characters before truncation.
        public var lengthBeforeTruncation: Int
    }

    public func clean(_ caption: String) -> Cleaned {
        var text = caption
        var length = 0
        let alreadyClean = text.utf8.withContiguousStorageIfAvailable { Self.isClean($0, length: &length) } ?? false
        if !alreadyClean {
            text = Self.normalise(caption)
            length = text.unicodeScalars.count
        }
        let untruncated = text
        var truncated = false
        if let limit = truncateTo, length > limit {
            text = Self.truncate(text, to: limit)
            truncated = true
        }
        return Cleaned(
            text: text, untruncated: untruncated,
            changed: truncated || (!alreadyClean && !untruncated.utf8.elementsEqual(caption.utf8)),
            truncated: truncated,
            lengthBeforeTruncation: length)
    }

    /// True when the bytes need no change: provably NFC, no control or zero-width characters, no
    /// white space other than single ASCII spaces between non-space characters. Counts scalars.
    static func isClean(_ bytes: UnsafeBufferPointer<UInt8>, length: inout Int) -> Bool {
        guard let first = bytes.first, let last = bytes.last, first != 0x20, last != 0x20 else { return bytes.isEmpty }
        var previousSpace = false
        var count = 0
        var i = 0
        let n = bytes.count
        while i < n {
            let lead = bytes[i]
            if lead < 0x80 {
                if lead < 0x20 || lead == 0x7F { return false }
                if lead == 0x20 {
                    if previousSpace { return false }
                    previousSpace = true
                } else {
                    previousSpace = false
                }
                i += 1
                count += 1
                continue
            }
            previousSpace = false
            var value: UInt32
            var width: Int
            if lead < 0xE0 {
                guard i + 1 < n else { return false }
                value = (UInt32(lead & 0x1F) << 6) | UInt32(bytes[i + 1] & 0x3F)
                width = 2
            } else if lead < 0xF0 {
                guard i + 2 < n else { return false }
                value = (UInt32(lead & 0x0F) << 12) | (UInt32(bytes[i + 1] & 0x3F) << 6) | UInt32(bytes[i + 2] & 0x3F)
                width = 3
            } else {
                guard i + 3 < n else { return false }
                value =
                    (UInt32(lead & 0x07) << 18) | (UInt32(bytes[i + 1] & 0x3F) << 12)
                    | (UInt32(bytes[i + 2] & 0x3F) << 6) | UInt32(bytes[i + 3] & 0x3F)
                width = 4
            }
            // C1 controls, White_Space other than U+0020, zero-width space, BOM, or not provably NFC.
            if value < 0xA0 || CaptionText.isWhiteSpace(value) || value == 0x200B || value == 0xFEFF { return false }
            if !CaptionText.isNFCSafe(value) { return false }
            i += width
            count += 1
        }
        length = count
        return true
    }

    /// The slow path: NFC, then controls out and white space collapsed.
    static func normalise(_ caption: String) -> String {
        let nfc = caption.precomposedStringWithCanonicalMapping
        var out = String.UnicodeScalarView()
        var pendingSpace = false
        for scalar in nfc.unicodeScalars {
            let value = scalar.value
            if CaptionText.isWhiteSpace(value) {
                pendingSpace = !out.isEmpty
                continue
            }
            if scalar.properties.generalCategory == .control || value == 0x200B || value == 0xFEFF { continue }
            if pendingSpace {
                out.append(" ")
                pendingSpace = false
            }
            out.append(scalar)
        }
        return String(out)
    }

    /// Cuts a clean caption to at most `limit` scalars (see the type's documentation).
    static func truncate(_ text: String, to limit: Int) -> String {
        let scalars = Array(text.unicodeScalars)
        guard scalars.count > limit else { return text }
        // A space at index i means the first i scalars are whole words.
        let floor = Int((Double(limit) * 0.8).rounded(.up))
        var cut = limit
        var index = limit
        while index >= max(floor, 1) {
            if scalars[index] == " " {
                cut = index
                break
            }
            index -= 1
        }
        if cut == limit && scalars[limit] != " " {
            // No space near the limit: cut at the last grapheme boundary at or before it.
            var boundary = 0
            var position = 0
            for character in text {
                let next = position + character.unicodeScalars.count
                if next > limit { break }
                position = next
                boundary = position
            }
            cut = boundary
        }
        var view = String.UnicodeScalarView(scalars[..<cut])
        while let last = view.last, last == " " { view.removeLast() }
        return String(view)
    }
}
