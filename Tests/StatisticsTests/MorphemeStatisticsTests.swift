import Foundation
import Manifest
import Testing

@testable import Statistics

/// Four distinct captions, by hand (the engine's definitions; the forms are stand-ins):
/// c0 hangul  morphemes a/NNG b/NNG a/NNG x/JKS  content a b a     4 morphemes, 3 types, TTR 0.75
/// c1 hangul  morphemes a/NNG c/VV d/EF          content a c다     3 morphemes, 3 types, TTR 1
/// c2 other   morphemes e/SL                     content —         1 morpheme,  TTR 1
/// c3 no letters, nothing                                          no TTR
private let table = MorphemeTable(captions: [
    (.hangul, ["a/NNG", "b/NNG", "a/NNG", "x/JKS"], ["a", "b", "a"]),
    (.hangul, ["a/NNG", "c/VV", "d/EF"], ["a", "c다"]),
    (.other, ["e/SL"], []),
    (.noLetters, [], []),
])

/// Five items: captions c0 c1 c0 c2 c3, categories X X Y Y Y.
private let numbers: [Int32] = [0, 1, 0, 2, 3]
private let categories = ["X", "X", "Y", "Y", "Y"]
private let options = MorphemeOptions(topWords: 10, templateWords: 2, templateThreshold: 1)

@Test func datasetFiguresMatchTheHandCount() throws {
    let statistics = MorphemeCalculator.compute(
        captionNumbers: numbers, categories: categories, table: table,
        options: options)
    let all = statistics.all
    #expect(all.captions == 5)
    #expect(all.scripts == ["hangul": 3, "mixed": 0, "other": 1, "no_letters": 1])
    // 4 + 3 + 4 + 1 + 0 morphemes; types a/NNG b/NNG x/JKS c/VV d/EF e/SL.
    #expect(all.morphemes == 12 && all.morphemeTypes == 6 && all.corpusTTR == 0.5)
    // Per caption 0.75, 1, 0.75, 1; the caption without morphemes is left out.
    #expect(all.captionTTR.mean == 0.875 && all.captionTTR.min == 0.75 && all.captionTTR.max == 1)
    #expect(all.captionsWithoutMorphemes == 1)
    #expect(all.contentWords == 8 && all.uniqueContentWords == 3)
    let perCaption = all.contentWordsPerCaption
    #expect(perCaption.mean == 1.6 && perCaption.min == 0 && perCaption.max == 3)
    #expect(all.captionsWithoutContentWords == 2)
    #expect(
        all.topContentWords == [
            WordCount(word: "a", count: 5), WordCount(word: "b", count: 2), WordCount(word: "c다", count: 1),
        ])
    // Template keys (first 2 distinct content words): c0 {a, b} twice (> 1), c1 {a, c다} once, c2 and c3 none.
    #expect(all.templateCaptions == CountShare(count: 2, of: 5))
    #expect(statistics.topTemplates == [CaptionTemplate(words: ["a", "b"], captions: 2)])

    // Categories by size: Y (items 2, 3, 4), then X (items 0, 1).
    #expect(statistics.categories.map(\.category) == ["Y", "X"])
    let y = statistics.categories[0].statistics
    let x = statistics.categories[1].statistics
    #expect(y.morphemes == 5 && y.morphemeTypes == 4 && y.corpusTTR == 0.8)
    #expect(x.morphemes == 7 && x.morphemeTypes == 5 && x.corpusTTR == 5.0 / 7.0)
    #expect(y.templateCaptions == CountShare(count: 1, of: 3) && x.templateCaptions == CountShare(count: 1, of: 2))
    #expect(x.topContentWords.map(\.word) == ["a", "b", "c다"] && y.topContentWords.map(\.count) == [2, 1])
}

@Test func templateFlagsNeedMoreCaptionsThanTheThreshold() {
    let strict = MorphemeOptions(topWords: 20, templateWords: 2, templateThreshold: 2)
    let none = MorphemeCalculator.templateFlags(captionNumbers: numbers, table: table, options: strict)
    #expect(none.flags == [false, false, false, false, false] && none.top.isEmpty)
    let loose = MorphemeCalculator.templateFlags(captionNumbers: numbers, table: table, options: options)
    #expect(loose.flags == [true, false, true, false, false])
    // Keys of three distinct content words: no caption has three, so none is a template.
    let three = MorphemeOptions(topWords: 20, templateWords: 3, templateThreshold: 1)
    let longer = MorphemeCalculator.templateFlags(captionNumbers: numbers, table: table, options: three)
    #expect(longer.flags.allSatisfy { !$0 })
}

