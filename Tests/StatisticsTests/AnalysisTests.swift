import Manifest
import Statistics
import Testing

private func item(
    _ path: String, _ type: MediaType = .image, _ width: Int = 1280, _ height: Int = 720, category: String = "A"
) -> ManifestItem {
    ManifestItem(
        line: 2, path: path, mediaType: type, resolution: Resolution(width: width, height: height),
        duration: type == .video ? 15 : nil, category: category, caption: "캡션 \(path)")
}

private func manifest(_ items: [ManifestItem], _ source: String) -> Manifest {
    Manifest(
        source: source, format: .csv, columns: [], columnMap: ResolvedColumns(indices: [:], header: []), items: items,
        rejected: [])
}

@Test func unconvertedValidationSplitIsCritical() throws {
    let train = (0..<20).map { item("t\($0).jpg") }
    let val = (0..<10).map { item("v\($0).jpg", .image, $0 < 1 ? 1280 : 1920, $0 < 1 ? 720 : 1080) }
    let report = Analyzer.analyze([
        NamedManifest(name: "train", role: .split, manifest: manifest(train, "train.csv")),
        NamedManifest(name: "val", role: .split, manifest: manifest(val, "val.csv")),
    ])
    #expect(report.datasets.map(\.name) == ["all splits", "train", "val"])
    let finding = try #require(report.findings.first { $0.code == "not_at_target_resolution" && $0.dataset == "val" })
    #expect(finding.severity == .critical)
    #expect(finding.message.hasPrefix("90.00% of val (9 of 10 items) is not at the training resolution 1280×720"))
    #expect(report.findings.first?.severity == .critical)
}

@Test func itemsInTwoSplitsAreALeak() throws {
    let train = [item("a.jpg"), item("b.jpg")]
    let val = [item("b.jpg"), item("c.jpg")]
    let report = Analyzer.analyze([
        NamedManifest(name: "train", role: .split, manifest: manifest(train, "train.csv")),
        NamedManifest(name: "val", role: .split, manifest: manifest(val, "val.csv")),
    ])
    #expect(report.overlaps.first?.sharedPaths == 1)
    let leak = try #require(report.findings.first { $0.code == "split_leak" })
    #expect(leak.severity == .critical)
    #expect(leak.examples == ["b.jpg"])
}

@Test func splitComparisonDistances() throws {
    let a = (0..<10).map { item("a\($0).jpg", category: $0 < 5 ? "X" : "Y") }
    let b = (0..<10).map { item("b\($0).jpg", category: "X") }
    let report = Analyzer.analyze([
        NamedManifest(name: "all", role: .whole, manifest: manifest(a + b, "all.csv")),
        NamedManifest(name: "a", role: .split, manifest: manifest(a, "a.csv")),
        NamedManifest(name: "b", role: .split, manifest: manifest(b, "b.csv")),
    ])
    #expect(report.datasets.map(\.name) == ["all", "a", "b"])
    let ab = try #require(report.comparisons.first { $0.a == "a" && $0.b == "b" })
    #expect(ab.categoryTVD == 0.5)
    #expect(ab.mediaTypeTVD == 0)
    #expect(report.findings.contains { $0.code == "category_shift" })
}

@Test func minorityCategoriesAndImbalance() throws {
    var items: [ManifestItem] = []
    for (category, count) in [("big", 100), ("mid", 40), ("tiny", 5)] {
        items += (0..<count).map { item("\(category)\($0).jpg", category: category) }
    }
    let report = Analyzer.analyze([NamedManifest(name: "all", role: .whole, manifest: manifest(items, "all.csv"))])
    let data = report.datasets[0]
    #expect(data.categories.maxMinRatio == 20)
    #expect(data.categories.minority.map(\.label) == ["tiny"])  // 5 < 145 / 3 / 4 = 12.08
    let imbalance = try #require(report.findings.first { $0.code == "category_imbalance" })
    #expect(imbalance.message.contains("big (100) vs tiny (5) is 20.0:1"))
}
