import ArgumentParser
import Config
import Foundation
import Launch
import Planner
import Runs
import Support

/// Options shared by `wanlora cache` and `wanlora train`.
struct EngineRunOptions: ParsableArguments {
    /// `--config FILE` or `--preset NAME` (with `--set` for the paths), as plan, sample and evaluate take them.
    @OptionGroup var source: ConfigSourceOptions

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Set any key: section.key=value (TOML value). Repeatable.", valueName: "key=value"))
    var assignments: [String] = []

    @Option(
        name: .customLong("engine-python"),
        help: ArgumentHelp(
            "Python interpreter with wanlora_engine installed (default: $WANLORA_ENGINE_PYTHON, "
                + "else engine/.venv/bin/python above the wanlora binary or the working folder).",
            valueName: "path"))
    var enginePython: String?

    @OptionGroup var progress: ProgressOptions

    @Flag(help: "Also show the engine's log lines (they always go to the run folder's log).")
    var verbose = false

    /// The configuration file, or nil for a preset.
    var configFile: String? { source.configFile }

    /// The configuration (file or preset) with `--set` (and the command's own overrides) applied, validated once.
    /// `gpuCountGiven`/`ulyssesGiven`: train's --gpus/--nodes and --ulysses, for `UlyssesAdaptation`.
    func loadConfig(
        overrides: [(String, ConfigValue)] = [], gpuCountGiven: Bool = false, ulyssesGiven: Bool = false
    ) throws -> WanLoRAConfig {
        var (config, _) = try source.load()
        for (key, value) in overrides { try ConfigLoader.set(key, value, in: &config, validate: false) }
        for assignment in assignments { try ConfigLoader.set(assignment, in: &config, validate: false) }
        if let note = try UlyssesAdaptation.adapt(
            &config, gpuCountGiven: gpuCountGiven, ulyssesGiven: ulyssesGiven || UlyssesAdaptation.sets(assignments))
        {
            Console.err("note: " + note)
        }
        try config.validate()
        return config
    }

    func engine() throws -> EngineInstallation {
        try EngineLocator.installation(explicit: enginePython)
    }
}

/// Where the engine's processes run, shared by `wanlora cache` and `wanlora train`: GPUs on this node,
/// nodes, this node's rank and node 0's address (torchrun's launch, one builder for both).
struct NodeLayoutOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "GPUs (engine processes) on this node (cache, train: sets hardware.gpus_per_node); more than one launches"
                + " torchrun.",
            valueName: "n"))
    var gpus: Int?

    @Option(
        help: ArgumentHelp(
            "Nodes of the run (cache, train: sets hardware.nodes); more than one needs --master and --node-rank.",
            valueName: "n"))
    var nodes: Int?

    @Option(name: .customLong("node-rank"), help: ArgumentHelp("This node's number, 0 to nodes − 1.", valueName: "k"))
    var nodeRank: Int = 0

    @Option(
        help: ArgumentHelp(
            "Node 0's address and a free port, the same on every node (several nodes).", valueName: "ADDR:PORT"))
    var master: String?

    func validate() throws {
        if let gpus, gpus < 1 { throw ValidationError("--gpus must be 1 or more, not \(gpus).") }
        if let nodes, nodes < 1 { throw ValidationError("--nodes must be 1 or more, not \(nodes).") }
    }

    /// --gpus and --nodes as configuration overrides, applied before --set.
    var overrides: [(String, ConfigValue)] {
        var list: [(String, ConfigValue)] = []
        if let gpus { list.append(("hardware.gpus_per_node", .integer(gpus))) }
        if let nodes { list.append(("hardware.nodes", .integer(nodes))) }
        return list
    }
}

