import Foundation

/// What one caption contributes to the statistics.
struct CaptionMeasure {
    /// Unicode scalars after NFC normalisation and trimming of White_Space at both ends.
    var length: Int
    var words: Int
    var uniqueWords: Int
    /// A 128-bit hash of the caption's word sequence (words as defined below, lower-cased): two
    /// captions that differ only in punctuation, spacing, letter case or normalisation form hash
    /// alike. Built from each word's 64-bit hash, so it costs nothing beyond the word scan.
    var wordSequenceHash: WordSequenceHash
}

/// The 128-bit hash of a caption's normalised word sequence (see `CaptionMetrics`).
public struct WordSequenceHash: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// 32 lowercase hex digits.
    public var description: String { Self.hex(high) + Self.hex(low) }

    public static func < (lhs: WordSequenceHash, rhs: WordSequenceHash) -> Bool { (lhs.high, lhs.low) < (rhs.high, rhs.low) }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Two independent lanes: a multiply-rotate chain and a multiply-xorshift chain over the word
    /// hashes, each position-dependent, so that reordered words hash differently.
    @inline(__always)
    mutating func combine(_ wordHash: UInt64) {
        high = ((high ^ wordHash) &* 0x9E37_79B9_7F4A_7C15)
        high = (high << 27) | (high >> 37)
        var mixed = (low &+ wordHash) &* 0xBF58_476D_1CE4_E5B9
        mixed ^= mixed >> 31
        low = mixed &* 0x94D0_49BB_1331_11EB
    }

    /// The hash of a caption without words.
    static let empty = WordSequenceHash(high: 0x243F_6A88_85A3_08D3, low: 0x1319_8A2E_0370_7344)
}

/// Measures captions on their UTF-8 bytes with the SPEC's definitions:
/// - length: Unicode scalars of the NFC-normalised, trimmed caption;
/// - word: a maximal run of scalars whose general category is a letter (L*), mark (M*) or number
///   (N*), letters lower-cased.
///
/// Most captions (Hangul syllables, ASCII, common punctuation) are already NFC; a scan proves it
/// and skips normalisation. Anything else goes through Foundation's canonical composition.
struct CaptionScanner {
    private var wordBuffer: [UInt8] = []
    private(set) var normalisedCount = 0

    init() {
        wordBuffer.reserveCapacity(256)
    }

