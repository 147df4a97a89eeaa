/// What one caption measures, by the SPEC's definitions (the same code `analyze` uses).
public struct CaptionMetrics: Sendable, Equatable {
    /// Unicode scalars after NFC normalisation and trimming of White_Space at both ends.
    public var length: Int
    /// Words: maximal runs of letters, marks and numbers.
    public var words: Int
    /// Distinct words (letters lower-cased).
    public var uniqueWords: Int
    /// Hash of the lower-cased word sequence: equal for captions that differ only in
    /// punctuation, spacing, letter case or Unicode normalisation form.
    public var wordSequenceHash: WordSequenceHash

    /// Type-token ratio (unique / total words); nil for a caption without words.
    public var typeTokenRatio: Double? { words > 0 ? Double(uniqueWords) / Double(words) : nil }
}

/// Measures captions one at a time for callers outside the statistics (curation's quality score,
/// outliers and caption-duplicate detection). One meter per thread; it reuses one small word set
/// (word hashes, cleared lazily per caption), so it keeps no vocabulary.
public struct CaptionMeter {
    private let scanner = CaptionScanner()
    private var table = CaptionWordSet()
    private var captionNumber: Int32 = 0

    public init() {}

    /// `knownNFC`: the caption is already NFC (e.g. it went through curation's caption cleaning),
    /// so the normalisation check is skipped; a caption that is not NFC would then be measured as is.
    public mutating func measure(_ caption: String, knownNFC: Bool = false) -> CaptionMetrics {
        captionNumber &+= 1
        if captionNumber == Int32.max {
            // The stamp that tells "first time in this caption" must not wrap onto an old value.
            table = CaptionWordSet()
            captionNumber = 1
        }
        let measure = scanner.measure(caption, table: &table, captionNumber: captionNumber, knownNFC: knownNFC)
        return CaptionMetrics(
            length: measure.length, words: measure.words, uniqueWords: measure.uniqueWords,
            wordSequenceHash: measure.wordSequenceHash)
    }
}