/// Runs a prepared stage on the console; returns the exit status.
private func execute(_ prepared: PreparedRun, options: EngineRunOptions, force: Bool) throws -> Int32 {
    let console = RunConsole(mode: options.progress.style, verbose: options.verbose)
    for note in prepared.notes { console.message("note: \(note)") }
    for check in prepared.plan?.checks ?? [] where check.severity != .note {
        console.message("\(check.severity.rawValue): \(check.message)")
    }
    if !prepared.blockingChecks.isEmpty && force {
        console.message("--force: starting although the plan does not fit")
    }
    let session = RunSession(prepared: prepared)
    let forwarding = StopForwarding(
        requestStop: { session.requestStop() },
        announce: { action in
            switch action {
            case .interrupt:
                console.message(
                    "stopping: the engine finishes this step and writes a checkpoint (Ctrl-C again stops it at once)")
            case .terminate:
                console.message(
                    "stopping at once: SIGTERM sent (the previous checkpoint stays valid; Ctrl-C again kills it)")
            case .kill:
                console.message("SIGKILL sent to the engine and its workers")
            case .none:
                break
            }
        })
    let outcome: RunOutcome
    do {
        outcome = try session.run(force: force, observer: console.observer)
    } catch {
        forwarding.end()
        console.finish()
        throw error
    }
    forwarding.end()
    console.finish()
    if let failure = outcome.failure {
        if failure.interrupted {
            Console.err("stopped: \(failure.problem)\nto continue: \(failure.remedy)")
        } else {
            Console.err("error: \(failure.problem)\nhow to fix: \(failure.remedy)")
        }
        return outcome.exitCode
    }
    let folder = prepared.folder.path
    switch prepared.stage {
    case .cache:
        Console.out(
            "cache complete: \(prepared.resolved.data.cacheDir) (events: \(prepared.folder.eventsPath(.cache)))")
    case .train:
        let steps = outcome.finished?.step.map { " after \(NumberFormat.grouped($0)) steps" } ?? ""
        Console.out("training complete\(steps): \(folder)")
        let outputs = outcome.finished?.outputs ?? [:]
        for key in outputs.keys.sorted() { Console.out("  \(key): \(outputs[key]!)") }
    }
    return 0
}

/// `wanlora cache`: VAE latents and UMT5 embeddings of the prepared manifests.
struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Encode the prepared clips (VAE latents) and captions (UMT5) once, for training.",
        discussion: """
            Resolves the configuration, writes it into the run folder (run.runs_dir/run.name) as config.resolved.json \
            and starts the engine's cache stage: every clip of data.train_manifest and data.val_manifest through the \
            Wan VAE, every caption through UMT5 at training.text_length tokens, into data.cache_dir (empty: \
            cache/WIDTHxHEIGHT-FRAMESf-TOKENSt). The engine checks the disk first, writes shards atomically and \
            continues where a stopped run ended: run the same command again. Items it cannot \
            decode are listed as warnings and in <split>/skipped.jsonl, never dropped silently.

            Several GPUs and nodes, like `train` (hardware.gpus_per_node × hardware.nodes; --gpus and --nodes set \
            them): torchrun starts one engine process per GPU and each encodes a disjoint share of the shards \
            (shard k of a split holds the manifest's rows k·S to k·S + S − 1, S = cache.shard_items), so the cache \
            is the same on any number of GPUs. A process that dies loses only the shard it was writing; run the \
            same command again. Several nodes need the cache folder on storage every node sees, and each node runs \
            the command with its own --node-rank and node 0's --master ADDR:PORT.

            Examples:
              wanlora cache --config run.toml
              wanlora cache --config run.toml --set cache.device=cuda --progress plain
              wanlora cache --preset h100 --set model.checkpoint=/models/Wan2.2-T2V-A14B \\
                  --set data.train_manifest=prepared/train.csv \\
                  --set data.val_manifest=prepared/val.csv
              wanlora cache --config run.toml --gpus 8
              wanlora cache --config run.toml --gpus 8 --nodes 2 --node-rank 0 --master 10.0.0.1:29500

            The engine's events go to RUN/cache-events.jsonl, its log to RUN/cache.log (docs/runs.md).
            """
    )

    @OptionGroup var options: EngineRunOptions
    @OptionGroup var nodes: NodeLayoutOptions

    func run() throws {
        let code = try reportingErrors { () throws -> Int32 in
            // The cache stage has no Ulysses groups: the training layout's degree must not refuse --gpus 3.
            let config = try options.loadConfig(overrides: nodes.overrides + [("hardware.ulysses_degree", .integer(1))])
            let placement = NodePlacement(
                nodeRank: nodes.nodeRank, master: try nodes.master.map(MasterAddress.init(parsing:)))
            let prepared = try RunPreparation.prepare(
                stage: .cache, config: config, configFile: options.configFile, resume: false,
                engine: try options.engine(), placement: placement)
            return try execute(prepared, options: options, force: false)
        }
        if code != 0 { throw ExitCode(code) }
    }
}