@Test func contentWordDistanceIsTheJensenShannonDivergenceByHand() throws {
    func input(_ name: String, _ numbers: [Int32], _ category: String) -> NamedManifest {
        let items = numbers.indices.map { index in
            ManifestItem(
                line: index + 2, path: "\(name)\(index).jpg", mediaType: .image,
                resolution: Resolution(width: 1280, height: 720), duration: nil, category: category,
                caption: "캡션")
        }
        let manifest = Manifest(
            source: name, format: .csv, columns: [],
            columnMap: ResolvedColumns(indices: [:], header: []), items: items, rejected: [])
        return NamedManifest(name: name, role: .split, manifest: manifest, captionNumbers: numbers)
    }
    // a: a 2, b 1 (P = 2/3, 1/3, 0); b: a 1, c다 1 (Q = 1/2, 0, 1/2); M = 7/12, 1/6, 1/4.
    // JSD = ½(2/3·log2(8/7) + 1/3·1) + ½(1/2·log2(6/7) + 1/2·1) = 0.4252835873 bits.
    let (overall, byCategory) = Analyzer.contentWordDistance(input("a", [0], "X"), input("b", [1], "X"), table: table)
    let jsd = try #require(overall)
    let jsdX = try #require(byCategory["X"])
    #expect(abs(jsd - 0.42528358731335336) < 1e-12)
    #expect(byCategory.count == 1 && abs(jsdX - 0.42528358731335336) < 1e-12)
    let (same, _) = Analyzer.contentWordDistance(input("a", [0, 1], "X"), input("b", [1, 0], "Y"), table: table)
    #expect(same == 0)

    let report = Analyzer.analyze(
        [input("train", [0, 0, 2], "X"), input("val", [1, 3], "X")],
        morphemes: Analyzer.Morphemes(
            table: table, options: options,
            info: MorphemeAnalysisInfo(
                analyser: "Kiwi test", unit: "word", distinctCaptions: 4, templateWords: 2, templateThreshold: 1)))
    #expect(report.datasets.map { $0.morphemes?.all.captions } == [5, 3, 2])
    let trainVal = try #require(report.comparisons.first { $0.a == "train" && $0.b == "val" })
    // P = 4/6, 2/6, 0 is the same distribution as a's above, Q the same as b's.
    let trainValJSD = try #require(trainVal.contentWordJSD)
    #expect(abs(trainValJSD - 0.42528358731335336) < 1e-12)
}

@Test func distinctCaptionsAreWrittenOnceInTheEnginesFormat() throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("captions-\(UUID().uuidString).bin").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    let captions = try DistinctCaptions(path: path)
    #expect(["사람", "Seoul", "사람", ""].map { captions.number(of: $0) } == [0, 1, 0, 2])
    try captions.finish()
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let expected: [UInt8] =
        Array("WLCAPS01".utf8) + [3, 0, 0, 0] + [6, 0, 0, 0] + Array("사람".utf8) + [5, 0, 0, 0]
        + Array("Seoul".utf8) + [0, 0, 0, 0]
    #expect(bytes == expected)
}

@Test func theEnginesResultFileIsReadAndCheckedIdByID() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("morphemes-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let vocabulary = folder.appendingPathComponent("vocabulary.json").path
    try Data(#"{"morphemes": ["사람/NNG", "이/JKS", "입/VV"], "content_words": ["사람", "입다"]}"#.utf8)
        .write(to: URL(fileURLWithPath: vocabulary))
    func u32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    // Two captions: hangul 사람 이 입 사람 (content 사람 입다 사람), then no letters and nothing.
    let body =
        u32(2) + [0] + u32(4) + u32(0) + u32(1) + u32(2) + u32(0) + u32(3) + u32(0) + u32(1) + u32(0)
        + [3] + u32(0) + u32(0)
    let result = folder.appendingPathComponent("morphemes.bin").path
    try Data(Array("WLMORP01".utf8) + body).write(to: URL(fileURLWithPath: result))
    let read = try MorphemeTable.read(resultPath: result, vocabularyPath: vocabulary)
    #expect(read.count == 2 && read.script(0) == .hangul && read.script(1) == .noLetters)
    #expect(read.morphemeCount(0) == 4 && Array(read.distinctTypes(0)) == [0, 1, 2])
    #expect(Array(read.contentWordIDs(0)).map { read.contentWords[Int($0)] } == ["사람", "입다", "사람"])
    #expect(read.morphemeCount(1) == 0 && read.contentWordIDs(1).isEmpty)

    // An id beyond the vocabulary, and a cut file, are errors that say where.
    try Data(Array("WLMORP01".utf8) + u32(1) + [0] + u32(1) + u32(9) + u32(0)).write(to: URL(fileURLWithPath: result))
    #expect(throws: MorphemeError.self) { try MorphemeTable.read(resultPath: result, vocabularyPath: vocabulary) }
    do {
        try Data(Array("WLMORP01".utf8) + body.dropLast(3)).write(to: URL(fileURLWithPath: result))
        _ = try MorphemeTable.read(resultPath: result, vocabularyPath: vocabulary)
        Issue.record("a cut file was read")
    } catch let error as MorphemeError {
        #expect(error.problem.contains("caption 1 is cut or names an unknown id"), "\(error.problem)")
    }
}
