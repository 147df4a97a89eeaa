import Foundation
import Runs
import Testing
@testable import Evaluation

/// A stand-in engine: a shell script in the place of python that prints events and exits as told.
private func fakeEngine(_ script: String) throws -> (EngineInstallation, URL) {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("fake-engine-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let python = folder.appendingPathComponent("python")
    try Data(("#!/bin/sh\n" + script).utf8).write(to: python)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: python.path)
    return (EngineInstallation(python: python.path), folder)
}

private final class Received: @unchecked Sendable {
    private let lock = NSLock()
    private var names: [String] = []
    func add(_ name: String) { lock.lock(); names.append(name); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return names }
}

@Suite struct EvaluationRunTests {
    @Test func eventsArriveInOrderAndTheOutcomeKeepsTheLastOnes() throws {
        let (installation, folder) = try fakeEngine("""
        echo "args: $*" >&2
        printf '{"event":"run_started","stage":"evaluate"}\\n'
        printf 'not json\\n'
        printf '{"event":"evaluate_progress","done":1,"total":2}\\n{"event":"evaluate_progress","done":2,"total":2}\
        \\n'
        printf '{"event":"run_finished","status":"completed","outputs":{"metrics_json":"/x/metrics.json"}}'
        """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let received = Received()
        let run = EvaluationRun(installation: installation, configPath: "/x/evaluate.json", logPath: folder.appendingPathComponent("log").path)
        let outcome = try run.run { received.add($0.name) }
        #expect(received.all == ["run_started", "evaluate_progress", "evaluate_progress", "run_finished"])
        #expect(outcome.completed && outcome.termination == .exited(0))
        #expect(outcome.finished?["outputs"]?["metrics_json"] == .string("/x/metrics.json"))
        #expect(outcome.logTail.first == "args: -m wanlora_engine evaluate --config /x/evaluate.json")
        let log = try String(contentsOf: folder.appendingPathComponent("log"), encoding: .utf8)
        #expect(log.contains("args: -m wanlora_engine evaluate"))
    }

    @Test func aFailingEngineLeavesItsErrorAndLog() throws {
        let (installation, folder) = try fakeEngine("""
        printf '{"event":"error","code":"model_load_failed","problem":"weights/i3d_pretrained_400.pt \
        does not exist","remedy":"put it there"}\\n'
        printf '{"event":"run_finished","status":"failed"}\\n'
        echo "Traceback: boom" >&2
        exit 1
        """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = EvaluationRun(installation: installation, configPath: "/x.json", logPath: folder.appendingPathComponent("log").path)
        let outcome = try run.run { _ in }
        #expect(!outcome.completed && outcome.termination == .exited(1) && outcome.finished?.string("status") == "failed")
        #expect(outcome.errors.first?.string("problem") == "weights/i3d_pretrained_400.pt does not exist")
        #expect(outcome.logTail == ["Traceback: boom"])
    }

    @Test func theEngineFixtureOfEvaluateEventsDecodes() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("engine/tests/fixtures/events.evaluate.sample.jsonl")
        let events = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { try #require(EvaluationEvent(line: String($0))) }
        #expect(events.map(\.name) == ["evaluate_plan", "evaluate_progress", "run_finished"])
        #expect(events[0].int("generated_videos") == 3 && events[1].int("total") == 6)
        #expect(events[2].string("stage") == "evaluate" && events[2].string("status") == "completed")
    }

    @Test func eventLinesParseAsJSONWithNumbersEitherWay() throws {
        let event = try #require(EvaluationEvent(line: #"{"event":"evaluate_progress","done":3,"total":4.0,"videos_per_second":null}"#))
        #expect(event.name == "evaluate_progress" && event.int("done") == 3 && event.int("total") == 4)
        #expect(event.string("phase") == nil)
        #expect(EvaluationEvent(line: #"{"no_event":1}"#) == nil && EvaluationEvent(line: "{torn") == nil)
    }
}
