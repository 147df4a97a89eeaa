import Manifest
import Statistics
import Testing

/// Four items whose every statistic was worked out by hand (see the comments).
private let items: [ManifestItem] = [
    // "Hello hello World": 17 characters; words hello, hello, world → 3 words, 2 unique.
    ManifestItem(
        line: 2, path: "a.jpg", mediaType: .image, resolution: Resolution(width: 1280, height: 720),
        duration: nil, category: "A", caption: "Hello hello World"),
    // Trimmed "가나 다라, 가나!": 10 characters; words 가나, 다라, 가나 → 3 words, 2 unique.
    ManifestItem(
        line: 3, path: "b.mp4", mediaType: .video, resolution: Resolution(width: 1920, height: 1080),
        duration: 12, category: "A", caption: "  가나 다라, 가나!\u{3000}"),
    // NFD 한국 + " 123" → NFC "한국 123": 6 characters; words 한국, 123 → 2 words, 2 unique.
    ManifestItem(
        line: 4, path: "c.mp4", mediaType: .video, resolution: Resolution(width: 720, height: 512),
        duration: 25, category: "B", caption: "\u{1112}\u{1161}\u{11AB}\u{1100}\u{116E}\u{11A8} 123"),
    // "É é e\u{301}" → NFC "É é é": 5 characters; words é, é, é (lower-cased) → 3 words, 1 unique.
    ManifestItem(
        line: 5, path: "d.mp4", mediaType: .video, resolution: Resolution(width: 1280, height: 720),
        duration: 61, category: "C", caption: "É é e\u{301}"),
]

@Test func handComputedStatistics() throws {
    let stats = StatisticsCalculator.compute(name: "tiny", source: "tiny.csv", items: items, rejectedRows: 1)
    #expect(stats.rowsRead == 5)
    #expect(stats.items == 4)
    #expect(stats.mediaTypes.images.count == 1)
    #expect(stats.mediaTypes.videos.count == 3)
    #expect(stats.mediaTypes.imageToVideoRatio == 1.0 / 3.0)

    #expect(stats.resolutions.distribution.map(\.label) == ["1280×720", "1920×1080", "720×512"])
    #expect(stats.resolutions.atTarget.count == 2)
    #expect(stats.resolutions.needConversion.share == 0.5)
    #expect(stats.resolutions.conversion == ["at_target": 2, "downscale": 1, "upscale": 0, "reframe": 1])

    #expect(stats.durations.seconds.mean == 98.0 / 3.0)
    #expect(stats.durations.seconds.min == 12)
    #expect(stats.durations.seconds.max == 61)
    #expect(stats.durations.buckets.map(\.count) == [0, 1, 1, 0, 1])

    #expect(stats.categories.distribution.map(\.label) == ["A", "B", "C"])
    #expect(stats.categories.maxMinRatio == 2)
    let gini = try #require(stats.categories.gini)
    #expect(abs(gini - 1.0 / 6.0) < 1e-12)

    #expect(stats.captions.length.mean == 9.5)
    #expect(stats.captions.length.min == 5)
    #expect(stats.captions.length.max == 17)
    #expect(stats.captions.normalised == 2)

    #expect(stats.words.totalWords == 11)
    #expect(stats.words.uniqueWords == 7)
    #expect(stats.words.corpusTTR == 7.0 / 11.0)
    let ttrMean = try #require(stats.words.captionTTR.mean)
    #expect(abs(ttrMean - (2.0 / 3 + 2.0 / 3 + 1 + 1.0 / 3) / 4) < 1e-12)
    #expect(stats.words.captionTTR.min == 1.0 / 3.0)
    #expect(stats.words.captionTTR.max == 1)
    #expect(stats.words.wordsPerCaption.mean == 2.75)
    #expect(stats.words.wordsPerCaption.min == 2)
    // Ties by code point: "hello" < "가나"; "123" < "world" < "다라" < "한국".
    #expect(stats.words.topWords.map(\.word) == ["é", "hello", "가나", "123", "world", "다라", "한국"])
    #expect(stats.words.topWords.map(\.count) == [3, 2, 2, 1, 1, 1, 1])

    let r = try #require(stats.durationCaptionCorrelation)
    #expect(abs(r - -0.8263968697112595) < 1e-12)
}

@Test func parallelSlicesGiveTheSameNumbersAsOneWorker() {
    var many: [ManifestItem] = []
    let words = ["있다", "있는", "Seoul", "SEOUL", "사람들이", "１２３", "e\u{301}", "naïve"]
    for index in 0..<9_000 {
        let caption = (0..<(5 + index % 11)).map { words[($0 * 7 + index) % words.count] }.joined(separator: " ")
        many.append(
            ManifestItem(
                line: index + 2, path: "p\(index)", mediaType: index % 3 == 0 ? .image : .video,
                resolution: Resolution(width: 1280, height: 720), duration: index % 3 == 0 ? nil : Double(index % 97),
                category: "c\(index % 5)", caption: caption))
    }
    let one = StatisticsCalculator.compute(name: "x", source: "x", items: many, options: StatisticsOptions(workers: 1))
    let four = StatisticsCalculator.compute(name: "x", source: "x", items: many, options: StatisticsOptions(workers: 4))
    #expect(one.words.topWords == four.words.topWords)
    #expect(one.words.uniqueWords == four.words.uniqueWords)
    #expect(one.words.totalWords == four.words.totalWords)
    #expect(one.words.captionTTR == four.words.captionTTR)
    #expect(one.captions.length == four.captions.length)
    #expect(one.durationCaptionCorrelation == four.durationCaptionCorrelation)
    // "seoul" twice per cycle (Seoul, SEOUL) merges under lower-casing; "１２３" is three numbers.
    #expect(one.words.topWords.contains { $0.word == "seoul" })
    #expect(!one.words.topWords.contains { $0.word == "Seoul" })
}

@Test func emptyDatasetHasNoNumbersButNoCrash() {
    let stats = StatisticsCalculator.compute(name: "empty", source: "e.csv", items: [])
    #expect(stats.items == 0)
    #expect(stats.durations.seconds.mean == nil)
    #expect(stats.categories.gini == nil)
    #expect(stats.words.corpusTTR == nil)
    #expect(stats.durationCaptionCorrelation == nil)
}

@Test func normalisedCaptionIsNFCAndTrimmed() {
    #expect(CaptionText.normalised("\u{3000} \u{1112}\u{1161}\u{11AB} \n") == "한")
    #expect(CaptionText.normalised("   ") == "")
    #expect(CaptionText.words("Hello, WORLD! e\u{301}té 가나-다라 ①") == ["hello", "world", "été", "가나", "다라", "①"])
    #expect(CaptionText.length(" e\u{301} ") == 1)
    #expect(CaptionText.typeTokenRatio("a A b") == 2.0 / 3.0)
    #expect(CaptionText.typeTokenRatio("...") == nil)
}
