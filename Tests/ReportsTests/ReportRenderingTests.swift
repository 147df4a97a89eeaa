import Foundation
import Manifest
import Reports
import Statistics
import Testing

private func sampleReport() -> AnalysisReport {
    func item(_ path: String, _ type: MediaType, _ width: Int, _ height: Int, _ category: String, _ caption: String)
        -> ManifestItem
    {
        ManifestItem(
            line: 2, path: path, mediaType: type, resolution: Resolution(width: width, height: height),
            duration: type == .video ? 21.5 : nil, category: category, caption: caption)
    }
    let train = [
        item("a.jpg", .image, 1280, 720, "축제", "사람들이 <모여> 있다 & 웃는다"),
        item("b.mp4", .video, 1280, 720, "자연/풍경", "바다 | 하늘 있다"),
    ]
    let val = [item("c.mp4", .video, 1920, 1080, "축제", "거리 \"행사\" 있다")]
    func manifest(_ items: [ManifestItem], _ source: String) -> Manifest {
        Manifest(
            source: source, format: .csv, columns: [], columnMap: ResolvedColumns(indices: [:], header: []),
            items: items,
            rejected: [
                RejectedRow(
                    line: 9, column: "width", kind: .notANumber, detail: "width \"x\" is not a whole number", raw: "x")
            ])
    }
    return Analyzer.analyze(
        [
            NamedManifest(name: "train", role: .split, manifest: manifest(train, "train.csv")),
            NamedManifest(name: "val", role: .split, manifest: manifest(val, "val.csv")),
        ], generator: "wanlora test")
}

@Test func markdownHasEveryTableSideBySide() {
    let markdown = MarkdownReport.render(sampleReport())
    for title in [
        "## Findings", "## Rows read", "## Media types", "## Resolutions", "## Video durations", "## Categories",
        "## Caption length (characters)", "## Words", "## Top words", "## Duration and caption length",
        "## Split comparison",
    ] {
        #expect(markdown.contains(title), "missing \(title)")
    }
    #expect(markdown.contains("|  | all splits | train | val |"))
    #expect(markdown.contains("| images | 1 (33.33%) | 1 (50.00%) | 0 (0.00%) |"))
    #expect(markdown.contains("| 1 | 있다 (3) | 있다 (2) | 거리 (1) |"))
    #expect(markdown.contains("**critical**"))
}

@Test func htmlIsSelfContainedAndEscaped() {
    let html = HTMLReport.render(sampleReport())
    #expect(html.hasPrefix("<!DOCTYPE html>"))
    #expect(html.contains("<meta name=\"viewport\""))
    #expect(html.contains("<svg"))
    // No external resources: no scripts, stylesheets, images or fonts fetched from anywhere.
    for pattern in ["<script", "src=", "<link", "@import", "url("] {
        #expect(!html.contains(pattern), "found \(pattern)")
    }
}

@Test func htmlEscapesNamesFromTheData() {
    let item = ManifestItem(
        line: 2, path: "a.jpg", mediaType: .image, resolution: Resolution(width: 1280, height: 720),
        duration: nil, category: "<script>alert(1)</script> & co", caption: "캡션")
    let manifest = Manifest(
        source: "x.csv", format: .csv, columns: [], columnMap: ResolvedColumns(indices: [:], header: []),
        items: [item], rejected: [])
    let html = HTMLReport.render(Analyzer.analyze([NamedManifest(name: "all", role: .whole, manifest: manifest)]))
    #expect(!html.contains("<script>"))
    #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"))
}

@Test func jsonUsesTheDocumentedSchema() throws {
    let data = try JSONReport.render(sampleReport())
    let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    #expect(object["schema_version"] as? Int == 1)
    for key in [
        "generator", "target", "caption_length_limit", "datasets", "comparisons", "overlaps", "rejects", "findings",
    ] {
        #expect(object[key] != nil, "missing \(key)")
    }
    let datasets = try #require(object["datasets"] as? [[String: Any]])
    #expect(datasets.map { $0["name"] as? String } == ["all splits", "train", "val"])
    let words = try #require(datasets[1]["words"] as? [String: Any])
    #expect(words["total_words"] as? Int == 7)
    let top = try #require(words["top_words"] as? [[String: Any]])
    #expect(top.first?["word"] as? String == "있다")
    let comparison = try #require((object["comparisons"] as? [[String: Any]])?.first)
    #expect(comparison["category_tvd"] != nil)
}

@Test func terminalSummaryIsShort() {
    let text = TerminalSummary.render(sampleReport())
    #expect(text.split(separator: "\n").count <= 20)
    #expect(text.contains("val: 1 items (0 images, 1 videos), 1 rejected; 0.00% at 1280×720"))
}