/// `wanlora train`: LoRA training of the Wan2.2 experts, on one GPU or over several GPUs and nodes.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the LoRA adapters of both Wan2.2 experts: "
            + "the engine on one GPU, torchrun over several GPUs and nodes.",
        discussion: """
            Resolves the configuration (preset, file, --set, --gpus, --nodes, --ulysses, --fsdp), checks it with the \
            planner (memory, precision, Ulysses: a plan that does not fit is refused unless --force; \
            skipped for training.device = "cpu"), checks the cache, writes config.resolved.json into the run folder \
            and starts the engine: python for one GPU, torchrun (python -m torch.distributed.run) for several, \
            one process per GPU, with your environment passed unchanged to every rank (CUDA_VISIBLE_DEVICES, \
            NCCL_* and the rest). Progress shows step, loss, learning rate, seconds per step, ETA and GPU memory.

            Several GPUs (docs/distributed.md): --ulysses U lets U GPUs share each sample's tokens (U divides the GPUs \
            and the 40 heads), the others train different samples (data parallel); --fsdp shards the frozen expert \
            over all GPUs. Samples per step = micro_batch × grad_accum × (GPUs / U). Several nodes: run the same \
            command on every node with its own --node-rank and node 0's --master ADDR:PORT. \
            A run can resume on another number of GPUs: the engine keeps its samples per step by changing grad_accum.

            --dry-run prints the run folder, the command for this node, \
            the same launch as a Slurm script and the per-GPU plan, and starts nothing.

            Ctrl-C asks the engine to finish its step, write a checkpoint and stop (exit status 130); a second Ctrl-C \
            stops it at once (the previous checkpoint stays valid), a third kills it. Continue with --resume. \
            The exit status is the engine's: 0 completed, 1 failed, \
            2 configuration refused, 3 loss became NaN/Inf, 130 interrupted.

            Examples:
              wanlora train --config run.toml
              wanlora train --config run.toml --resume
              wanlora train --config run.toml --gpus 1 --ulysses 1 --set training.overfit_samples=100
              wanlora train --config run.toml --gpus 8 --ulysses 2 --dry-run
            Two nodes of 8 GPUs, node 0 at 10.0.0.1 (run on each node with its own --node-rank):
              wanlora train --config run.toml --gpus 8 --nodes 2 --node-rank 0 --master 10.0.0.1:29500

            The run folder holds config.resolved.json, events.jsonl, train.log, \
            checkpoints/ and lora/ (docs/runs.md); `wanlora runs` lists runs.

            Metrics: events.jsonl has each logged step's loss, learning rate, throughput and memory and the \
            validation loss by timestep. Also to TensorBoard (RUN/tensorboard): --set training.tensorboard=true; \
            to an MLflow file store (runs_dir/mlruns): --set training.mlflow_tracking_uri=file:mlruns. \
            The engine installs the package (tensorboard, mlflow-skinny) into its Python when one is on \
            (docs/runs.md "Metrics").
            """
    )

    @OptionGroup var options: EngineRunOptions

    @Flag(help: "Continue from the run's newest checkpoint (bit-identical to an uninterrupted run).")
    var resume = false

    @OptionGroup var nodes: NodeLayoutOptions

    @Option(
        help: ArgumentHelp(
            "Ulysses degree: GPUs sharing one sample's tokens; sets hardware.ulysses_degree.", valueName: "U"))
    var ulysses: Int?

    @Flag(inversion: .prefixedNo, help: "Shard the frozen expert weights over all GPUs (FSDP); sets hardware.fsdp.")
    var fsdp: Bool?

    @Option(
        name: .customLong("shutdown-timeout"),
        help: ArgumentHelp(
            "Seconds torchrun waits after Ctrl-C/SIGTERM/SIGUSR1 for the step and its checkpoint before it kills the "
                + "ranks (default: training.stop_grace_seconds + \(Launcher.exitMarginSeconds)).",
            valueName: "s"))
    var shutdownTimeout: Int?

    @Option(
        name: .customLong("max-restarts"),
        help: ArgumentHelp(
            "torchrun's elastic restarts: when a rank dies, all ranks start again and continue from the last whole "
                + "checkpoint, up to k times (0: off).",
            valueName: "k"))
    var maxRestarts: Int = 0

    @OptionGroup var slurmJob: SlurmJobOptions

    @Flag(help: "Start even when the planner says the plan does not fit, or resume with a changed configuration.")
    var force = false

    @Flag(
        name: .customLong("dry-run"),
        help: "Print the run folder, the launch command, a Slurm script and the per-GPU plan; start nothing.")
    var dryRun = false

    func validate() throws {
        if let ulysses, ulysses < 1 { throw ValidationError("--ulysses must be 1 (off) or more, not \(ulysses).") }
        if let shutdownTimeout, shutdownTimeout < 1 {
            throw ValidationError("--shutdown-timeout must be 1 s or more, not \(shutdownTimeout).")
        }
        if maxRestarts < 0 { throw ValidationError("--max-restarts must be 0 (off) or more, not \(maxRestarts).") }
    }

    /// The launch options that are configuration keys, as overrides applied before --set.
    private var overrides: [(String, ConfigValue)] {
        var list = nodes.overrides
        if let ulysses { list.append(("hardware.ulysses_degree", .integer(ulysses))) }
        if let fsdp { list.append(("hardware.fsdp", .boolean(fsdp))) }
        return list
    }

    func run() throws {
        let code = try reportingErrors { () throws -> Int32 in
            let config = try options.loadConfig(
                overrides: overrides, gpuCountGiven: nodes.gpus != nil || nodes.nodes != nil,
                ulyssesGiven: ulysses != nil)
            // A dry run of several nodes without --master still shows the Slurm script (which finds node 0
            // itself); its per-node command names the address to fill in.
            let masterAddress =
                try nodes.master.map(MasterAddress.init(parsing:))
                ?? (dryRun && config.hardware.nodes > 1 ? TrainCommand.masterPlaceholder : nil)
            let placement = NodePlacement(
                nodeRank: nodes.nodeRank, master: masterAddress,
                shutdownTimeoutSeconds: shutdownTimeout,
                maxRestarts: maxRestarts)
            let prepared = try RunPreparation.prepare(
                stage: .train, config: config, configFile: options.configFile, resume: resume,
                engine: try options.engine(), placement: placement,
                resumeCommand: resumeCommand())
            if dryRun {
                try printDryRun(prepared)
                return prepared.blockingChecks.isEmpty || force ? 0 : 1
            }
            return try execute(prepared, options: options, force: force)
        }
        if code != 0 { throw ExitCode(code) }
    }

    /// A dry run writes the run's config.resolved.json, which the printed command and Slurm script read,
    /// unless a run holds the folder or it has another config already (the real start checks that).
    private func writeConfigForScript(_ p: PreparedRun) throws -> String {
        if RunLock.isHeld(p.folder) { return "not written: a run holds the folder" }
        let text = p.resolved.formatted()
        if let existing = FileManager.default.contents(atPath: p.folder.configPath) {
            return String(decoding: existing, as: UTF8.self) == text
                ? "written earlier, unchanged"
                : "not written: the folder has another config; `wanlora train` checks it when it starts"
        }
        try FileManager.default.createDirectory(atPath: p.folder.path, withIntermediateDirectories: true)
        try p.folder.writeConfig(p.resolved)
        return "written for the command and the Slurm script below"
    }

    /// The user's own command line with --resume (and without --force and --dry-run).
    private func resumeCommand() -> String {
        var words = ["wanlora"] + CommandLine.arguments.dropFirst().filter { !["--force", "--dry-run"].contains($0) }
        if !words.contains("--resume") { words.append("--resume") }
        return words.map { EngineLaunch.shellQuoted($0) }.joined(separator: " ")
    }

    /// The per-node command's master address in a dry run without --master.
    static let masterPlaceholder = MasterAddress(host: "NODE0_ADDRESS", port: 29500)

    private func printDryRun(_ p: PreparedRun) throws {
        Console.out("run folder:  \(p.folder.path)")
        Console.out("config:      \(p.folder.configPath) (\(try writeConfigForScript(p)))")
        Console.out("processes:   \(p.launch.processes)\(p.launch.processes > 1 ? " (torchrun)" : "")")
        Console.out("command:     \(p.launch.commandLine)")
        if let plan = p.plan {
            Console.out(
                "plan:        \(String(format: "%.1f", Double(plan.memory.peakBytes) / 1_073_741_824)) GiB peak per "
                    + "GPU of \(String(format: "%.0f", plan.setup.gpuMemoryGiB)) GiB, "
                    + "\(NumberFormat.grouped(plan.schedule.totalSteps)) steps, "
                    + "about \(String(format: "%.1f", plan.schedule.runHours)) h"
            )
            let w = plan.placement
            let h = plan.host
            let blocks =
                w.streams
                ? "\(w.residentBlocks) of \(w.blocks) blocks on the GPU, \(w.streamedBlocks) streamed from host memory "
                    + "(\(w.hostWeights.rawValue))"
                : "all \(w.blocks) blocks on the GPU"
            let kept = plan.setup.activationOffload == "host" ? "host memory" : "GPU memory"
            Console.out("weights:     \(blocks); kept activations in \(kept)")
            Console.out(
                "host RAM:    \(String(format: "%.1f", Double(h.neededBytes) / 1_073_741_824)) GiB needed"
                    + (h.availableBytes.map { String(format: ", %.1f GiB available", Double($0) / 1_073_741_824) }
                        ?? "")
            )
            for check in plan.checks {
                Console.out("  \(check.severity.rawValue): \(check.message)")
                if check.severity == .error { Console.out("    fix: \(check.remedy)") }
            }
        }
        for note in p.notes { Console.out("note: \(note)") }
        guard let request = p.launch.request else { return }
        let settings = SlurmSettings(
            time: slurmJob.time, partition: slurmJob.partition, account: slurmJob.account,
            signalLeadSeconds: (request.shutdownTimeoutSeconds
                ?? p.resolved.settings.training.stopGraceSeconds) + 30)
        let slurm = try ClusterScript.slurm(request, jobName: "wanlora-\(p.resolved.run.name)", settings: settings)
        Console.out("")
        FileHandle.standardOutput.write(
            Data(
                DryRun.text(
                    request: request, command: LaunchCommand([p.launch.executable] + p.launch.arguments),
                    slurmScript: slurm, plan: p.plan
                ).utf8))
    }
}

