import Foundation
import Runs
import Support

/// One JSON-lines event of the engine's `evaluate` stage. Read as plain JSON, not through `Runs.EngineEvent`:
/// its typed bodies know the cache and train stages, and the evaluate stage adds its own event types and
/// stage name (docs/engine-contract.md §3, evaluate).
public struct EvaluationEvent: Sendable, Equatable {
    public let name: String
    public let fields: JSONValue

    /// nil for a line that is not an event object (a torn line of a killed process).
    public init?(line: String) {
        guard let value = try? JSONValue.parse(line), case .string(let name)? = value["event"] else { return nil }
        self.name = name
        fields = value
    }

    public subscript(key: String) -> JSONValue? { fields[key] }

    public func string(_ key: String) -> String? {
        if case .string(let value)? = fields[key] { return value }
        return nil
    }

    public func int(_ key: String) -> Int? {
        switch fields[key] {
        case .int(let value)?: return value
        case .double(let value)?: return Int(value)
        default: return nil
        }
    }
}

/// How an evaluation ended: the engine's exit, its last `run_finished` and `error` events, and the last
/// lines of its log (for the message when it crashed).
public struct EvaluationOutcome: Sendable {
    public var termination: EngineProcess.Termination
    public var finished: EvaluationEvent?
    public var errors: [EvaluationEvent]
    public var logTail: [String]

    public var completed: Bool { termination == .exited(0) && finished?.string("status") == "completed" }
}

/// Starts `python -m wanlora_engine evaluate --config FILE` through the Runs library's engine process
/// (its own process group, stdout events, stderr to a log file, SIGINT → SIGTERM → SIGKILL teardown).
public final class EvaluationRun: @unchecked Sendable {
    public let process: EngineProcess

    public init(installation: EngineInstallation, configPath: String, logPath: String) {
        let launch = EngineLaunch(executable: installation.python,
                                  arguments: ["-m", "wanlora_engine", "evaluate", "--config", configPath], processes: 1)
        // The engine stops between two videos: a few seconds after SIGINT, then SIGTERM.
        process = EngineProcess(launch: launch, logPath: logPath, grace: .init(afterInterrupt: { 30 }, afterTerminate: 10))
    }

    /// Runs to the end; `onEvent` sees every event in order, on a reader thread.
    public func run(onEvent: @escaping @Sendable (EvaluationEvent) -> Void) throws -> EvaluationOutcome {
        let collected = Collected()
        let termination = try process.run(onLine: { line in
            guard let event = EvaluationEvent(line: line) else { return }
            collected.add(event)
            onEvent(event)
        })
        return collected.outcome(termination, logTail: process.logTail)
    }

    /// One step of the teardown (Ctrl-C): SIGINT, then SIGTERM, then SIGKILL.
    @discardableResult
    public func requestStop() -> EngineProcess.StopAction { process.requestStop() }
}

private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var finished: EvaluationEvent?
    private var errors: [EvaluationEvent] = []

    func add(_ event: EvaluationEvent) {
        lock.lock()
        defer { lock.unlock() }
        if event.name == "run_finished" { finished = event }
        if event.name == "error" { errors.append(event) }
    }

    func outcome(_ termination: EngineProcess.Termination, logTail: [String]) -> EvaluationOutcome {
        lock.lock()
        defer { lock.unlock() }
        return EvaluationOutcome(termination: termination, finished: finished, errors: errors, logTail: logTail)
    }
}
