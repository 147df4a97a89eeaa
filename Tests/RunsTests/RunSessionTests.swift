import Config
import Foundation
import Planner
import Support
import Testing

@testable import Runs

/// RunSession with a stand-in engine (a shell script that prints chosen events and exits with a
/// chosen status): folder rules, the config it writes, and how each ending is reported.
@Suite(.serialized) struct RunSessionTests {
    struct Workspace {
        let root: String
        let prepared: PreparedRun
    }

    /// A workspace whose "engine" runs `script` (it receives `-m wanlora_engine STAGE --config FILE [--resume]`).
    func workspace(
        _ script: String, stage: EngineLaunch.Stage = .train, resume: Bool = false,
        edit: (inout ResolvedConfig) -> Void = { _ in }
    ) throws -> Workspace {
        let root = try scratchFolder("session")
        try writeScript(root + "/python", script)
        let demo = try ConfigLoader.load(file: EventTests.repoRoot.appendingPathComponent("configs/demo.toml").path)
        var resolved = try ResolvedConfig(resolving: demo, runName: "demo").anchored(at: root)
        edit(&resolved)
        let folder = RunFolder(path: resolved.derived.runDir)
        var hardware = demo.hardware
        hardware.gpusPerNode = 1
        hardware.nodes = 1
        hardware.ulyssesDegree = 1
        let launch = try EngineLaunch.make(
            stage: stage, configPath: folder.configPath, resume: resume, hardware: hardware,
            attentionHeads: 40, engine: EngineInstallation(python: root + "/python"))
        let prepared = PreparedRun(
            stage: stage, resolved: resolved, folder: folder, launch: launch, resume: resume, plan: nil,
            notes: [], resumeCommand: "wanlora train --config demo.toml --resume")
        return Workspace(root: root, prepared: prepared)
    }

    func echo(_ lines: [String]) -> String {
        lines.map { "echo '\($0)'" }.joined(separator: "\n") + "\n"
    }

    func run(_ w: Workspace, force: Bool = false) throws -> (RunOutcome, [String]) {
        let seen = LineBox()
        let observer = StageObserver(
            event: { event, _ in seen.append(event.type) }, strayLine: { seen.append("stray: " + $0) },
            escalation: { _ in })
        let outcome = try RunSession(prepared: w.prepared).run(force: force, observer: observer)
        return (outcome, seen.lines)
    }