/// `wanlora runs`: the run folders and their state.
struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List runs with their state, steps and last loss.",
        discussion: """
            Reads every run folder under the runs folder (--runs-dir, or run.runs_dir of --config, default ./runs): \
            the state from its events (running, completed, failed, interrupted, diverged; crashed when the engine \
            ended without its final event — resume it; new when nothing ran yet), steps done of the total, \
            the last training and validation loss, the checkpoints on disk and the time of the last event.

            --html also writes each run's page, RUN/run.html: the training loss of both experts, the validation \
            loss overall and by timestep, the learning rate, memory and throughput over the steps, from the run's \
            events.jsonl (a series the events do not carry is named as not recorded). One self-contained file: \
            open it in a browser, or copy it off the cluster.

            Examples:
              wanlora runs
              wanlora runs --config run.toml --html
            """
    )

    @Option(name: .customLong("runs-dir"), help: ArgumentHelp("Folder that holds the run folders.", valueName: "dir"))
    var runsDir: String?

    @Option(
        name: .customLong("config"),
        help: ArgumentHelp("Take the runs folder from this configuration's run.runs_dir.", valueName: "file"))
    var configFile: String?

    @Flag(help: "Print JSON (one object per run) instead of the table.")
    var json = false

    @Flag(help: "Also write each run's page of training curves, RUN/run.html.")
    var html = false

    func validate() throws {
        if runsDir != nil && configFile != nil { throw ValidationError("Give --runs-dir or --config, not both.") }
    }

    func run() throws {
        try reportingErrors {
            var folder = PathMath.absolute(runsDir ?? "runs")
            if let configFile {
                let config = try ConfigLoader.load(file: configFile)
                let base = (PathMath.absolute(configFile) as NSString).deletingLastPathComponent
                folder = PathMath.absolute(config.run.runsDir, base: base)
            }
            let runs = try RunStatus.list(runsDir: folder)
            if json {
                FileHandle.standardOutput.write(Data(RunStatus.json(runs).formatted().utf8))
            } else if runs.isEmpty {
                Console.out("no runs in \(folder)")
            } else {
                FileHandle.standardOutput.write(Data(RunStatus.table(runs).utf8))
            }
            if html { try writePages(runs) }
        }
    }

    /// Writes `run.html` into every run folder (a run without training events gets a page that says so).
    private func writePages(_ runs: [RunStatus]) throws {
        for run in runs {
            let folder = RunFolder(path: run.path)
            let path = RunPage.path(of: folder)
            do {
                try Data(RunPage.html(folder).utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw GeneralError(
                    "cannot write the run page \(path): \(error.localizedDescription)",
                    remedy:
                        "make the run folder writable, or copy the run elsewhere and run `wanlora runs --html` there")
            }
            if !json { Console.out("wrote \(path)") }
        }
    }
}
