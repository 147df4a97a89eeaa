import Foundation
import Manifest

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

    public static func < (lhs: WordSequenceHash, rhs: WordSequenceHash) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

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
/// Most captions (Hangul syllables, ASCII, common punctuation) are already NFC; a byte scan proves
/// it and skips normalisation. Anything else goes through Foundation's canonical composition.
/// Words are hashed straight from the caption's bytes unless lower-casing changes them.
final class CaptionScanner {
    /// Lower-cased copies of words that lower-casing changed.
    private var wordBuffer = GrowableBuffer<UInt8>(capacity: 1024)
    /// The current caption's words, added to the table once the caption passed the NFC check.
    private var spans = GrowableBuffer<WordSpan>(capacity: 512)
    /// The current caption's word fingerprints, in order.
    private var fingerprints = GrowableBuffer<WordFingerprint>(capacity: 512)
    /// Words between a lookup's prefetch and the lookup (enough to cover a memory access).
    private static let lookahead = 12
    private(set) var normalisedCount = 0

    init() {}

    deinit {
        wordBuffer.free()
        spans.free()
        fingerprints.free()
    }

    /// ASCII byte classes: 0 other, 1 White_Space, 2 word byte kept as is, 3 upper-case letter.
    private static let asciiClass: [UInt8] = (0..<128).map { byte -> UInt8 in
        switch byte {
        case 0x09...0x0D, 0x20: 1
        case 0x30...0x39, 0x61...0x7A: 2
        case 0x41...0x5A: 3
        default: 0
        }
    }

    /// `knownNFC`: the caller has normalised the caption already, so the NFC check is skipped.
    func measure<Words: WordCounter>(
        _ caption: String, table: inout Words, captionNumber: Int32, knownNFC: Bool = false
    ) -> CaptionMeasure {
        let fast: CaptionMeasure?? = caption.utf8.withContiguousStorageIfAvailable { bytes in
            measureBytes(bytes, table: &table, captionNumber: captionNumber, requireNFC: !knownNFC)
        }
        if case .some(.some(let measured)) = fast { return measured }
        // Not provably NFC: normalise, then measure without the check.
        let text = caption.precomposedStringWithCanonicalMapping
        if !text.utf8.elementsEqual(caption.utf8) { normalisedCount += 1 }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer {
            measureBytes($0, table: &table, captionNumber: captionNumber, requireNFC: false)!
        }
    }

    /// As `measure(_:table:captionNumber:knownNFC:)`, on a caption's UTF-8 bytes (which must be
    /// valid UTF-8); a `String` is made only when the caption is not provably NFC.
    func measure<Words: WordCounter>(
        bytes: UnsafeBufferPointer<UInt8>, table: inout Words, captionNumber: Int32
    ) -> CaptionMeasure {
        if let measured = measureBytes(bytes, table: &table, captionNumber: captionNumber, requireNFC: true) {
            return measured
        }
        return measure(String(decoding: bytes, as: UTF8.self), table: &table, captionNumber: captionNumber)
    }

    /// True when every scalar is in a range known to be unchanged by NFC and not to combine with
    /// its neighbours (ASCII and Latin-1, Hangul syllables, CJK, common punctuation and symbols,
    /// emoji). False only means "normalise to be sure".
    static func isCertainlyNFC(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let count = bytes.count
        var i = 0
        while i < count {
            let lead = base[i]
            if lead < 0x80 {
                i += 1
                continue
            }
            let (value, width) = decode(base, i, lead)
            if !isNFCSafe(value) { return false }
            i += width
        }
        return true
    }

    @inline(__always)
    static func decode(_ base: UnsafePointer<UInt8>, _ i: Int, _ lead: UInt8) -> (UInt32, Int) {
        if lead < 0xE0 {
            return ((UInt32(lead & 0x1F) << 6) | UInt32(base[i + 1] & 0x3F), 2)
        } else if lead < 0xF0 {
            return ((UInt32(lead & 0x0F) << 12) | (UInt32(base[i + 1] & 0x3F) << 6) | UInt32(base[i + 2] & 0x3F), 3)
        } else {
            return (
                (UInt32(lead & 0x07) << 18) | (UInt32(base[i + 1] & 0x3F) << 12)
                    | (UInt32(base[i + 2] & 0x3F) << 6) | UInt32(base[i + 3] & 0x3F), 4
            )
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

    /// Letter, mark or number (Unicode general categories L*, M*, N*).
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

    /// The Unicode White_Space property.
    @inline(__always)
    static func isWhiteSpace(_ v: UInt32) -> Bool { UTF8Bytes.isWhiteSpace(v) }

    /// Closes the current word, if any, recording where its bytes are.
    @inline(__always)
    private static func endWord(
        _ end: Int, _ wordStart: inout Int, _ copyStart: inout Int, _ spans: inout GrowableBuffer<WordSpan>,
        _ copied: Int
    ) {
        guard wordStart >= 0 else { return }
        if copyStart >= 0 {
            spans.append(WordSpan(start: Int32(copyStart), length: Int32(copied - copyStart), inBuffer: true))
            copyStart = -1
        } else {
            spans.append(WordSpan(start: Int32(wordStart), length: Int32(end - wordStart), inBuffer: false))
        }
        wordStart = -1
    }

    /// `asciiClass` as a raw table, read without bounds checks in the hot loop.
    nonisolated(unsafe) private static let asciiClassTable: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 128)
        table.initialize(from: asciiClass, count: 128)
        return UnsafePointer(table)
    }()

