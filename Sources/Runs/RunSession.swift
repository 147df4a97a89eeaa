import Config
import Foundation
import Planner
import Support

/// A stage (cache or train) resolved and checked, ready to start: what `--dry-run` shows.
public struct PreparedRun: Sendable {
    public var stage: EngineLaunch.Stage
    /// The engine's configuration with absolute paths, as it will be written into the run folder.
    public var resolved: ResolvedConfig
    public var folder: RunFolder
    public var launch: EngineLaunch
    public var resume: Bool
    /// The planner's plan for a GPU run (nil on the CPU, where its GPU model does not apply).
    public var plan: Plan?
    /// Things the user should know before the run (one sentence each).
    public var notes: [String]
    /// The command that continues this run after an interruption.
    public var resumeCommand: String

    /// The planner's error-level checks: a train run refuses to start with any unless forced.
    public var blockingChecks: [PlanCheck] { plan?.checks.filter { $0.severity == .error } ?? [] }
}

public enum RunPreparation {
    /// Resolves `config` (already loaded from `configFile`, `--set` applied) for `stage`, checks
    /// what can be checked before anything is written (model folder, manifests, the cache of a
    /// train run, the planner's checks of a GPU run) and builds the engine's command line.
    /// `placement` is this node's place in a multi-node launch. `resumeCommand` is the command line
    /// that continues the run (the CLI passes the user's
    /// own, with `--resume`). `hostMemoryAvailable` gives this host's available memory, which the plan of
    /// a train run checks the placement's host RAM against (default: /proc/meminfo's MemAvailable).
    public static func prepare(
        stage: EngineLaunch.Stage, config: WanLoRAConfig, configFile: String?, resume: Bool,
        engine: EngineInstallation, placement: NodePlacement = NodePlacement(),
        resumeCommand: String? = nil,
        hostMemoryAvailable: () -> Int? = { HostMemoryInfo.availableBytes() }
    )
        throws -> PreparedRun
    {
        // A preset (no file): relative paths are relative to the working folder, as `--set` values are.
        let baseDir =
            configFile.map { (PathMath.absolute($0) as NSString).deletingLastPathComponent }
            ?? FileManager.default.currentDirectoryPath
        let name = ResolvedConfig.defaultRunName(config: config, configFile: configFile)
        let source = ConfigSourceText.arguments(configFile: configFile, preset: config.preset.rawValue)
        var resolved = try ResolvedConfig(resolving: config, runName: name).anchored(at: baseDir)
        var notes: [String] = []

        // A repo id (kept as written by `anchored`: the hub cache has it) is the engine's to resolve.
        let checkpoint = resolved.model.checkpoint
        if checkpoint.hasPrefix("/") && !FileManager.default.fileExists(atPath: checkpoint)
            && ModelSource.looksLikeRepoID(config.model.checkpoint)
        {
            let entry = ModelSource.cacheEntry(config.model.checkpoint, hubCache: ModelSource.hubCache())
            throw RunError(
                problem: "The model folder \(checkpoint) (model.checkpoint) does not exist, and as a Hugging Face "
                    + "repo id '\(config.model.checkpoint)' is not in the local hub cache either (\(entry) does not "
                    + "exist; wanlora downloads nothing).",
                remedy: "Set model.checkpoint to the model's folder, or download the repo once "
                    + "(`huggingface-cli download \(config.model.checkpoint)`) into the hub cache that HF_HUB_CACHE "
                    + "or HF_HOME names.")
        }
        if checkpoint.hasPrefix("/") {
            try requireExisting(checkpoint, what: "model folder", key: "model.checkpoint", folder: true)
        }
        let expertFiles = [
            ("model.high_noise_file", resolved.model.highNoiseFile),
            ("model.low_noise_file", resolved.model.lowNoiseFile),
        ]
        for (key, path) in expertFiles where !path.isEmpty {
            try requireExisting(path, what: "single-file expert checkpoint", key: key, folder: false)
        }

        var plan: Plan?
        switch stage {
        case .cache:
            try requireExisting(
                resolved.data.trainManifest, what: "training manifest", key: "data.train_manifest", folder: false)
            let val = resolved.data.valManifest
            if !val.isEmpty {
                try requireExisting(val, what: "validation manifest", key: "data.val_manifest", folder: false)
            }
        case .train:
            let inventory = try CacheInventory.read(
                cacheDir: resolved.data.cacheDir, expecting: resolved, source: source)
            var dataset = inventory.train
            if resolved.training.overfitSamples > 0 {
                dataset = inventory.firstTrainItems(resolved.training.overfitSamples)
            }
            if config.hardware.t5 != .cached || config.hardware.vae != .cached {
                notes.append(
                    "hardware.t5 = \"\(config.hardware.t5.rawValue)\", hardware.vae = "
                        + "\"\(config.hardware.vae.rawValue)\": this engine trains from the cache only (the UMT5 "
                        + "and VAE are not loaded), so the run is faster than the plan's encode-on-the-fly estimate.")
            }
            if config.training.device == .cpu {
                notes.append(
                    "training.device = \"cpu\": the planner's GPU memory and time model does not apply; no plan checks."
                )
            } else {
                let chosen = try Planner.plan(
                    config,
                    dataset: DatasetSize(videos: dataset.videos, images: dataset.images),
                    hostMemoryAvailableBytes: hostMemoryAvailable())
                // The planner placed the kept activations on the GPU because only that fits the host:
                // tell the engine.
                if config.training.activationOffload == .auto && chosen.setup.activationOffload == "gpu"
                    && config.training.blocks == .fast
                {
                    resolved.training.activationOffload = .none
                    notes.append(
                        "training.activation_offload = \"auto\": the kept activations stay on the GPU "
                            + "(the planner found too little host memory to pin them).")
                }
                plan = chosen
            }
        }
        let launch = try EngineLaunch.make(
            stage: stage, configPath: RunFolder(path: resolved.derived.runDir).configPath, resume: resume,
            hardware: config.hardware, attentionHeads: Architecture.named(config.model.architecture).heads,
            placement: placement, stopGraceSeconds: config.training.stopGraceSeconds,
            engine: engine)
        return PreparedRun(
            stage: stage, resolved: resolved, folder: RunFolder(path: resolved.derived.runDir), launch: launch,
            resume: resume, plan: plan, notes: notes,
            resumeCommand: resumeCommand ?? "wanlora train \(source) --resume")
    }