    @Test func completedRunWritesTheConfigAndReportsOutputs() throws {
        let s = try EventTests.sampleLines()
        let w = try workspace(
            echo(Array(s[5...11])) + "echo 'a log line' >&2\necho \"$*\" > \"$(dirname \"$0\")/args\"\n")
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        let (outcome, events) = try run(w)
        #expect(outcome.failure == nil && outcome.exitCode == 0)
        #expect(events == ["run_started", "warning", "train_plan", "step", "eval", "checkpoint", "run_finished"])
        #expect(
            outcome.finished?.outputs["high_noise_diffusers"]
                == "/work/demo/runs/demo/lora/high_noise.diffusers.safetensors")
        // The run folder holds the resolved config, absolute, exactly as resolved; the engine got its path.
        let written = try ResolvedConfig.read(file: w.prepared.folder.configPath)
        #expect(written == w.prepared.resolved && written.model.checkpoint == w.root + "/model")
        let args = try String(contentsOfFile: w.root + "/args", encoding: .utf8)
        #expect(args == "-m wanlora_engine train --config \(w.root)/runs/demo/config.resolved.json\n")
        // The log starts with a header naming the command, then the engine's stderr.
        let log = try String(contentsOfFile: w.prepared.folder.logPath(.train), encoding: .utf8)
        #expect(
            log.contains("=== wanlora train at ") && log.contains("=== \(w.root)/python -m wanlora_engine train")
                && log.hasSuffix("a log line\n"))
        #expect(!RunLock.isHeld(w.prepared.folder))
    }

    @Test func endingsMapToClearErrors() throws {
        let s = try EventTests.sampleLines()
        let cases: [(script: String, code: Int32, problem: String, remedy: String)] = [
            (
                echo([s[5], s[12], s[13]]) + "echo 'Traceback: nan' >&2\nexit 3\n", 3,
                "The loss became NaN or infinite at step 5", "step-00000004"
            ),
            (
                echo([s[5], s[8], s[14]]) + "exit 130\n", 130,
                "Interrupted at step 37; checkpoint /work/demo/runs/demo/checkpoints/step-00000037 written.",
                "wanlora train --config demo.toml --resume"
            ),
            (
                echo([
                    s[5],
                    #"{"event": "error", "schema_version": 1, "time": "t", "elapsed_s": 1, "code": "#
                        + #""model_load_failed", "problem": "high_noise_model/config.json is missing", "#
                        + #""remedy": "download the model again", "step": null, "last_checkpoint": null}"#,
                ])
                    + "echo 'loading…' >&2\necho 'OSError: no such file' >&2\nexit 1\n", 1,
                "The engine's train failed: high_noise_model/config.json is missing.", "download the model again"
            ),
            (
                echo([
                    #"{"event": "error", "schema_version": 1, "time": "t", "elapsed_s": 0, "code": "config_invalid", "#
                        + #""problem": "checkpoints exist", "remedy": "#
                        + #""pass --resume", "step": null, "last_checkpoint": null}"#
                ]) + "exit 2\n", 2,
                "refused the configuration or the run folder: checkpoints exist", "pass --resume"
            ),
            (echo([s[5]]) + "exit 0\n", 1, "without reporting that the train completed", "engine bug"),
            ("echo 'Segmentation fault' >&2\nkill -SEGV $$\n", 128 + SIGSEGV, "killed by SIGSEGV", "--resume"),
            ("echo 'not json'\nexit 0\n", 1, "without reporting", "engine bug"),
        ]
        for c in cases {
            let w = try workspace(c.script)
            defer { try? FileManager.default.removeItem(atPath: w.root) }
            let (outcome, events) = try run(w)
            let failure = try #require(outcome.failure, "\(c.problem)")
            #expect(outcome.exitCode == c.code, "\(c.problem)")
            #expect(failure.problem.contains(c.problem), "\(failure.problem)")
            #expect(failure.remedy.contains(c.remedy), "\(failure.remedy)")
            #expect(failure.interrupted == (c.code == 130))
            if c.code == 1 && c.problem.contains("high_noise") {
                // The end of the log comes with the error.
                #expect(
                    failure.problem.contains(
                        "Last lines of \(w.prepared.folder.logPath(.train)):\n  | loading…\n  | OSError: no such file"))
            }
            if c.script.hasPrefix("echo 'not json'") { #expect(events == ["stray: not json"]) }
        }
    }

    @Test func folderRules() throws {
        let s = try EventTests.sampleLines()
        let finish = echo([s[5], s[11]])
        // Checkpoints exist: a new start is refused, --resume continues.
        let w = try workspace(finish)
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        #expect(try run(w).0.failure == nil)
        try FileManager.default.createDirectory(
            atPath: w.prepared.folder.checkpointsPath + "/step-00000004", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            atPath: w.prepared.folder.checkpointsPath + "/.step-00000008.tmp", withIntermediateDirectories: true)
        let again = try #require(throws: RunError.self) { try run(w) }
        #expect(again.problem.contains("newest: step 4") && again.remedy.contains("--resume"))
        var resumed = w.prepared
        resumed.resume = true
        #expect(try run(Workspace(root: w.root, prepared: resumed)).0.failure == nil)
        // A changed configuration is refused on resume unless forced, naming what changed.
        var changed = resumed
        changed.resolved.training.learningRate = 0.002
        changed.resolved.training.maxSteps = 20
        let refused = try #require(throws: RunError.self) { try run(Workspace(root: w.root, prepared: changed)) }
        #expect(
            refused.problem.contains("training.max_steps 8 → 20")
                && refused.problem.contains("training.learning_rate 0.001 → 0.002"))
        #expect(refused.remedy.contains("--force"))
        #expect(try run(Workspace(root: w.root, prepared: changed), force: true).0.failure == nil)
        #expect(try ResolvedConfig.read(file: w.prepared.folder.configPath).training.maxSteps == 20)
        // The cache stage may not swap the settings of a run with checkpoints either.
        var cache = changed
        cache.stage = .cache
        cache.resolved.training.learningRate = 0.003
        let cacheRefused = try #require(throws: RunError.self) { try run(Workspace(root: w.root, prepared: cache)) }
        #expect(cacheRefused.problem.contains("training.learning_rate 0.002 → 0.003"))
        cache.resolved.training.learningRate = 0.002
        #expect(try run(Workspace(root: w.root, prepared: cache)).0.failure == nil)
        // --resume with nothing to resume from.
        let fresh = try workspace(finish, resume: true)
        defer { try? FileManager.default.removeItem(atPath: fresh.root) }
        let nothing = try #require(throws: RunError.self) { try run(fresh) }
        #expect(nothing.problem.contains("no complete checkpoint"))
        // A second wanlora on the same run is refused while the first holds the lock.
        let lock = try RunLock.acquire(w.prepared.folder, stage: .train)
        defer { lock.release() }
        let busy = try #require(throws: RunError.self) { try run(Workspace(root: w.root, prepared: resumed)) }
        #expect(busy.problem.contains("in use by another wanlora process"))
    }

    @Test func planThatDoesNotFitIsRefusedUnlessForced() throws {
        let s = try EventTests.sampleLines()
        var w = try workspace(echo([s[5], s[11]]))
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        var config = WanLoRAConfig.preset(.h100)
        config.hardware.gpu = "V100-32GB"
        config.hardware.gpusPerNode = 1
        config.hardware.ulyssesDegree = 1
        var prepared = w.prepared
        prepared.plan = try Planner.plan(config)
        w = Workspace(root: w.root, prepared: prepared)
        let codes = Set(prepared.blockingChecks.map(\.code))
        #expect(codes.contains("memory") && codes.contains("bf16"))
        let refused = try #require(throws: RunRefused.self) { try run(w) }
        #expect(refused.problem.contains("does not fit") && refused.remedy.hasSuffix("Or add --force to start anyway."))
        #expect(!FileManager.default.fileExists(atPath: w.prepared.folder.path))  // nothing written
        #expect(try run(w, force: true).0.failure == nil)
    }

    @Test func stopBeforeTheEngineStarts() throws {
        let w = try workspace("echo should not run > \"$(dirname \"$0\")/ran\"\n")
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        let session = RunSession(prepared: w.prepared)
        #expect(session.requestStop() == .interrupt)
        let error = try #require(throws: RunError.self) {
            try session.run(
                force: false, observer: StageObserver(event: { _, _ in }, strayLine: { _ in }, escalation: { _ in }))
        }
        #expect(error.problem.contains("nothing ran"))
        #expect(!FileManager.default.fileExists(atPath: w.root + "/ran"))
    }

    /// The grace after SIGINT follows the contract: 2 × the last seconds per step + 60 s.
    @Test func interruptGraceFollowsTheSteps() throws {
        let s = try EventTests.sampleLines()
        let w = try workspace(echo([s[5], s[8], s[11]]))
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        let session = RunSession(prepared: w.prepared)
        #expect(session.interruptGrace() == 60)
        _ = try session.run(
            force: false, observer: StageObserver(event: { _, _ in }, strayLine: { _ in }, escalation: { _ in }))
        #expect(abs(session.interruptGrace() - (2 * 0.03253632949997609 + 60)) < 1e-12)
    }
}