    /// `knownNFC`: the caller has normalised the caption already, so the NFC check is skipped.
    mutating func measure<Words: WordCounter>(
        _ caption: String, table: inout Words, captionNumber: Int32, knownNFC: Bool = false
    ) -> CaptionMeasure {
        var text = caption
        let fast = text.utf8.withContiguousStorageIfAvailable { bytes in
            knownNFC || Self.isCertainlyNFC(bytes) ? measureBytes(bytes, table: &table, captionNumber: captionNumber) : nil
        }
        if let measured = fast ?? nil { return measured }
        // Slow path: not provably NFC (or not contiguous).
        if !(fast == nil && Self.isCertainlyNFC(Array(text.utf8))) {
            text = text.precomposedStringWithCanonicalMapping
            normalisedCount += 1
        }
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer in
            measureBytes(UnsafeBufferPointer(buffer), table: &table, captionNumber: captionNumber)
        }
    }

    /// True when every scalar is in a range known to be unchanged by NFC and not to combine with
    /// its neighbours (ASCII and Latin-1, Hangul syllables, CJK, common punctuation and symbols, emoji).
    static func isCertainlyNFC(_ bytes: some Collection<UInt8>) -> Bool {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if !isNFCSafe(scalar.value) { return false }
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    @inline(__always)
    static func isNFCSafe(_ v: UInt32) -> Bool {
        if v < 0x300 { return true }
        if v >= 0xAC00 && v <= 0xD7A3 { return true }  // Hangul syllables
        if v >= 0x4E00 && v <= 0x9FFF { return true }  // CJK unified ideographs
        if v >= 0x2002 && v <= 0x20CF { return true }  // punctuation, super/subscripts, currency
        if v >= 0x2100 && v <= 0x2125 { return true }  // letterlike symbols before U+2126 OHM (a singleton)
        if v >= 0x2190 && v <= 0x21FF { return true }  // arrows
        if v >= 0x2460 && v <= 0x24FF { return true }  // enclosed alphanumerics
        if v >= 0x2500 && v <= 0x27BF { return true }  // box drawing, shapes, symbols, dingbats
        if v >= 0x3000 && v <= 0x3029 { return true }  // CJK symbols before the combining tone marks
        if v >= 0x3131 && v <= 0x318E { return true }  // Hangul compatibility jamo (not conjoining)
        if v >= 0xFE00 && v <= 0xFE0F { return true }  // variation selectors
        if v >= 0xFF01 && v <= 0xFFEF { return true }  // half- and full-width forms
        if v >= 0x1F300 && v <= 0x1FAFF { return true }  // emoji
        return false
    }

    @inline(__always)
    static func isWordScalar(_ v: UInt32) -> Bool {
        if v < 0x80 {
            return (v >= 0x30 && v <= 0x39) || (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A)
        }
        if v >= 0xAC00 && v <= 0xD7A3 { return true }
        if v >= 0x4E00 && v <= 0x9FFF { return true }
        guard let scalar = Unicode.Scalar(v) else { return false }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
            .nonspacingMark, .spacingMark, .enclosingMark,
            .decimalNumber, .letterNumber, .otherNumber:
            return true
        default:
            return false
        }
    }

    @inline(__always)
    static func isWhiteSpace(_ v: UInt32) -> Bool {
        switch v {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: true
        default: false
        }
    }

    private mutating func measureBytes<Words: WordCounter>(
        _ bytes: UnsafeBufferPointer<UInt8>, table: inout Words, captionNumber: Int32
    ) -> CaptionMeasure {
        var length = 0
        var pendingSpaces = 0  // White_Space scalars not yet known to be inside the caption
        var seenContent = false
        var words = 0
        var unique = 0
        var sequence = WordSequenceHash.empty
        wordBuffer.removeAll(keepingCapacity: true)

        func endWord(_ self: inout CaptionScanner, _ table: inout Words) {
            guard !self.wordBuffer.isEmpty else { return }
            words += 1
            let first = self.wordBuffer.withUnsafeBufferPointer { word in
                let hash = WordTable.hash(word)
                sequence.combine(hash)
                return table.add(word, hash: hash, caption: captionNumber, count: 1)
            }
            if first { unique += 1 }
            self.wordBuffer.removeAll(keepingCapacity: true)
        }

        var i = 0
        let count = bytes.count
        while i < count {
            let lead = bytes[i]
            var value: UInt32
            var width: Int
            if lead < 0x80 {
                value = UInt32(lead)
                width = 1
            } else if lead < 0xE0 {
                value = (UInt32(lead & 0x1F) << 6) | UInt32(bytes[i + 1] & 0x3F)
                width = 2
            } else if lead < 0xF0 {
                value = (UInt32(lead & 0x0F) << 12) | (UInt32(bytes[i + 1] & 0x3F) << 6) | UInt32(bytes[i + 2] & 0x3F)
                width = 3
            } else {
                value = (UInt32(lead & 0x07) << 18) | (UInt32(bytes[i + 1] & 0x3F) << 12)
                    | (UInt32(bytes[i + 2] & 0x3F) << 6) | UInt32(bytes[i + 3] & 0x3F)
                width = 4
            }

            // Length: scalars between the first and last non-White_Space scalar.
            if Self.isWhiteSpace(value) {
                if seenContent { pendingSpaces += 1 }
            } else {
                length += 1 + pendingSpaces
                pendingSpaces = 0
                seenContent = true
            }

            // Words.
            if Self.isWordScalar(value) {
                if value < 0x80 {
                    wordBuffer.append(value >= 0x41 && value <= 0x5A ? lead | 0x20 : lead)
                } else if (value >= 0xAC00 && value <= 0xD7A3) || (value >= 0x4E00 && value <= 0x9FFF) {
                    wordBuffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[i..<(i + width)]))
                } else {
                    let scalar = Unicode.Scalar(value)!
                    if scalar.properties.changesWhenLowercased {
                        wordBuffer.append(contentsOf: scalar.properties.lowercaseMapping.utf8)
                    } else {
                        wordBuffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[i..<(i + width)]))
                    }
                }
            } else {
                endWord(&self, &table)
            }
            i += width
        }
        endWord(&self, &table)
        return CaptionMeasure(length: length, words: words, uniqueWords: unique, wordSequenceHash: sequence)
    }
}