    /// Where a word's bytes are: in the caption, or (lower-cased) in `wordBuffer`.
    struct WordSpan {
        var start: Int32
        var length: Int32
        var inBuffer: Bool
    }

    /// Measures one caption. With `requireNFC`, returns nil as soon as a scalar outside the
    /// known-NFC ranges appears; words are only added to the table once the whole caption passed.
    private func measureBytes<Words: WordCounter>(
        _ bytes: UnsafeBufferPointer<UInt8>, table: inout Words, captionNumber: Int32, requireNFC: Bool
    ) -> CaptionMeasure? {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            return CaptionMeasure(length: 0, words: 0, uniqueWords: 0, wordSequenceHash: .empty)
        }
        // Work on local copies of the scratch buffers: no exclusivity checks in the loop.
        var spans = self.spans
        var wordBuffer = self.wordBuffer
        defer {
            self.spans = spans
            self.wordBuffer = wordBuffer
        }
        let count = bytes.count
        var length = 0
        var pendingSpaces = 0  // White_Space scalars not yet known to be inside the caption
        var seenContent = false
        var wordStart = -1  // byte offset where the current word starts, or -1
        var copyStart = -1  // offset in wordBuffer where the current (lower-cased) word starts, or -1
        spans.count = 0
        wordBuffer.count = 0

        let asciiClass = Self.asciiClassTable
        var i = 0
        while i < count {
            let lead = base[i]
            if lead < 0x80 {
                let kind = asciiClass[Int(lead)]
                if kind == 1 {
                    if seenContent { pendingSpaces += 1 }
                    Self.endWord(i, &wordStart, &copyStart, &spans, wordBuffer.count)
                } else {
                    length += 1 + pendingSpaces
                    pendingSpaces = 0
                    seenContent = true
                    if kind == 0 {
                        Self.endWord(i, &wordStart, &copyStart, &spans, wordBuffer.count)
                    } else {
                        if wordStart < 0 { wordStart = i }
                        if kind == 3 && copyStart < 0 {
                            copyStart = wordBuffer.count
                            wordBuffer.append(base + wordStart, count: i - wordStart)
                        }
                        if copyStart >= 0 {
                            wordBuffer.append(kind == 3 ? lead | 0x20 : lead)
                        } else {
                            // The rest of a run of lower-case letters and digits: only the length changes.
                            i += 1
                            while i < count, base[i] < 0x80, asciiClass[Int(base[i])] == 2 {
                                length += 1
                                i += 1
                            }
                            continue
                        }
                    }
                }
                i += 1
                continue
            }

            let (value, width) = Self.decode(base, i, lead)
            if value >= 0xAC00 && value <= 0xD7A3 {
                // Hangul syllable: a letter, NFC, caseless.
                length += 1 + pendingSpaces
                pendingSpaces = 0
                seenContent = true
                if wordStart < 0 { wordStart = i }
                if copyStart >= 0 { wordBuffer.append(base + i, count: 3) }
                i += 3
                if copyStart < 0 {
                    // The rest of a run of Hangul syllables (most of a Korean caption): only the length
                    // changes. Lead bytes 0xEA–0xED hold U+A000–U+DFFF; the range check does the rest.
                    while i + 2 < count, base[i] &- 0xEA < 4 {
                        let next =
                            (UInt32(base[i] & 0x0F) << 12) | (UInt32(base[i + 1] & 0x3F) << 6)
                            | UInt32(base[i + 2] & 0x3F)
                        guard next >= 0xAC00 && next <= 0xD7A3 else { break }
                        length += 1
                        i += 3
                    }
                }
                continue
            }
            if requireNFC && !Self.isNFCSafe(value) { return nil }
            if Self.isWhiteSpace(value) {
                if seenContent { pendingSpaces += 1 }
                Self.endWord(i, &wordStart, &copyStart, &spans, wordBuffer.count)
            } else {
                length += 1 + pendingSpaces
                pendingSpaces = 0
                seenContent = true
                if Self.isWordScalar(value) {
                    if wordStart < 0 { wordStart = i }
                    let isHan = value >= 0x4E00 && value <= 0x9FFF
                    if !isHan, let scalar = Unicode.Scalar(value), scalar.properties.changesWhenLowercased {
                        if copyStart < 0 {
                            copyStart = wordBuffer.count
                            wordBuffer.append(base + wordStart, count: i - wordStart)
                        }
                        for byte in scalar.properties.lowercaseMapping.utf8 { wordBuffer.append(byte) }
                    } else if copyStart >= 0 {
                        wordBuffer.append(base + i, count: width)
                    }
                } else {
                    Self.endWord(i, &wordStart, &copyStart, &spans, wordBuffer.count)
                }
            }
            i += width
        }
        Self.endWord(count, &wordStart, &copyStart, &spans, wordBuffer.count)