    static func requireExisting(_ path: String, what: String, key: String, folder: Bool) throws {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists && isDirectory.boolValue == folder { return }
        throw RunError(
            problem: exists
                ? "The \(what) \(path) (\(key)) is a \(folder ? "file" : "folder"), "
                    + "not a \(folder ? "folder" : "file")."
                : "The \(what) \(path) (\(key)) does not exist.",
            remedy: "Set \(key) to the right path; relative paths are relative to the configuration file's folder."
        )
    }
}

/// What `wanlora cache` wrote (cache.json and the train split's index), as far as `train` needs it.
public struct CacheInventory: Sendable, Equatable {
    public var videos: Int
    public var images: Int
    /// media_type of each train item in index order.
    public var mediaTypes: [String]

    public var train: (videos: Int, images: Int) { (videos, images) }

    /// The first `n` items, as the overfit test trains them.
    public func firstTrainItems(_ n: Int) -> (videos: Int, images: Int) {
        let first = mediaTypes.prefix(n)
        let videos = first.filter { $0 == "video" }.count
        return (videos, first.count - videos)
    }

    /// The cache formats training reads (cache.json's schema_version; engine/wanlora_engine/encoding.py has the
    /// same list, READABLE_CACHE_FORMATS): 1, one process; 2, shards by manifest position on any number of GPUs.
    public static let readableFormats = [1, 2]

    private struct CacheFile: Decodable {
        struct Settings: Decodable {
            var width: Int, height: Int, frames: Int, fps: Int, textLength: Int
        }
        var schemaVersion: Int?
        var settings: Settings
    }

    private struct IndexLine: Decodable {
        var mediaType: String
    }

