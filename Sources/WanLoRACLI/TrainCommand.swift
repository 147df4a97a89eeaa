import ArgumentParser
import Config
import Foundation
import Launch
import Planner
import Support

/// `wanlora train`: start the engine's LoRA training on one GPU, several, or several nodes.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the LoRA adapters: start the engine on one GPU, or torchrun over several GPUs and nodes.",
        discussion: """
        One process per GPU. With several GPUs the engine runs under torchrun (NCCL): --ulysses U lets U GPUs share each sample's tokens (U divides the GPUs and the 40 heads), the rest train different samples (data parallel), and hardware.fsdp = true shards the frozen expert over all GPUs. Samples per step = micro_batch × grad_accum × (GPUs / U). Every process gets your environment unchanged.

        --config takes the TOML configuration (its run folder is data.runs_dir/<file name>) or a run folder's config.resolved.json (to resume a run, also on another number of GPUs: the engine keeps the run's samples per step by changing grad_accum).

        --dry-run prints the command for this node, the same launch as a Slurm script and the per-GPU plan, and starts nothing.

        Examples:
          wanlora train --config run.toml --gpus 2 --ulysses 2 --dry-run
          wanlora train --config runs/run/config.resolved.json --gpus 8 --resume
        Two nodes of 8 GPUs, node 0 at 10.0.0.1 (run on each node with its own --node-rank):
          wanlora train --config run.toml --gpus 8 --nodes 2 --node-rank 0 \\
            --master 10.0.0.1:29500
        """
    )

    @Option(name: .customLong("config"), help: "TOML configuration, or a run folder's config.resolved.json.") var configFile: String
    @OptionGroup var launch: LaunchOptions
    @Flag(help: "Continue the run from its newest checkpoint.") var resume = false
    @Flag(name: .customLong("dry-run"), help: "Print the launch command, a Slurm script and the per-GPU plan; start nothing.") var dryRun = false

    func run() throws {
        let status = try printingActionableErrors { try train() }
        if status != 0 { throw ExitCode(status) }
    }

    private func train() throws -> Int32 {
        let target = try TrainTarget.load(configFile)
        let request = try launch.request(configPath: target.engineConfigPath, defaults: target.hardware,
                                         attentionHeads: target.attentionHeads, resume: resume)
        let command = try Launcher.command(for: request)
        if dryRun {
            var plan: Plan?
            if var config = target.config {
                config.hardware.gpusPerNode = request.gpusPerNode
                config.hardware.nodes = request.nodes
                config.hardware.ulyssesDegree = request.ulysses
                plan = try Planner.plan(config)
            }
            let slurm = try ClusterScript.slurm(request, jobName: "wanlora-\(target.runName)")
            print(DryRun.text(request: request, command: command, slurmScript: slurm, plan: plan), terminator: "")
            return plan?.hasErrors == true ? 1 : 0
        }
        guard FileManager.default.fileExists(atPath: target.engineConfigPath) else {
            throw GeneralError(
                "\(target.engineConfigPath) does not exist: the engine reads the run's resolved configuration.",
                remedy: "Resolve the TOML into its run folder first (the Runs library of `wanlora train`, issue 6), or pass --config with an existing config.resolved.json. --dry-run shows the launch without it."
            )
        }
        return try EngineProcess.run(command)
    }
}

/// The launch options shared by every command that starts the engine on GPUs.
struct LaunchOptions: ParsableArguments {
    @Option(help: "GPUs (processes) on this node (default: the config's hardware.gpus_per_node).") var gpus: Int?
    @Option(help: "Nodes of the run (default: hardware.nodes).") var nodes: Int?
    @Option(name: .customLong("node-rank"), help: "This node's number, 0 to nodes−1.") var nodeRank: Int = 0
    @Option(help: ArgumentHelp("Node 0's address and a free port, for several nodes.", valueName: "ADDR:PORT")) var master: String?
    @Option(help: "Ulysses degree: GPUs sharing one sample's tokens (default: hardware.ulysses_degree).") var ulysses: Int?
    @Flag(inversion: .prefixedNo, help: "Shard the frozen expert weights over all GPUs (default: hardware.fsdp; on for a config.resolved.json).")
    var fsdp: Bool?
    @Option(help: ArgumentHelp("The Python with the engine and torch (default: $WANLORA_PYTHON, else engine/.venv/bin/python when it exists, else python3).", valueName: "PATH"))
    var python: String?
    @Option(name: .customLong("shutdown-timeout"), help: "Seconds torchrun waits after Ctrl-C/SIGTERM for the step and its checkpoint before it kills the processes (default 0: torchrun's own 30 s; a 14B step at 81 frames needs more: pass e.g. 600 where torchrun has --shutdown-timeout; torch 2.11's has not).")
    var shutdownTimeout: Int = 0