        // Count the words: first every fingerprint (arithmetic on bytes in L1), then the table
        // lookups, each one started `lookahead` words early so that their cache misses overlap.
        var unique = 0
        var sequence = WordSequenceHash.empty
        let copies = UnsafePointer(wordBuffer.base)
        var fingerprints = self.fingerprints
        defer { self.fingerprints = fingerprints }
        fingerprints.count = 0
        for index in 0..<spans.count {
            let span = spans.base[index]
            let pointer = span.inBuffer ? copies + Int(span.start) : base + Int(span.start)
            let fingerprint = WordTable.fingerprint(pointer, Int(span.length))
            fingerprints.append(fingerprint)
            sequence.combine(fingerprint.primary)
            if index < Self.lookahead { table.prefetch(fingerprint) }
        }
        for index in 0..<spans.count {
            if index + Self.lookahead < spans.count { table.prefetch(fingerprints.base[index + Self.lookahead]) }
            let span = spans.base[index]
            let pointer = span.inBuffer ? copies + Int(span.start) : base + Int(span.start)
            if table.add(pointer, Int(span.length), fingerprint: fingerprints.base[index], caption: captionNumber) {
                unique += 1
            }
        }
        return CaptionMeasure(length: length, words: spans.count, uniqueWords: unique, wordSequenceHash: sequence)
    }
}

/// A minimal growable buffer without copy-on-write checks, for per-worker scratch space.
struct GrowableBuffer<Element> {
    private(set) var base: UnsafeMutablePointer<Element>
    private var capacity: Int
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    /// Frees the storage; the buffer must not be used afterwards.
    func free() { base.deallocate() }

    @inline(__always)
    mutating func append(_ element: Element) {
        if count == capacity { grow(to: count + 1) }
        (base + count).initialize(to: element)
        count += 1
    }

    @inline(__always)
    mutating func append(_ elements: UnsafePointer<Element>, count added: Int) {
        if count + added > capacity { grow(to: count + added) }
        (base + count).initialize(from: elements, count: added)
        count += added
    }

    private mutating func grow(to minimum: Int) {
        var newCapacity = capacity * 2
        while newCapacity < minimum { newCapacity *= 2 }
        let grown = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
        grown.moveInitialize(from: base, count: count)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }
}

/// The SPEC's caption definitions for other stages (curation, reports): the same rules the
/// statistics use, on single captions.
public enum CaptionText {
    /// True when the UTF-8 bytes are provably NFC already (a fast, conservative scan).
    public static func isCertainlyNFC(_ bytes: some Collection<UInt8>) -> Bool {
        let contiguous = bytes.withContiguousStorageIfAvailable { CaptionScanner.isCertainlyNFC($0) }
        return contiguous ?? Array(bytes).withUnsafeBufferPointer { CaptionScanner.isCertainlyNFC($0) }
    }

    /// True when a scalar is unchanged by NFC and never composes with its neighbours (the ranges
    /// `isCertainlyNFC` accepts).
    public static func isNFCSafe(_ scalar: UInt32) -> Bool { CaptionScanner.isNFCSafe(scalar) }

    /// Whether a scalar has the Unicode White_Space property.
    @inline(__always)
    public static func isWhiteSpace(_ scalar: UInt32) -> Bool { CaptionScanner.isWhiteSpace(scalar) }

    /// The caption in NFC, trimmed of White_Space at both ends (the text the statistics measure).
    public static func normalised(_ caption: String) -> String {
        let isNFC = caption.utf8.withContiguousStorageIfAvailable { CaptionScanner.isCertainlyNFC($0) } == true
        let nfc = isNFC ? caption : caption.precomposedStringWithCanonicalMapping
        let scalars = nfc.unicodeScalars
        guard let first = scalars.firstIndex(where: { !CaptionScanner.isWhiteSpace($0.value) }) else { return "" }
        let last = scalars.lastIndex(where: { !CaptionScanner.isWhiteSpace($0.value) })!
        return String(scalars[first...last])
    }

    /// Length in Unicode scalars after NFC and trimming.
    public static func length(_ caption: String) -> Int {
        normalised(caption).unicodeScalars.count
    }

    /// The caption's words in order: maximal runs of letters, marks and numbers, lower-cased.
    public static func words(_ caption: String) -> [String] {
        var words: [String] = []
        var current = ""
        for scalar in normalised(caption).unicodeScalars {
            if CaptionScanner.isWordScalar(scalar.value) {
                if scalar.properties.changesWhenLowercased {
                    current += scalar.properties.lowercaseMapping
                } else {
                    current.unicodeScalars.append(scalar)
                }
            } else if !current.isEmpty {
                words.append(current)
                current = ""
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// Unique words / words (nil for a caption without words).
    public static func typeTokenRatio(_ caption: String) -> Double? {
        let all = words(caption)
        return all.isEmpty ? nil : Double(Set(all).count) / Double(all.count)
    }
}
