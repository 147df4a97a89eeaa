import Foundation
import Testing

@testable import Runs

/// EngineStage with a scripted stand-in for the engine: the events it writes, how it reacts to
/// Ctrl-C, and the outcome the stage collects from them.
@Suite(.serialized) struct EngineStageTests {
    /// A stage whose "python" is `script` (it receives `-m wanlora_engine STAGE --config FILE`).
    func stage(
        _ script: String, _ name: EngineEvent.Stage, in folder: String,
        grace: StageGrace = .training
    ) throws -> EngineStage {
        try writeScript(folder + "/python", script)
        return EngineStage(
            launch: .module(
                name, configPath: folder + "/job.json",
                engine: EngineInstallation(python: folder + "/python")),
            logPath: folder + "/engine.log", grace: grace)
    }

    /// One event line of the contract (common fields included), as the engine writes it.
    func event(_ type: String, _ fields: String) -> String {
        #"{"event": "\#(type)", "schema_version": 1, "time": "2026-12-07T00:00:00.000Z", "elapsed_s": 0.5, \#(fields)}"#
    }

    func started(_ stage: String) -> String {
        event(
            "run_started",
            #""stage": "\#(stage)", "run_name": "r", "engine_version": "0.1.0", "torch_version": "2", "#
                + #""diffusers_version": "0", "device": "cpu", "device_name": "#
                + #""cpu", "world_size": 1, "config_path": "/j", "#
                + #""resumed_from_step": null"#)
    }

    func finished(_ stage: String, _ status: String, outputs: String = "{}") -> String {
        event(
            "run_finished",
            #""stage": "\#(stage)", "status": "\#(status)", "step": null, "seconds": 1.5, "#
                + #""outputs": \#(outputs), "summary": {}"#)
    }

    /// A sample run: its own events reach the observer typed, a line that is no event is stray,
    /// and the outcome carries the status, the outputs and the engine's command line.
    @Test func sampleEventsAndOutcome() throws {
        let folder = try scratchFolder("stage")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let video = event(
            "sample_video",
            #""video": 1, "videos": 1, "id": "0001", "category": null, "#
                + #""path": "/o/videos/0001.mp4", "seconds": 2.5, "seed": 42, "existing": false"#)
        let lines = [
            started("sample"), "Loading weights: 100%", video,
            finished("sample", "completed", outputs: #"{"dir": "/o", "videos": ["/o/videos/0001.mp4"]}"#),
        ]
        let engine = try stage(
            lines.map { "echo '\($0)'" }.joined(separator: "\n") + "\necho \"$*\" >&2\n", .sample, in: folder)
        let seen = LineBox()
        let outcome = try engine.run(
            observer: StageObserver(
                event: { event, _ in
                    if case .sampleVideo(let v) = event.body {
                        seen.append("video \(v.id) seed \(v.seed)")
                    } else {
                        seen.append(event.type)
                    }
                },
                strayLine: { seen.append("stray: " + $0) }))
        #expect(seen.lines == ["run_started", "stray: Loading weights: 100%", "video 0001 seed 42", "run_finished"])
        #expect(outcome.completed && outcome.termination == .exited(0) && !outcome.stopRequested)
        #expect(outcome.outputs == ["dir": "/o"] && outcome.error == nil)
        #expect(outcome.logTail == ["-m wanlora_engine sample --config \(folder)/job.json"])
        #expect(outcome.logPath == folder + "/engine.log")
    }

    /// A failing stage: the outcome keeps the last error event's problem and remedy and the log's end.
    @Test func failureKeepsTheErrorAndTheLog() throws {
        let folder = try scratchFolder("stage")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let error = event(
            "error",
            #""code": "model_load_failed", "problem": "weights/i3d.pt does not exist", "#
                + #""remedy": "put it there", "step": null, "last_checkpoint": null"#)
        let engine = try stage(
            [started("evaluate"), error, finished("evaluate", "failed")].map { "echo '\($0)'" }
                .joined(separator: "\n") + "\necho 'Traceback: boom' >&2\nexit 1\n", .evaluate, in: folder)
        let outcome = try engine.run(observer: StageObserver(event: { _, _ in }))
        #expect(!outcome.completed && outcome.termination == .exited(1) && outcome.finished?.status == .failed)
        #expect(outcome.error?.problem == "weights/i3d.pt does not exist" && outcome.error?.remedy == "put it there")
        #expect(outcome.logTail == ["Traceback: boom"])
        #expect(try String(contentsOfFile: folder + "/engine.log", encoding: .utf8) == "Traceback: boom\n")
    }

    /// Ctrl-C during a train step: SIGINT reaches the engine, which finishes, reports `interrupted`
    /// and exits 130; the outcome says a stop was asked for, and the grace followed the steps.
    @Test func interruptedStage() throws {
        let folder = try scratchFolder("stage")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let step = event(
            "step",
            #""step": 3, "total_steps": 9, "epoch": 0.5, "loss": 0.25, "loss_high": null, "#
                + #""loss_low": null, "samples_high": 1, "samples_low": 3, "lr": 1e-4, "grad_norm": null, "#
                + #""seconds_per_step": 2.5, "samples_per_second": 1.6, "gpu_memory_allocated_bytes": null, "#
                + #""gpu_memory_peak_bytes": null, "host_memory_peak_bytes": 1024, "eta_seconds": 15"#)
        try Data((finished("train", "interrupted") + "\n").utf8).write(
            to: URL(fileURLWithPath: folder + "/finished.jsonl"))
        let engine = try stage(
            """
            trap 'echo got INT >&2; cat "$(dirname "$0")/finished.jsonl"; exit 130' INT
            echo '\(started("train"))'
            echo '\(step)'
            while :; do sleep 0.05; done
            """, .train, in: folder)
        #expect(engine.interruptGrace() == 60)
        let actions = LineBox()
        let outcome = try engine.run(
            observer: StageObserver(event: { event, _ in
                if case .step = event.body { actions.append("\(engine.requestStop())") }
            }))
        #expect(actions.lines == ["interrupt"])
        #expect(outcome.termination == .exited(130) && outcome.stopRequested && !outcome.completed)
        #expect(outcome.finished?.status == .interrupted && outcome.lastStep == 3)
        #expect(outcome.logTail == ["got INT"])
        // The contract's wait after SIGINT: 2 × the last seconds per step + 60 s.
        #expect(engine.interruptGrace() == 2 * 2.5 + 60)
        #expect(engine.requestStop() == .none)  // it has ended
    }

    /// An engine that ignores SIGINT and SIGTERM is stopped by the grace timers alone: SIGTERM,
    /// then SIGKILL, each announced to the observer.
    @Test func ignoredSignalsEscalateToKill() throws {
        let folder = try scratchFolder("stage")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let engine = try stage(
            """
            trap '' INT TERM
            echo '\(started("evaluate"))'
            while :; do sleep 0.05; done
            """, .evaluate, in: folder, grace: StageGrace(interruptBase: 0.2, terminate: 0.2))
        let escalations = LineBox()
        let outcome = try engine.run(
            observer: StageObserver(
                event: { _, _ in engine.requestStop() }, escalation: { escalations.append("\($0)") }))
        #expect(outcome.termination == .signaled(SIGKILL) && outcome.stopRequested && outcome.finished == nil)
        #expect(escalations.lines == ["terminate", "kill"])
    }

    /// A stop asked for before the start is recorded; nothing is signalled.
    @Test func stopBeforeTheStart() throws {
        let folder = try scratchFolder("stage")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let engine = try stage("exit 0\n", .cache, in: folder)
        #expect(!engine.stopRequested)
        #expect(engine.requestStop() == .interrupt && engine.stopRequested && engine.processID == 0)
    }
}
