import Foundation
import Testing

@testable import Evaluation

/// metrics.json as the engine's end-to-end test wrote it (engine/tests/fixtures/metrics.sample.json).
func sampleMetrics() throws -> EvaluationMetrics {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("engine/tests/fixtures/metrics.sample.json")
    return try EvaluationMetrics.decode(try Data(contentsOf: url), source: url.path)
}

@Suite struct EvaluationReportTests {
    @Test func theEngineFixtureDecodes() throws {
        let metrics = try sampleMetrics()
        #expect(metrics.categories.map(\.category) == ["자연/풍경", "축제"])
        #expect(metrics.overall.category == nil && metrics.overall.generatedVideos == 3)
        let festival = try #require(metrics.categories.last)
        #expect(festival.fvd?.generated == 2 && festival.fvd?.stable == false && festival.fvd?.value != nil)
        #expect(metrics.categories.first?.fvd?.value == nil)
        #expect(metrics.overall.lpips?.toReference?.pairs == 2 && metrics.overall.lpips?.diversity?.pairs == 1)
        #expect(metrics.overall.inceptionScore?.generated?.frames == 6)
        #expect(metrics.inputs.referenceImagesIgnored == 1 && metrics.settings.fvdMinSamples == 256)
        #expect(metrics.warnings.contains { $0.code == "fvd_few_samples" && $0.category == "축제" })
    }

    @Test func terminalTableAlignsKoreanCategoriesAndMarksUnstableFVD() throws {
        let metrics = try sampleMetrics()
        let text = EvaluationReport.terminal(metrics)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("category"))
        #expect(lines[2].hasPrefix("자연/풍경 ") && lines[3].hasPrefix("축제 ") && lines[4].hasPrefix("all "))
        // every table row has the same display width (Hangul counts two columns)
        let widths = lines[0...4].filter { !$0.hasPrefix("─") }.map(EvaluationReport.displayWidth)
        #expect(Set(widths).count == 1)
        #expect(lines[2].contains(" n/a ") && lines[3].contains(" *"))
        #expect(text.contains("fewer than 256 clips per set"))
        let festival = try #require(metrics.categories.last?.fvd?.value)
        #expect(lines[3].contains(String(format: "%.1f", festival)))
    }

    @Test func htmlIsSelfContainedEscapedAndHasEveryCategory() throws {
        var metrics = try sampleMetrics()
        metrics.warnings.append(.init(code: "x", message: "<script>alert(1)</script> & more", category: nil))
        let page = EvaluationReport.html(metrics)
        #expect(page.hasPrefix("<!doctype html>"))
        #expect(!page.contains("<script>") && page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"))
        #expect(
            page.contains("<th>자연/풍경</th>") && page.contains("<th>축제</th>")
                && page.contains("<tr class=\"overall\"><th>all</th>"))
        #expect(!page.contains("http://") || page.contains("xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(
            page.contains("<figcaption lang=\"en\">FVD (lower is better)</figcaption>")
                && page.contains("<dt>LPIPS</dt>"))
        #expect(page.components(separatedBy: "<svg").count - 1 == 5)
    }

    @Test func displayWidthCountsWideCharacters() {
        #expect(EvaluationReport.displayWidth("abc") == 3)
        #expect(EvaluationReport.displayWidth("축제") == 4)
        #expect(EvaluationReport.displayWidth("자연/풍경") == 9)
        #expect(EvaluationReport.displayWidth("\u{1112}\u{1161}\u{11AB}") == 2)  // 한 decomposed (NFD)
    }
}