    /// Reads the cache at `cacheDir`; refuses one made with other settings (the engine would).
    /// `source`: how the user named the configuration (`--config FILE` or `--preset NAME`), for the remedies.
    public static func read(cacheDir: String, expecting resolved: ResolvedConfig, source: String) throws
        -> CacheInventory
    {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let cacheFile = (cacheDir as NSString).appendingPathComponent("cache.json")
        guard let data = FileManager.default.contents(atPath: cacheFile) else {
            throw RunError(
                problem: "There is no cache at \(cacheDir) (no cache.json): "
                    + "training reads the VAE latents and UMT5 embeddings from it.",
                remedy: "Build it first: wanlora cache \(source)"
            )
        }
        let description: CacheFile
        do {
            description = try decoder.decode(CacheFile.self, from: data)
        } catch {
            throw RunError(
                problem: "\(cacheFile) is not a wanlora cache description.",
                remedy: "Point data.cache_dir at a folder written by `wanlora cache`, or build the cache again there.")
        }
        guard let format = description.schemaVersion, readableFormats.contains(format) else {
            throw RunError(
                problem: "The cache at \(cacheDir) has cache format "
                    + "\(description.schemaVersion.map(String.init) ?? "none"); this wanlora reads formats "
                    + readableFormats.map(String.init).joined(separator: ", ") + ".",
                remedy: "Use the wanlora version that wrote it, or point data.cache_dir at a new folder and run "
                    + "`wanlora cache \(source)`.")
        }
        let settings = description.settings
        let d = resolved.training
        let differences = [
            ("width", settings.width, d.width), ("height", settings.height, d.height),
            ("frames", settings.frames, d.frames), ("fps", settings.fps, d.fps),
            ("text_length", settings.textLength, d.textLength),
        ].filter { $0.1 != $0.2 }
        if !differences.isEmpty {
            throw RunError(
                problem: "The cache at \(cacheDir) was made with other settings: "
                    + differences.map { "\($0.0) \($0.1) there, \($0.2) now" }.joined(separator: ", ") + ".",
                remedy: "Leave data.cache_dir empty (each clip shape gets its own folder) or point it elsewhere, "
                    + "then run `wanlora cache \(source)`."
            )
        }
        let index = ((cacheDir as NSString).appendingPathComponent("train") as NSString).appendingPathComponent(
            "index.jsonl")
        guard let lines = FileManager.default.contents(atPath: index) else {
            throw RunError(
                problem: "The cache at \(cacheDir) has no train/index.jsonl: it was not finished.",
                remedy: "Run `wanlora cache \(source)` again; "
                    + "it continues where it stopped.")
        }
        var types: [String] = []
        for line in String(decoding: lines, as: UTF8.self).split(separator: "\n") where !line.isEmpty {
            guard let item = try? decoder.decode(IndexLine.self, from: Data(line.utf8)) else { continue }
            types.append(item.mediaType)
        }
        let videos = types.filter { $0 == "video" }.count
        return CacheInventory(videos: videos, images: types.count - videos, mediaTypes: types)
    }
}

/// One start of a prepared stage: prepares the run folder, starts the engine, streams its
/// events, and maps its end onto a result or a clear error.
public final class RunSession: @unchecked Sendable {
    public let prepared: PreparedRun
    /// The engine stage this session starts (its teardown: `StageGrace.training`).
    public let stage: EngineStage

    public init(prepared: PreparedRun, grace: StageGrace = .training) {
        self.prepared = prepared
        // After SIGTERM, torchrun waits its shutdown timeout for the ranks' checkpoint: so does wanlora, and 10 s more.
        var grace = grace
        grace.terminate = max(grace.terminate, Double(prepared.launch.request?.shutdownTimeoutSeconds ?? 0) + 10)
        stage = EngineStage(launch: prepared.launch, logPath: prepared.folder.logPath(prepared.stage), grace: grace)
    }

    /// Forwards a Ctrl-C (or SIGTERM) to the engine, one teardown step per call.
    @discardableResult
    public func requestStop() -> EngineProcess.StopAction { stage.requestStop() }

    /// Runs the stage to its end. Throws `RunRefused`/`RunError` before anything starts when the
    /// plan does not fit (unless `force`) or the run folder is not in a state to start; returns
    /// the outcome otherwise (`outcome.failure` says what went wrong, if anything did).
    public func run(force: Bool, observer: StageObserver) throws -> RunOutcome {
        let blocking = prepared.blockingChecks
        if !blocking.isEmpty && !force { throw RunRefused(checks: blocking) }
        let folder = prepared.folder
        do {
            try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
        } catch {
            throw RunError(
                problem: "Cannot create the run folder \(folder.path): \(error.localizedDescription).",
                remedy: "Check run.runs_dir and that its disk is writable.")
        }
        let runLock = try RunLock.acquire(folder, stage: prepared.stage)
        defer { runLock.release() }
        if let takenOver = runLock.takenOver { observer.warning(takenOver) }
        try checkFolder(force: force)
        try folder.writeConfig(prepared.resolved)
        try appendLogHeader()
        if stage.stopRequested {
            throw RunError(
                problem: "Interrupted before the engine started: nothing ran.",
                remedy: "Start the command again.")
        }
        let outcome = try stage.run(observer: observer)
        return RunOutcome(
            stage: outcome,
            failure: EngineFailure(outcome, stage: prepared.stage, resumeCommand: prepared.resumeCommand))
    }

    /// The contract's wait after SIGINT: 2 × the last seconds per step + 60 s.
    func interruptGrace() -> Double { stage.interruptGrace() }

