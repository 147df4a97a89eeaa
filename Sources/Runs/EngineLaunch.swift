import Config
import Foundation
import Launch
import Support

/// Where the Python engine is: the interpreter that has `wanlora_engine` installed (several
/// processes start through its `-m torch.distributed.run`, torchrun's own module).
public struct EngineInstallation: Sendable, Equatable {
    /// The Python interpreter, e.g. `/work/wanlora/engine/.venv/bin/python`.
    public var python: String

    public init(python: String) {
        self.python = python
    }

    /// The environment variable that names the engine's Python interpreter.
    public static let environmentVariable = "WANLORA_ENGINE_PYTHON"

    /// Finds the engine: the interpreter given explicitly (`--engine-python`), else
    /// `$WANLORA_ENGINE_PYTHON`, else `engine/.venv/bin/python` in one of `searchFrom` or a
    /// folder above it (the CLI passes the wanlora executable's folder and the working folder).
    public static func locate(explicit: String?, environment: [String: String], searchFrom: [String]) throws
        -> EngineInstallation
    {
        let fm = FileManager.default
        func installation(_ python: String) -> EngineInstallation { EngineInstallation(python: python) }
        for (given, origin) in [
            (explicit, "--engine-python"), (environment[environmentVariable], "$\(environmentVariable)"),
        ] {
            guard let given, !given.isEmpty else { continue }
            guard fm.isExecutableFile(atPath: given) else {
                throw RunError(
                    problem: "The engine's Python \(given) (from \(origin)) is not an executable file.",
                    remedy: "Point \(origin) at the python of the environment where wanlora_engine is installed, "
                        + "e.g. engine/.venv/bin/python (`make -C engine venv` creates it)."
                )
            }
            return installation(given)
        }
        var tried: [String] = []
        for start in searchFrom {
            var folder = (start as NSString).standardizingPath
            while true {
                let candidate = (folder as NSString).appendingPathComponent("engine/.venv/bin/python")
                if fm.isExecutableFile(atPath: candidate) { return installation(candidate) }
                tried.append(candidate)
                let parent = (folder as NSString).deletingLastPathComponent
                if parent == folder || parent.isEmpty { break }
                folder = parent
            }
        }
        throw RunError(
            problem: "The Python engine was not found (looked for engine/.venv/bin/python "
                + "above \(searchFrom.joined(separator: " and "))).",
            remedy: "Create it with `make -C engine venv` in the wanlora repository, "
                + "or name its interpreter with --engine-python PATH or \(environmentVariable)=PATH."
        )
    }
}

/// Launch settings of this node that are not part of the configuration: its rank among the
/// nodes, node 0's address, torchrun's shutdown wait (nil: training.stop_grace_seconds plus
/// torchrun's exit margin) and its elastic restarts.
public struct NodePlacement: Sendable, Equatable {
    public var nodeRank: Int
    public var master: MasterAddress?
    public var shutdownTimeoutSeconds: Int?
    public var maxRestarts: Int

    public init(
        nodeRank: Int = 0, master: MasterAddress? = nil, shutdownTimeoutSeconds: Int? = nil,
        maxRestarts: Int = 0
    ) {
        self.nodeRank = nodeRank
        self.master = master
        self.shutdownTimeoutSeconds = shutdownTimeoutSeconds
        self.maxRestarts = maxRestarts
    }
}

/// The command that starts one engine stage: `python -m wanlora_engine STAGE --config FILE`
/// for one process; for caching or training on several GPUs or nodes, the Launch library's torchrun
/// command (one builder for `wanlora cache`, `wanlora train` and its `--dry-run`). The child gets the
/// caller's environment unchanged (torchrun adds only its own RANK/WORLD_SIZE/… to each worker).
public struct EngineLaunch: Sendable, Equatable {
    public enum Stage: String, Sendable {
        case cache, train
    }

    /// The program started (absolute path, or a name looked up in PATH).
    public var executable: String
    /// Its arguments, without argv[0].
    public var arguments: [String]
    /// Engine processes (ranks) on this node.
    public var processes: Int
    /// The launch as the Launch library sees it (layout, nodes); nil for a stage started by `module`.
    public var request: LaunchRequest?

    public init(executable: String, arguments: [String], processes: Int, request: LaunchRequest? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.processes = processes
        self.request = request
    }

    /// The launch of `stage` for the config at `configPath` on `hardware`'s GPUs per node and nodes, from
    /// `placement`: one process on one GPU, torchrun on several. Training also takes the layout (Ulysses,
    /// FSDP) and the stop grace; the cache stage gives each GPU a share of the shards.
    public static func make(
        stage: Stage, configPath: String, resume: Bool, hardware: HardwareSettings,
        attentionHeads: Int, placement: NodePlacement = NodePlacement(),
        stopGraceSeconds: Int? = nil,
        engine: EngineInstallation
    ) throws -> EngineLaunch {
        let train = stage == .train
        let request = LaunchRequest(
            stage: train ? .train : .cache,
            gpusPerNode: hardware.gpusPerNode, nodes: hardware.nodes, nodeRank: placement.nodeRank,
            master: placement.master,
            ulysses: train ? hardware.ulyssesDegree : 1, fsdp: train && hardware.fsdp, configPath: configPath,
            resume: train && resume, python: engine.python,
            shutdownTimeoutSeconds: placement.shutdownTimeoutSeconds
                ?? (train ? stopGraceSeconds.map { $0 + Launcher.exitMarginSeconds } : nil),
            maxRestarts: placement.maxRestarts, attentionHeads: attentionHeads
        )
        let command = try Launcher.command(for: request)
        return EngineLaunch(
            executable: command.arguments[0], arguments: Array(command.arguments.dropFirst()),
            processes: request.gpusPerNode, request: request)
    }

    /// The sample stage of `request` (stage `.sample`, its configPath the job file): one process, or
    /// torchrun with one process per GPU (the videos dealt to the data-parallel groups, each video's
    /// tokens over `request.ulysses` GPUs, the experts sharded with `request.fsdp`).
    public static func sample(_ request: LaunchRequest) throws -> EngineLaunch {
        let command = try Launcher.command(for: request)
        return EngineLaunch(
            executable: command.arguments[0], arguments: Array(command.arguments.dropFirst()),
            processes: request.gpusPerNode, request: request.usesTorchrun ? request : nil)
    }

    /// One engine process of `stage`: `python -m wanlora_engine STAGE --config FILE`.
    public static func module(
        _ stage: EngineEvent.Stage, configPath: String,
        engine: EngineInstallation
    ) -> EngineLaunch {
        EngineLaunch(
            executable: engine.python,
            arguments: ["-m", "wanlora_engine", stage.rawValue, "--config", configPath], processes: 1)
    }

    /// The command as one shell line, quoted where needed (for logs and `--dry-run`).
    public var commandLine: String {
        ([executable] + arguments).map(Self.shellQuoted).joined(separator: " ")
    }

    public static func shellQuoted(_ word: String) -> String { ShellQuoting.quote(word) }
}

/// A problem of the run machinery (engine not found, run folder busy, …), with what to do.
public struct RunError: ActionableError, Equatable {
    public let problem: String
    public let remedy: String
    public init(problem: String, remedy: String) {
        self.problem = problem
        self.remedy = remedy
    }
}
