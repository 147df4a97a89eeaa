import Foundation
import Runs
import Support
import Testing

@testable import Reports

/// The `<svg …>` opening tags of `html`.
private func svgTags(_ html: String) -> [Substring] {
    html.components(separatedBy: "<svg ").dropFirst().map { $0.prefix { $0 != ">" } }
}

private func allPages() throws -> [(String, String)] {
    [
        ("report", HTMLReport.render(PageFixtures.report())),
        (
            "gallery",
            try PageFixtures.gallery(
                in: FileManager.default.temporaryDirectory.appendingPathComponent(
                    "wanlora-gallery-\(UUID().uuidString)"))
        ),
        ("evaluation", try PageFixtures.evaluation()), ("run", try PageFixtures.run()),
    ]
}

@Suite struct PageTextTests {
    @Test func markdownCodeSpansBecomeCodeElements() {
        #expect(
            HTMLText.inline("run `wanlora prepare` on `val`") == "run <code>wanlora prepare</code> on <code>val</code>")
        #expect(HTMLText.inline("`a<b>` & c") == "<code>a&lt;b&gt;</code> &amp; c")
        #expect(HTMLText.inline("one ` backtick") == "one ` backtick")
        #expect(HTMLText.inline("`x` and ` open") == "<code>x</code> and ` open")
        let html = HTMLReport.render(PageFixtures.report())
        #expect(html.contains("run <code>wanlora prepare</code> on this split too"))
        #expect(!html.contains("`wanlora prepare`"))
    }

    @Test func everyPageAndChartAsksForKoreanFonts() throws {
        for (name, html) in try allPages() {
            #expect(html.contains("font-family:\(HTMLText.fontFamily)"), "\(name): the page's CSS")
            for family in ["'Noto Sans CJK KR'", "'Noto Sans KR'", "'Apple SD Gothic Neo'", "'Malgun Gothic'"] {
                #expect(HTMLText.fontFamily.contains(family))
            }
            let tags = svgTags(html)
            #expect(name == "gallery" || !tags.isEmpty, "\(name) has charts")
            for tag in tags {
                #expect(tag.contains("font-family=\"\(HTMLText.fontFamily)\""), "\(name): \(tag)")
            }
            // The run page's text is English; its charts and tables hold numbers.
            #expect(name == "run" || html.contains("lang=\"ko\""), "\(name): Korean text is marked")
        }
    }

    @Test func everyChartScalesToTheColumn() throws {
        for (name, html) in try allPages() {
            for tag in svgTags(html) {
                #expect(tag.contains("viewBox=\"0 0 420.0 "), "\(name): \(tag)")
                #expect(tag.contains("width=\"100%\"") && tag.contains("max-width:525.0px"), "\(name): \(tag)")
            }
        }
        // A label wider than its column is cut with an ellipsis, the whole label kept as the tooltip.
        let bars = SVGChart.groupedBars(
            labels: ["아주아주아주아주긴 카테고리 이름"], series: [.init(name: "train", values: [0.5])],
            value: { "\($0)" })
        #expect(bars.contains("><title>아주아주아주아주긴 카테고리 이름</title>아주아주아주아…</text>"))
    }
}

@Suite struct RunPageTests {
    @Test func drawsEverySeriesOfTheEvents() throws {
        let html = try PageFixtures.run()
        #expect(html.contains("<h1>Run 국악-lora</h1>"))
        #expect(html.contains("NVIDIA H100 × 1, engine 0.1.0 · 960 training and 64 validation items, 16 per step"))
        // One polyline per series: loss ×3, validation ×1 (high/low not recorded), by timestep ×6, lr, memory ×3,
        // samples/s, s/step.
        #expect(html.components(separatedBy: "<polyline").count - 1 == 3 + 1 + 6 + 1 + 3 + 1 + 1)
        let lossLine = try #require(html.components(separatedBy: "<polyline").dropFirst().first)
        #expect(lossLine.prefix { $0 != ">" }.components(separatedBy: ",").count - 1 == 60)
        #expect(html.contains("Not recorded: high-noise expert, low-noise expert."))
        // The last evaluation by timestep: 0.3 + t / 2000 + e^(−60/25) at step 60.
        #expect(html.contains("<th>step 60</th><td>0.4407</td><td>0.5407</td><td>0.6407</td>"))
        #expect(html.contains("<td>0.7407</td><td>0.8407</td><td>0.8657</td>"))
        // The y axis of the loss chart: the lowest and highest of the three series.
        let low = (0.4 + 1.2 * exp(-60.0 / 20)) * 0.95
        let high = (0.4 + 1.2 * exp(-1.0 / 20)) * 1.1
        #expect(
            html.contains(">\(NumberFormat.decimal(low, 4))</text>")
                && html.contains(">\(NumberFormat.decimal(high, 4))</text>"))
    }

    @Test func namesWhatTheEventsDoNotCarry() throws {
        let cpu = RunPage.html(name: "cpu", events: try PageFixtures.runEvents(gpu: false), status: nil)
        #expect(cpu.contains("Not recorded: GPU peak, GPU allocated."))
        let empty = RunPage.html(name: "new", events: [], status: nil)
        #expect(empty.contains("No training steps in <code>events.jsonl</code> yet"))
        #expect(empty.contains("Not recorded: the step events carry no loss."))
        #expect(empty.contains("Not recorded: no eval events (no validation split, or no evaluation reached yet)."))
        #expect(!empty.contains("<svg"))
    }

    @Test func aResumedRunKeepsTheLaterStartsSteps() throws {
        var events = try PageFixtures.runEvents()
        let again = try EngineEvent(
            line: """
                {"event": "step", "schema_version": 1, "time": "2026-12-07T06:00:00.000Z", "elapsed_s": 1.0, \
                "step": 60, "total_steps": 60, "epoch": 1.0, "loss": 9.5, "loss_high": null, "loss_low": null, \
                "samples_high": 8, "samples_low": 8, "lr": 0.0, "grad_norm": null, "seconds_per_step": 20.0, \
                "samples_per_second": 0.8, "gpu_memory_allocated_bytes": null, "gpu_memory_peak_bytes": null, \
                "host_memory_peak_bytes": 1, "eta_seconds": 0.0}
                """)
        events.append(again)
        let html = RunPage.html(name: "resumed", events: events, status: nil)
        #expect(html.contains(">9.5000</text>"))  // the top of the loss axis is the repeated step's loss
        let lossLine = try #require(html.components(separatedBy: "<polyline").dropFirst().first)
        #expect(lossLine.prefix { $0 != ">" }.components(separatedBy: ",").count - 1 == 60)
    }
}
