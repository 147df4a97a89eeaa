/// A program and its arguments, ready for `Process` (no shell involved) and printable for a shell.
public struct LaunchCommand: Sendable, Equatable {
    /// `arguments[0]` is the program: a path, or a name looked up in PATH.
    public var arguments: [String]

    public init(_ arguments: [String]) { self.arguments = arguments }

    /// The command as one line a POSIX shell runs unchanged (arguments quoted where needed).
    public var shellLine: String { arguments.map(ShellQuoting.quote).joined(separator: " ") }
}

/// Builds the engine's command line for a launch request. Pure: nothing is started here.
///
/// One GPU: `PYTHON -m wanlora_engine STAGE --config FILE` (STAGE: train or cache). Several: the same
/// module under torchrun (`PYTHON -m torch.distributed.run`, torchrun's own module, so that it runs in
/// the engine's Python), one process per GPU: `--standalone` on one node (a free local port),
/// `--node-rank`, `--master-addr` and `--master-port` on several (every node runs the command with its
/// own rank). The engine reads
/// RANK, LOCAL_RANK and WORLD_SIZE from torchrun; the layout goes on its command line (`--ulysses`,
/// `--fsdp`) rather than into the run's config, so a run can resume on another number of GPUs.
public enum Launcher {
    /// The signals torchrun passes on to every rank: its defaults and SIGUSR1, a scheduler's notice
    /// before preemption or the time limit (Slurm's `--signal`). Each rank stops after its step.
    public static let forwardedSignals = "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1"

    /// Seconds torchrun waits beyond the engine's stop grace (training.stop_grace_seconds) before it
    /// kills the ranks: the last events and the exit.
    public static let exitMarginSeconds = 15

    public static func command(for request: LaunchRequest) throws -> LaunchCommand {
        try request.validate()
        let engine = engineArguments(for: request)
        guard request.usesTorchrun else { return LaunchCommand([request.python] + engine) }

        var torchrun = [
            request.python, "-m", "torch.distributed.run",
            "--nnodes", String(request.nodes), "--nproc-per-node", String(request.gpusPerNode),
        ]
        if let master = request.master {
            torchrun += [
                "--node-rank", String(request.nodeRank), "--master-addr", master.host,
                "--master-port", String(master.port),
            ]
        } else {
            torchrun.append("--standalone")
        }
        return LaunchCommand(torchrun + lifecycleOptions(for: request) + engine)
    }

    /// torchrun's options after the rendezvous: elastic restarts, the signals it passes on, its
    /// shutdown wait.
    public static func lifecycleOptions(for request: LaunchRequest) -> [String] {
        var options: [String] = []
        if request.maxRestarts > 0 { options += ["--max-restarts", String(request.maxRestarts)] }
        options += ["--signals-to-handle", forwardedSignals]
        if let seconds = request.shutdownTimeoutSeconds { options += ["--shutdown-timeout", String(seconds)] }
        return options
    }

    /// What follows the Python (or torchrun): `-m wanlora_engine STAGE --config FILE [...]`; `cache` takes
    /// no layout options, and --resume belongs to `train`.
    public static func engineArguments(for request: LaunchRequest) -> [String] {
        var engine = ["-m", "wanlora_engine", request.stage.rawValue, "--config", request.configPath]
        guard request.stage != .cache else { return engine }
        if request.ulysses > 1 { engine += ["--ulysses", String(request.ulysses)] }
        if request.fsdp && request.worldSize > 1 { engine.append("--fsdp") }
        if request.resume && request.stage == .train { engine.append("--resume") }
        return engine
    }
}

/// POSIX shell quoting for printed commands.
public enum ShellQuoting {
    /// `word` unchanged when it has only safe characters, else in single quotes ('\'' for a quote).
    public static func quote(_ word: String) -> String {
        let safe = word.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "-", "_", ".", "/", ":", "=", "+", ",", "@", "%": return true
            default: return false
            }
        }
        if safe && !word.isEmpty { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