    func validate() throws {
        if let master { _ = try MasterAddress(parsing: master) }
        if shutdownTimeout < 0 { throw ValidationError("--shutdown-timeout must be 0 (torchrun's default) or more seconds.") }
    }

    func request(configPath: String, defaults: HardwareSettings?, attentionHeads: Int, resume: Bool) throws -> LaunchRequest {
        LaunchRequest(
            gpusPerNode: gpus ?? defaults?.gpusPerNode ?? 1, nodes: nodes ?? defaults?.nodes ?? 1, nodeRank: nodeRank,
            master: try master.map(MasterAddress.init(parsing:)), ulysses: ulysses ?? defaults?.ulyssesDegree ?? 1,
            fsdp: fsdp ?? defaults?.fsdp ?? true, configPath: configPath, resume: resume, python: enginePython,
            shutdownTimeoutSeconds: shutdownTimeout == 0 ? nil : shutdownTimeout, attentionHeads: attentionHeads
        )
    }

    private var enginePython: String {
        if let python { return python }
        if let fromEnvironment = ProcessInfo.processInfo.environment["WANLORA_PYTHON"], !fromEnvironment.isEmpty { return fromEnvironment }
        let venv = "engine/.venv/bin/python"
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : "python3"
    }
}

/// What `--config` names: a TOML configuration or a resolved engine configuration.
struct TrainTarget {
    var config: WanLoRAConfig?
    var hardware: HardwareSettings?
    var engineConfigPath: String
    var runName: String
    var attentionHeads: Int

    static func load(_ path: String) throws -> TrainTarget {
        let url = URL(fileURLWithPath: path)
        let stem = url.deletingPathExtension().lastPathComponent
        if url.pathExtension.lowercased() == "json" {
            // A run folder's config.resolved.json: launched as it is; its run is the folder's name.
            guard FileManager.default.fileExists(atPath: path) else {
                throw GeneralError("\(path) does not exist.", remedy: "Pass the config.resolved.json of an existing run folder, or the TOML configuration.")
            }
            let runName = url.deletingLastPathComponent().lastPathComponent
            return TrainTarget(config: nil, hardware: nil, engineConfigPath: path, runName: runName,
                               attentionHeads: Architecture.named(.wan22T2VA14B).heads)
        }
        let config = try ConfigLoader.load(file: path)
        let base = url.deletingLastPathComponent().path
        let runs = config.data.runsDir.hasPrefix("/") ? config.data.runsDir : (base as NSString).appendingPathComponent(config.data.runsDir)
        let engineConfig = ((runs as NSString).appendingPathComponent(stem) as NSString).appendingPathComponent("config.resolved.json")
        return TrainTarget(config: config, hardware: config.hardware, engineConfigPath: engineConfig, runName: stem,
                           attentionHeads: Architecture.named(config.model.architecture).heads)
    }
}

/// Runs the engine (or torchrun) as a child with the caller's environment and standard streams, and
/// passes SIGINT/SIGTERM on to it: the engine finishes its step, saves a checkpoint and exits 130.
enum EngineProcess {
    static func run(_ command: LaunchCommand) throws -> Int32 {
        let process = Process()
        let program = command.arguments[0]
        if program.contains("/") {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = Array(command.arguments.dropFirst())
        } else {  // a name: let env look it up in PATH, as a shell would
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = command.arguments
        }
        // Never a clean environment: the child gets ours as it is (LaunchEnvironment's policy).
        process.environment = LaunchEnvironment.forEngine(caller: ProcessInfo.processInfo.environment)
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)  // handled below: wanlora waits for the engine's checkpoint
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { if process.isRunning { kill(process.processIdentifier, signalNumber) } }
            source.resume()
            sources.append(source)
        }
        defer { sources.forEach { $0.cancel() } }
        do {
            try process.run()
        } catch {
            throw GeneralError("Could not start \(program): \(error.localizedDescription).",
                               remedy: "Pass --python with the engine's Python (make -C engine venv creates engine/.venv/bin/python).")
        }
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }
}
