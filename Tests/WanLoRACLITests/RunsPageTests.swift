import Foundation
import Testing

/// `wanlora runs --html`: each run folder gets run.html from its events.
struct RunsPageTests {
    @Test func runsHtmlWritesEachRunsPage() throws {
        let folder = BinaryRunner.temporaryFolder()
        let run = folder.appendingPathComponent("runs/demo")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            at: folder.appendingPathComponent("runs/empty"), withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: folder.appendingPathComponent("runs/empty/config.resolved.json"))
        // The training events of the engine's fixture (a real tiny run: one step event and one evaluation).
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("engine/tests/fixtures/events.sample.jsonl")
        let lines = try String(contentsOf: fixture, encoding: .utf8).split(separator: "\n").filter {
            $0.contains("\"stage\": \"train\"") || $0.contains("\"event\": \"step\"")
                || $0.contains("\"event\": \"eval\"")
        }.prefix(4)
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: run.appendingPathComponent("events.jsonl"))

        let result = try BinaryRunner.run(["runs", "--runs-dir", folder.appendingPathComponent("runs").path, "--html"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("wrote \(run.path)/run.html"))
        let page = try String(contentsOf: run.appendingPathComponent("run.html"), encoding: .utf8)
        #expect(page.contains("<h1>Run demo</h1>") && page.contains("state completed · step 2 of 2"))
        // One step: a dot per series, no line; the evaluation's six timesteps in the table.
        #expect(page.contains("<circle") && page.contains("<th>step 2</th><td>1.5181</td><td>1.5836</td>"))
        let empty = try String(
            contentsOf: folder.appendingPathComponent("runs/empty/run.html"), encoding: .utf8)
        #expect(empty.contains("No training steps in <code>events.jsonl</code> yet"))
    }
}