    /// A train run refuses to overwrite checkpoints without --resume, to resume without
    /// checkpoints, and to resume with a changed configuration unless forced.
    private func checkFolder(force: Bool) throws {
        let folder = prepared.folder
        let checkpoints = folder.checkpoints()
        guard prepared.stage == .train else {
            // The cache stage writes config.resolved.json too: it must not swap the settings of a
            // run that has checkpoints under another set (a later --resume compares against it).
            if !checkpoints.isEmpty, let old = try? ResolvedConfig.read(file: folder.configPath) {
                let changes = ConfigDifference.between(old.json(), prepared.resolved.json())
                if !changes.isEmpty {
                    throw RunError(
                        problem: "The run \(folder.path) has checkpoints trained with other settings: "
                            + changes.prefix(8).joined(separator: "; ") + ".",
                        remedy: "Cache under another run name (--set run.name=NEW), or with the run's settings."
                    )
                }
            }
            return
        }
        if !prepared.resume, let newest = checkpoints.last {
            throw RunError(
                problem: "The run \(folder.path) already has checkpoints (newest: step \(newest.step)).",
                remedy: "Continue it with `\(prepared.resumeCommand)`, "
                    + "or start a new run with another run.name (or --set run.name=NEW)."
            )
        }
        if prepared.resume && checkpoints.isEmpty {
            throw RunError(
                problem: "--resume: the run \(folder.path) has no complete checkpoint to continue from.",
                remedy: "Start it without --resume (training.save_steps sets how often checkpoints are written)."
            )
        }
        guard prepared.resume, !force, let old = try? ResolvedConfig.read(file: folder.configPath) else { return }
        let changes = ConfigDifference.between(old.json(), prepared.resolved.json())
        if !changes.isEmpty {
            throw RunError(
                problem: "The configuration changed since the run started: " + changes.prefix(8).joined(separator: "; ")
                    + (changes.count > 8 ? "; and \(changes.count - 8) more" : "") + ".",
                remedy: "Resume with the settings the run started with (undo the change), or add --force to "
                    + "continue with the new ones (the result is then not that of an uninterrupted run)."
            )
        }
    }

    private func appendLogHeader() throws {
        let path = prepared.folder.logPath(prepared.stage)
        let header =
            "\n=== wanlora \(prepared.stage.rawValue)\(prepared.resume ? " --resume" : "") at "
            + ISO8601DateFormatter().string(from: Date()) + "\n=== " + prepared.launch.commandLine + "\n"
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw RunError(
                problem: "Cannot write the engine log \(path).", remedy: "Check that the run folder is writable.")
        }
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(header.utf8))
    }
}

/// Keys whose values differ between two resolved configurations: "training.learning_rate 0.0001 → 0.0002".
enum ConfigDifference {
    static func between(_ a: JSONValue, _ b: JSONValue, path: String = "") -> [String] {
        if case .object(let x) = a, case .object(let y) = b {
            let keys = x.map(\.key) + y.map(\.key).filter { key in !x.contains { $0.key == key } }
            return keys.flatMap { key in
                between(a[key] ?? .null, b[key] ?? .null, path: path.isEmpty ? key : "\(path).\(key)")
            }
        }
        return a == b ? [] : ["\(path) \(a.compact()) → \(b.compact())"]
    }
}

/// The plan does not fit: the planner's error-level checks, and how to go on anyway.
public struct RunRefused: ActionableError {
    public let checks: [PlanCheck]
    public var problem: String {
        "The plan does not fit (`wanlora plan --config FILE` shows it in full):\n"
            + checks.map { "  - \($0.message)" }.joined(separator: "\n")
    }
    public var remedy: String {
        checks.map(\.remedy).joined(separator: " ") + " Or add --force to start anyway."
    }
}

/// The end of one cache or train start: the stage's outcome and, when it did not complete, why.
public struct RunOutcome: Sendable {
    public var stage: StageOutcome
    /// Set when the run did not complete.
    public var failure: EngineFailure?

    /// The last `run_finished` event, when the engine wrote one.
    public var finished: EngineEvent.RunFinished? { stage.finished }

    /// wanlora's exit status: the engine's (0, 1, 2, 3, 130), or 128 + the signal that ended it.
    public var exitCode: Int32 {
        switch stage.termination {
        case .exited(let code): code == 0 && failure != nil ? 1 : code
        case .signaled(let signal): 128 + signal
        }
    }
}

