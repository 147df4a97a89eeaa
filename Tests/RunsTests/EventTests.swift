import Foundation
import Testing

@testable import Runs

/// The engine's events as the contract's fixture shows them (engine/tests/fixtures/events.sample.jsonl).
@Suite struct EventTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The fixture's cache and train events (its `sample` stage events are decoded by the
    /// Sampling library's tests).
    static func sampleLines() throws -> [String] {
        let url = repoRoot.appendingPathComponent("engine/tests/fixtures/events.sample.jsonl")
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
            .filter { !$0.contains("\"stage\": \"sample\"") && !$0.contains("\"event\": \"sample_") }
    }

    @Test func everySampleLineDecodes() throws {
        let lines = try Self.sampleLines()
        #expect(lines.count == 19)
        let events = try lines.map { try EngineEvent(line: $0) }
        #expect(
            events.map(\.type) == [
                "run_started", "cache_plan", "progress", "warning", "run_finished", "run_started", "warning",
                "train_plan", "step", "eval", "checkpoint", "run_finished", "error", "run_finished", "run_finished",
                "run_finished", "stopped", "nonfinite_skipped", "nonfinite_rollback",
            ])
        for event in events {
            #expect(event.schemaVersion == 1)
            #expect(event.time.hasPrefix("2026-11-25T") && event.time.hasSuffix("Z"))
            if case .other = event.body { Issue.record("\(event.type) decoded as an unknown type") }
        }
    }

    @Test func fieldsCarryTheirValues() throws {
        let events = try Self.sampleLines().map { try EngineEvent(line: $0) }
        guard case .runStarted(let started) = events[0].body else {
            Issue.record("run_started")
            return
        }
        #expect(
            started.stage == .cache && started.deviceName == "cpu" && started.worldSize == 1
                && started.resumedFromStep == nil)
        #expect(started.torchVersion == "2.13.0+cpu" && started.configPath == "/work/demo/config.resolved.json")
        guard case .cachePlan(let plan) = events[1].body else {
            Issue.record("cache_plan")
            return
        }
        #expect(
            plan.splits == ["train": 4, "val": 2] && plan.estimatedBytes == 32256 && plan.freeBytes == 80_475_717_632)
        guard case .progress(let progress) = events[2].body else {
            Issue.record("progress")
            return
        }
        #expect(progress.phase == "latents:train" && progress.done == 1 && progress.total == 6)
        guard case .warning(let skipped) = events[3].body else {
            Issue.record("warning")
            return
        }
        #expect(skipped.code == "item_skipped" && skipped.message.contains("clip0003.mp4"))
        guard case .runFinished(let cache) = events[4].body else {
            Issue.record("run_finished")
            return
        }
        #expect(cache.stage == .cache && cache.status == .completed && cache.step == nil)
        #expect(cache.summary.itemsNew == 5 && cache.summary.itemsSkippedNew == 1 && cache.summary.cacheBytes == 20473)
        guard case .trainPlan(let train) = events[7].body else {
            Issue.record("train_plan")
            return
        }
        #expect(
            train.trainableParameters == ["high": 2048, "low": 2048] && train.totalSteps == 2
                && train.samplesPerStep == 4)
        #expect(train.overfitSamples == nil && train.optimizer == "adamw")
        guard case .step(let step) = events[8].body else {
            Issue.record("step")
            return
        }
        #expect(step.step == 2 && step.totalSteps == 2 && step.loss == 1.5840156078338623)
        #expect(step.samplesHigh == 1 && step.samplesLow == 7 && step.lr == 0.001)
        #expect(step.gpuMemoryPeakBytes == nil && step.hostMemoryPeakBytes == 475_807_744 && step.etaSeconds == 0)
        guard case .eval(let eval) = events[9].body else {
            Issue.record("eval")
            return
        }
        #expect(eval.split == "val" && eval.samples == 2 && eval.lossesByTimestep.count == 6)
        #expect(eval.lossesByTimestep["950"] == 1.443006992340088)
        guard case .checkpoint(let checkpoint) = events[10].body else {
            Issue.record("checkpoint")
            return
        }
        #expect(checkpoint.step == 2 && checkpoint.bytes == 119_957 && checkpoint.removed.isEmpty)
        guard case .runFinished(let done) = events[11].body else {
            Issue.record("run_finished")
            return
        }
        #expect(done.status == .completed && done.outputs.count == 5 && done.summary.finalValLoss == 1.5289680163065593)
        guard case .stopped(let stopped) = events[16].body else {
            Issue.record("stopped")
            return
        }
        #expect(stopped.reason == "preempted" && stopped.signal == "SIGTERM" && stopped.step == 37 && stopped.saved)
        guard case .nonFinite(let skipped) = events[17].body, case .nonFinite(let rollback) = events[18].body else {
            Issue.record("nonfinite_*")
            return
        }
        #expect(skipped.action == "skipped" && skipped.step == 5 && rollback.action == "rollback" && rollback.step == 5)
        guard case .error(let error) = events[12].body else {
            Issue.record("error")
            return
        }
        #expect(
            error.code == "non_finite_loss" && error.step == 5
                && error.lastCheckpoint?.hasSuffix("step-00000004") == true)
        guard case .runFinished(let diverged) = events[13].body else {
            Issue.record("run_finished")
            return
        }
        #expect(diverged.status == .diverged && diverged.summary == EngineEvent.RunFinished.Summary())
        guard case .runFinished(let interrupted) = events[14].body, case .runFinished(let overfit) = events[15].body
        else {
            Issue.record("run_finished")
            return
        }
        #expect(
            interrupted.status == .interrupted && interrupted.step == 37
                && interrupted.outputs.keys.sorted() == ["checkpoint"])
        #expect(overfit.summary.overfit?.lossFell == true && overfit.summary.overfit?.evalLossEnd == 1.21)
    }

    /// The sample and evaluate stages' own events decode through the same type, with their values
    /// (the fixtures are lines of real runs).
    @Test func sampleAndEvaluateEventsDecode() throws {
        let fixtures = Self.repoRoot.appendingPathComponent("engine/tests/fixtures")
        let text = try String(contentsOf: fixtures.appendingPathComponent("events.sample.jsonl"), encoding: .utf8)
        let sample = try text.split(separator: "\n").map { try EngineEvent(line: String($0)) }
            .filter { $0.type.hasPrefix("sample_") || $0.type == "progress" || $0.type.hasPrefix("run_") }
        for event in sample { if case .other = event.body { Issue.record("\(event.type) decoded as an unknown type") } }
        let plan = try #require(sample.compactMap { if case .samplePlan(let p) = $0.body { p } else { nil } }.first)
        #expect((plan.videos, plan.steps, plan.stepsHigh, plan.stepsLow) == (1, 4, 3, 1))
        #expect(
            plan.solver == "euler" && plan.scheduleKind == "wan" && plan.deviceTotalBytes == nil
                && plan.plannedPeakBytes == 1000)
        let step = try #require(sample.compactMap { if case .sampleStep(let s) = $0.body { s } else { nil } }.first)
        #expect(
            (step.video, step.step, step.steps, step.expert, step.timestep, step.guidance) == (1, 4, 4, "low", 799, 3))
        let video = try #require(sample.compactMap { if case .sampleVideo(let v) = $0.body { v } else { nil } }.first)
        #expect(video.id == "0001" && video.category == "공간/건축" && video.seed == 42 && !video.existing)
        let started = try #require(
            sample.compactMap { if case .runStarted(let r) = $0.body, r.stage == .sample { r } else { nil } }.first)
        #expect(started.device == "cpu" && started.runName == "samples")
        let finished = try #require(
            sample.compactMap { if case .runFinished(let f) = $0.body, f.stage == .sample { f } else { nil } }.first)
        // The list of videos is not a path: only `dir` stays among the outputs.
        #expect(finished.status == .completed && finished.outputs == ["dir": "/work/demo/samples"])
        #expect(finished.summary.videosNew == 1 && finished.summary.videosExisting == 0)

        let evaluateText = try String(
            contentsOf: fixtures.appendingPathComponent("events.evaluate.sample.jsonl"), encoding: .utf8)
        let evaluate = try evaluateText.split(separator: "\n").map { try EngineEvent(line: String($0)) }
        #expect(evaluate.map(\.type) == ["evaluate_plan", "evaluate_progress", "run_finished"])
        guard case .evaluatePlan(let evaluatePlan) = evaluate[0].body,
            case .evaluateProgress(let progress) = evaluate[1].body,
            case .runFinished(let done) = evaluate[2].body
        else {
            Issue.record("evaluate events")
            return
        }
        #expect(
            evaluatePlan.metrics == ["fvd", "is", "lpips", "clip", "temporal"] && evaluatePlan.generatedVideos == 3)
        #expect(evaluatePlan.referenceVideos == 3 && evaluatePlan.referenceRows == 4)
        #expect(
            evaluatePlan.categories["축제"] == .init(generated: 2, reference: 2) && evaluatePlan.categories.count == 2)
        #expect(
            progress.phase == "generated" && progress.done == 1 && progress.total == 6
                && progress.videosPerSecond == 0.42095625758737426)
        #expect(
            done.stage == .evaluate && done.status == .completed
                && done.outputs == ["metrics_json": "/work/demo/eval/metrics.json"])
    }

    @Test func contractRules() throws {
        // Unknown fields are ignored; an unknown type decodes as .other.
        let extra = try EngineEvent(
            line: #"{"event": "warning", "schema_version": 1, "time": "t", "#
                + #""elapsed_s": 1, "code": "c", "message": "m", "new_field": [1]}"#)
        #expect(extra.body == .warning(.init(code: "c", message: "m")))
        let future = try EngineEvent(
            line: #"{"event": "sample_written", "schema_version": 1, "time": "t", "elapsed_s": 0.5}"#)
        #expect(future.body == .other && future.type == "sample_written")
        // NaN arrives as null: a diverging step still decodes.
        let nan = try EngineEvent(
            line: #"{"event": "step", "schema_version": 1, "time": "t", "elapsed_s": 1, "step": 3, "total_steps": 9, "#
                + #""epoch": 0.5, "loss": null, "loss_high": null, "loss_low": null, "samples_high": 0, "#
                + #""samples_low": 4, "lr": 1e-4, "grad_norm": null, "seconds_per_step": 2.0, "samples_per_second": "#
                + #"2.0, "gpu_memory_allocated_bytes": 1, "gpu_memory_peak_bytes": "#
                + #"2, "host_memory_peak_bytes": 3, "eta_seconds": 12.0}"#)
        guard case .step(let step) = nan.body else {
            Issue.record("step")
            return
        }
        #expect(step.loss == nil && step.gpuMemoryPeakBytes == 2)
        // A missing documented field and a line that is no JSON are errors that say so.
        let missing = try #require(throws: EventDecodingError.self) {
            try EngineEvent(
                line: #"{"event": "checkpoint", "schema_version": 1, "time": "t", "#
                    + #""elapsed_s": 1, "step": 3, "path": "p", "removed": []}"#)
        }
        #expect(missing.reason == "missing field bytes")
        let garbage = try #require(throws: EventDecodingError.self) {
            try EngineEvent(line: "Traceback (most recent call last):")
        }
        #expect(garbage.reason == "not JSON")
    }

    @Test func progressLines() throws {
        let events = try Self.sampleLines().map { try EngineEvent(line: $0) }
        guard case .step(let step) = events[8].body, case .progress(let progress) = events[2].body else { return }
        #expect(
            EventText.progressLine(step)
                == "step 2/2 (100%) · loss 1.5840 · lr 1.00e-3 · 0.033 s/step · ETA 0 s · RAM 0.44 GiB peak")
        // 14.54 items/s, 5 of 6 left: 0.34 s.
        #expect(EventText.progressLine(progress) == "cache latents:train 1/6 items (16%) · 14.5 items/s · ETA 0 s")
        var gpu = step
        gpu.step = 120
        gpu.totalSteps = 3000
        gpu.lr = 0.0001
        gpu.secondsPerStep = 24.3
        gpu.etaSeconds = 24.3 * 2880
        gpu.gpuMemoryPeakBytes = 65_820_000_000
        #expect(
            EventText.progressLine(gpu)
                == "step 120/3,000 (4%) · loss 1.5840 · lr 1.00e-4 · 24.3 s/step · ETA 19 h 26 min · GPU 61.30 GiB peak"
        )
    }

    @Test func everyTypeHasText() throws {
        for line in try Self.sampleLines() {
            let event = try EngineEvent(line: line)
            switch event.body {
            case .step(let s): #expect(!EventText.progressLine(s).isEmpty)
            case .progress(let p): #expect(!EventText.progressLine(p).isEmpty)
            default: #expect(EventText.line(event) != nil, "\(event.type)")
            }
        }
        let events = try Self.sampleLines().map { try EngineEvent(line: $0) }
        #expect(
            EventText.line(events[0])
                == "cache \"demo\" started on the CPU (engine 0.1.0, torch 2.13.0+cpu, diffusers 0.42.1)")
        #expect(
            EventText.line(events[10])
                == "checkpoint at step 2: /work/demo/runs/demo/checkpoints/step-00000002 (117.1 KiB)")
        #expect(EventText.line(events[13]) == "train diverged after 41 s")
        #expect(
            EventText.line(events[15])?.hasSuffix("overfit test on 100 items: eval loss 1.5800 → 1.2100, the loss fell")
                == true)
        #expect(
            EventText.line(events[4]) == "cache completed after 0 s: 5 items cached, 1 skipped (see "
                + "the warnings), 1 caption cut at 32 tokens; cache 20.0 KiB")
    }

    @Test func units() {
        #expect(
            EventText.duration(0.4) == "0 s" && EventText.duration(59.6) == "1 min 0 s"
                && EventText.duration(405) == "6 min 45 s")
        #expect(EventText.duration(69_984) == "19 h 26 min" && EventText.duration(273_600) == "3 d 4 h")
        #expect(
            EventText.bytes(1023) == "1023 B" && EventText.bytes(119_957) == "117.1 KiB"
                && EventText.bytes(1 << 30) == "1.0 GiB")
        #expect(
            EventText.scientific(0.0001) == "1.00e-4" && EventText.scientific(0.00025) == "2.50e-4"
                && EventText.scientific(0) == "0")
        #expect(EventText.seconds(0.0325) == "0.033 s" && EventText.seconds(612) == "10 min 12 s")
    }
}
