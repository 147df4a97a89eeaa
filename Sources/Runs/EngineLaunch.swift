import Foundation
import Support

/// Where the Python engine is: the interpreter that has `wanlora_engine` installed, and
/// torchrun beside it when the venv has one.
public struct EngineInstallation: Sendable, Equatable {
    /// The Python interpreter, e.g. `/work/wanlora/engine/.venv/bin/python`.
    public var python: String
    /// torchrun of the same environment, when it exists; otherwise several processes are
    /// launched with `python -m torch.distributed.run` (the module torchrun runs).
    public var torchrun: String?

    public init(python: String, torchrun: String? = nil) {
        self.python = python
        self.torchrun = torchrun
    }

    /// The environment variable that names the engine's Python interpreter.
    public static let environmentVariable = "WANLORA_ENGINE_PYTHON"

    /// Finds the engine: the interpreter given explicitly (`--engine-python`), else
    /// `$WANLORA_ENGINE_PYTHON`, else `engine/.venv/bin/python` in one of `searchFrom` or a
    /// folder above it (the CLI passes the wanlora executable's folder and the working folder).
    public static func locate(explicit: String?, environment: [String: String], searchFrom: [String]) throws -> EngineInstallation {
        let fm = FileManager.default
        func installation(_ python: String) -> EngineInstallation {
            let sibling = ((python as NSString).deletingLastPathComponent as NSString).appendingPathComponent("torchrun")
            return EngineInstallation(python: python, torchrun: fm.isExecutableFile(atPath: sibling) ? sibling : nil)
        }
        for (given, origin) in [(explicit, "--engine-python"), (environment[environmentVariable], "$\(environmentVariable)")] {
            guard let given, !given.isEmpty else { continue }
            guard fm.isExecutableFile(atPath: given) else {
                throw RunError(
                    problem: "The engine's Python \(given) (from \(origin)) is not an executable file.",
                    remedy: "Point \(origin) at the python of the environment where wanlora_engine is installed, e.g. engine/.venv/bin/python (`make -C engine venv` creates it)."
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
            problem: "The Python engine was not found (looked for engine/.venv/bin/python above \(searchFrom.joined(separator: " and "))).",
            remedy: "Create it with `make -C engine venv` in the wanlora repository, or name its interpreter with --engine-python PATH or \(environmentVariable)=PATH."
        )
    }
}

/// The command that starts one engine stage: `python -m wanlora_engine STAGE --config FILE`
/// for one process, torchrun for several. The child gets the caller's environment unchanged
/// (torchrun adds only its own RANK/WORLD_SIZE/… to each worker).
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

    public init(executable: String, arguments: [String], processes: Int) {
        self.executable = executable
        self.arguments = arguments
        self.processes = processes
    }

    /// The launch of `stage` on `processes` local processes (GPUs) for the config at `configPath`.
    public static func make(stage: Stage, configPath: String, resume: Bool, processes: Int,
                            engine: EngineInstallation) -> EngineLaunch {
        var stageArguments = ["-m", "wanlora_engine", stage.rawValue, "--config", configPath]
        if resume && stage == .train { stageArguments.append("--resume") }
        guard processes > 1 else {
            return EngineLaunch(executable: engine.python, arguments: stageArguments, processes: 1)
        }
        // --standalone: a rendezvous on this host at a free port; one node (multi-node launches
        // take --nnodes/--node-rank/--rdzv-endpoint instead).
        let torchrun = ["--standalone", "--nnodes", "1", "--nproc-per-node", String(processes)]
        if let path = engine.torchrun {
            return EngineLaunch(executable: path, arguments: torchrun + stageArguments, processes: processes)
        }
        return EngineLaunch(executable: engine.python, arguments: ["-m", "torch.distributed.run"] + torchrun + stageArguments,
                            processes: processes)
    }

    /// The command as one shell line, quoted where needed (for logs and `--dry-run`).
    public var commandLine: String {
        ([executable] + arguments).map(Self.shellQuoted).joined(separator: " ")
    }

    public static func shellQuoted(_ word: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
        if !word.isEmpty && word.allSatisfy({ safe.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
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