/// Why an engine stage did not complete, what to do, and the end of its log.
public struct EngineFailure: ActionableError, Equatable {
    public let problem: String
    public let remedy: String
    /// Stopped on request after a checkpoint (exit 130): an expected end, not an error.
    public var interrupted = false
}

extension EngineFailure {
    /// Why a cache or train stage did not complete (nil when it did), in the terms of its exit
    /// status (docs/engine-contract.md §1) and its error event.
    init?(_ outcome: StageOutcome, stage: EngineLaunch.Stage, resumeCommand: String) {
        let finished = outcome.finished
        let error = outcome.error
        let tail = LogExcerpt.withoutTracebacks(Array(outcome.logTail.suffix(12)))
        let tailText =
            tail.isEmpty
            ? "" : "\nLast lines of \(outcome.logPath):\n" + tail.map { "  | " + $0 }.joined(separator: "\n")
        let checkpoint = finished?.outputs["checkpoint"] ?? error?.lastCheckpoint
        let resume =
            stage == .train
            ? " Continue with `\(resumeCommand)`."
            : " Run the same command again: the cache continues where it stopped."
        func fail(_ problem: String, _ remedy: String, tail withTail: Bool = true) -> EngineFailure {
            EngineFailure(problem: problem + (withTail ? tailText : ""), remedy: remedy)
        }
        switch outcome.termination {
        case .exited(0) where finished?.status == .completed:
            return nil
        case .exited(0):
            self = fail(
                "The engine exited with status 0 but without reporting that the \(stage.rawValue) completed.",
                "See the log; this is an engine bug if the log shows no error.")
        case .exited(2):
            self = fail(
                "The engine refused the configuration or the run folder: \(error?.problem ?? "see the log").",
                error?.remedy ?? "Check the configuration (`wanlora config check FILE`).")
        case .exited(3):
            let step = error?.step.map { " at step \($0)" } ?? ""
            self = fail(
                "The loss became NaN or infinite\(step): the run diverged. \(error?.problem ?? "")",
                (error?.remedy ?? "Lower training.learning_rate or raise training.warmup_steps.")
                    + (checkpoint.map { " The last good checkpoint is \($0)." } ?? "")
                    + " Then resume with `\(resumeCommand) --force`.", tail: false)
        case .exited(130):
            let at = finished?.step.map { " at step \($0)" } ?? outcome.lastStep.map { " after step \($0)" } ?? ""
            self = fail(
                "Interrupted\(at)" + (checkpoint.map { "; checkpoint \($0) written" } ?? "") + ".",
                resume.trimmingCharacters(in: .whitespaces), tail: false)
            interrupted = true
        case .exited(let code):
            let what = error.map { "\($0.problem)" } ?? "exit status \(code)"
            self = fail(
                "The engine's \(stage.rawValue) failed: \(what).",
                (error?.remedy ?? "See the log for the cause.") + (stage == .train && checkpoint != nil ? resume : ""))
        case .signaled(let signal):
            let name =
                [SIGINT: "SIGINT", SIGTERM: "SIGTERM", SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT"][
                    signal] ?? "signal \(signal)"
            let cause =
                outcome.stopRequested
                ? "stopped at once on request (\(name))"
                : "killed by \(name)"
                    + (signal == SIGKILL ? " (by the kernel's out-of-memory killer? `dmesg` tells)" : "")
            self = fail(
                "The engine was \(cause); its last checkpoint stays valid.", resume.trimmingCharacters(in: .whitespaces)
            )
        }
    }
}

/// The command-line words that name a configuration, for commands printed in messages.
public enum ConfigSourceText {
    public static func arguments(configFile: String?, preset: String) -> String {
        configFile.map { "--config \(EngineLaunch.shellQuoted($0))" } ?? "--preset \(preset)"
    }
}

/// What of an engine log's last lines a user is shown: a Python traceback is for the log, not the
/// terminal, so its frames go and its last line (the exception and its message) stays.
public enum LogExcerpt {
    public static func withoutTracebacks(_ lines: [String]) -> [String] {
        let framing = [
            "Traceback (most recent call last):",
            "During handling of the above exception, another exception occurred:",
            "The above exception was the direct cause of the following exception:",
        ]
        var kept: [String] = []
        var dropped = false
        for line in lines {
            let isFrame =
                framing.contains(line.trimmingCharacters(in: .whitespaces))
                || line.first == " " || line.first == "\t"
            if isFrame {
                dropped = true
            } else if !(dropped && line.isEmpty) {
                kept.append(line)
            }
        }
        if dropped { kept.append("(a Python traceback was left out here; the log has it whole)") }
        return kept
    }
}