/// An engine that crashes with a Python traceback: the user sees the exception line and where the log
/// is, not the frames (#22.7: `wanlora cache` printed the whole traceback).
@Test func tracebacksStayInTheLog() {
    let log = [
        "12:00:01 encoding 3 clips",
        "Traceback (most recent call last):",
        "  File \"/engine/wanlora_engine/cache.py\", line 80, in run",
        "    latents = vae.encode(clip)",
        "              ^^^^^^^^^^^^^^^^",
        "RuntimeError: Input type (float) and bias type (c10::BFloat16) should be the same",
    ]
    #expect(
        LogExcerpt.withoutTracebacks(log) == [
            "12:00:01 encoding 3 clips",
            "RuntimeError: Input type (float) and bias type (c10::BFloat16) should be the same",
            "(a Python traceback was left out here; the log has it whole)",
        ])
    let plain = ["loading…", "OSError: no such file"]
    #expect(LogExcerpt.withoutTracebacks(plain) == plain)
}

extension RunSessionTests {
    @Test func aCrashedCacheStageReportsTheExceptionWithoutItsTraceback() throws {
        let w = try workspace(
            "echo 'Traceback (most recent call last):' >&2\n"
                + "echo '  File \"cache.py\", line 80, in run' >&2\necho '    vae.encode(clip)' >&2\n"
                + "echo 'RuntimeError: boom' >&2\nexit 1\n",
            stage: .cache)
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        let (outcome, _) = try run(w)
        let failure = try #require(outcome.failure)
        #expect(failure.problem.contains("  | RuntimeError: boom"))
        #expect(!failure.problem.contains("Traceback (most recent call last)") && !failure.problem.contains("File \""))
    }
}
