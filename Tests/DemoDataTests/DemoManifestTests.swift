import DemoData
import Foundation
import Manifest
import Statistics
import Testing

@Test func sameSeedSameBytes() {
    let a = DemoManifestGenerator(rows: 300, seed: 7, brokenRows: 9)
    let b = DemoManifestGenerator(rows: 300, seed: 7, brokenRows: 9)
    let c = DemoManifestGenerator(rows: 300, seed: 8, brokenRows: 9)
    #expect(a.csv(a.generate()) == b.csv(b.generate()))
    #expect(a.csv(a.generate()) != c.csv(c.generate()))
}

@Test func brokenRowsAreAllRejectedForTheirOwnReason() throws {
    let generator = DemoManifestGenerator(rows: 50, seed: 1, brokenRows: 9)
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(UUID().uuidString).csv")
    try Data(generator.csv(generator.generate())).write(to: url)
    let manifest = try ManifestReader().read(path: url.path)
    #expect(manifest.items.count == 50)
    #expect(manifest.rejected.count == 9)
    #expect(
        Set(manifest.rejected.map(\.kind)) == [
            .missingValue, .notANumber, .unknownMediaType, .emptyCaption, .outOfRange, .wrongFieldCount, .duplicatePath,
            .invalidUTF8,
        ])
}

/// The archive's shape at a size a debug test can afford; the full 199,994-row check runs in
/// bench/analyze_vs_polars.sh.
@Test func sharesFollowTheSeedReport() throws {
    let rows = DemoManifestGenerator(rows: 40_000, seed: 42).generate()
    let items = rows.enumerated().map { index, row in
        ManifestItem(
            line: index + 2, path: row.path, mediaType: row.mediaType,
            resolution: Resolution(width: row.width, height: row.height), duration: row.duration,
            category: row.category, caption: row.caption)
    }
    let stats = StatisticsCalculator.compute(name: "demo", source: "demo", items: items)
    func share(_ label: String, _ distribution: [LabelCount]) -> Double {
        distribution.first { $0.label == label }?.share ?? 0
    }
    #expect(abs(stats.mediaTypes.images.share - 0.5) < 0.01)
    #expect(abs(share("1920×1080", stats.resolutions.distribution) - 0.7778) < 0.01)
    #expect(abs(share("720×512", stats.resolutions.distribution) - 0.1552) < 0.01)
    #expect(abs(share("1280×720", stats.resolutions.distribution) - 0.0586) < 0.01)
    for (name, count) in [
        ("생활/문화", 57_300.0), ("역사/사회", 36_158), ("자연/풍경", 33_819), ("공간/건축", 32_940),
        ("사건/사고", 21_209), ("축제", 14_394), ("유형문화유산", 2_220), ("무형문화유산", 1_954),
    ] {
        #expect(abs(share(name, stats.categories.distribution) - count / 199_994) < 0.01, "\(name)")
    }
    let buckets = stats.durations.buckets.map(\.share)
    for (got, want) in zip(buckets, [0.0002, 0.43609, 0.4936, 0.05919, 0.01092]) { #expect(abs(got - want) < 0.01) }
    #expect(abs(stats.durations.seconds.mean! - 23.17) < 1.5)
    #expect(stats.captions.length.min! >= 125)
    #expect(abs(stats.captions.length.mean! - 440) < 25)
    #expect(abs(stats.words.wordsPerCaption.mean! - 106.4) < 8)
    #expect(stats.words.topWords.prefix(3).map(\.word) == ["있다", "있는", "있으며"])
    #expect(abs(stats.words.captionTTR.mean! - 0.85) < 0.06)
}
