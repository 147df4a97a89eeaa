import Foundation

/// How long the teardown of a stage waits: after SIGINT, `interruptBase` plus twice the seconds of
/// the last training step (a step must be able to finish and write its checkpoint); after SIGTERM,
/// `terminate`, then SIGKILL.
public struct StageGrace: Sendable, Equatable {
    public var interruptBase: Double
    public var terminate: Double

    public init(interruptBase: Double, terminate: Double) {
        self.interruptBase = interruptBase
        self.terminate = terminate
    }

    /// cache and train (docs/engine-contract.md §1): 2 × the last seconds per step + 60 s, then 30 s.
    public static let training = StageGrace(interruptBase: 60, terminate: 30)
    /// sample: the engine stops within a denoising step, keeping the videos finished.
    public static let sampling = StageGrace(interruptBase: 60, terminate: 10)
    /// evaluate: the engine stops between two videos, keeping their features.
    public static let evaluation = StageGrace(interruptBase: 30, terminate: 10)
}

/// Receives what a running stage produces (on reader threads, in order per stream).
public struct StageObserver: Sendable {
    /// Each event, with its line as the engine wrote it.
    public var event: @Sendable (EngineEvent, String) -> Void
    /// A stdout line that is not an event (the contract allows none; the caller decides whether to show it).
    public var strayLine: @Sendable (String) -> Void
    /// Each stderr line of the engine (it also goes to the log file).
    public var stderrLine: (@Sendable (String) -> Void)?
    /// A grace period ran out and a stronger signal was sent.
    public var escalation: @Sendable (EngineProcess.StopAction) -> Void
    /// Something wanlora itself did that the user should know (a stale run lock taken over).
    public var warning: @Sendable (String) -> Void

    public init(
        event: @escaping @Sendable (EngineEvent, String) -> Void,
        strayLine: @escaping @Sendable (String) -> Void = { _ in },
        stderrLine: (@Sendable (String) -> Void)? = nil,
        escalation: @escaping @Sendable (EngineProcess.StopAction) -> Void = { _ in },
        warning: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.event = event
        self.strayLine = strayLine
        self.stderrLine = stderrLine
        self.escalation = escalation
        self.warning = warning
    }
}

/// How one engine stage ended: the process's end, the stage's last `run_finished` and `error`
/// events, and the end of its log.
public struct StageOutcome: Sendable {
    public var termination: EngineProcess.Termination
    /// The last `run_finished` event, when the engine wrote one.
    public var finished: EngineEvent.RunFinished?
    /// The last `error` event (its problem and remedy are what the user reads).
    public var error: EngineEvent.ErrorReport?
    /// The last training step reported.
    public var lastStep: Int?
    /// The last lines the engine wrote on stderr.
    public var logTail: [String]
    public var logPath: String
    /// A stop was asked for (Ctrl-C) while the stage ran.
    public var stopRequested: Bool

    /// Exit status 0 and a `run_finished` that says completed.
    public var completed: Bool { termination == .exited(0) && finished?.status == .completed }

    /// The outputs of the stage's `run_finished` (empty without one).
    public var outputs: [String: String] { finished?.outputs ?? [:] }
}

/// One engine stage (cache, train, sample or evaluate) from start to end: launches the engine
/// (python, or torchrun through Launch) in its own process group, decodes its event stream, hands
/// each event to an observer, forwards stop requests as the teardown SIGINT → SIGTERM → SIGKILL,
/// and collects the outcome. Every command that starts the engine goes through this type.
public final class EngineStage: @unchecked Sendable {
    public let launch: EngineLaunch
    public let logPath: String
    public let grace: StageGrace
    private let process: EngineProcess
    private let clock: StepClock
    private let lock = NSLock()
    private var stopRequests = 0

    public init(launch: EngineLaunch, logPath: String, grace: StageGrace) {
        self.launch = launch
        self.logPath = logPath
        self.grace = grace
        let clock = StepClock(interruptBase: grace.interruptBase)
        self.clock = clock
        process = EngineProcess(
            launch: launch, logPath: logPath,
            grace: EngineProcess.Grace(
                afterInterrupt: { clock.interruptGrace() },
                afterTerminate: grace.terminate))
    }

    /// Forwards a Ctrl-C (or SIGTERM) to the engine, one teardown step per call. Before the start
    /// it only records the request (`stopRequested`): the caller then starts nothing.
    @discardableResult
    public func requestStop() -> EngineProcess.StopAction {
        lock.lock()
        stopRequests += 1
        lock.unlock()
        return process.requestStop()
    }

    /// A stop was asked for.
    public var stopRequested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopRequests > 0
    }

    /// The wait after SIGINT: 2 × the last seconds per step + `grace.interruptBase`.
    public func interruptGrace() -> Double { clock.interruptGrace() }

    /// The process id while the engine runs (0 before the start).
    public var processID: Int32 { process.processID }

    /// Runs the stage to its end and returns how it ended. Throws `RunError` only when the engine
    /// cannot be started (or its log cannot be opened).
    public func run(observer: StageObserver) throws -> StageOutcome {
        let recorder = OutcomeRecorder()
        let termination = try process.run(
            onLine: { [clock] line in
                guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { return }
                guard let event = try? EngineEvent(line: line) else {
                    observer.strayLine(line)
                    return
                }
                recorder.record(event)
                if case .step(let step) = event.body { clock.note(step.secondsPerStep) }
                observer.event(event, line)
            },
            onStderrLine: observer.stderrLine,
            onEscalation: observer.escalation
        )
        return recorder.outcome(
            termination: termination, logTail: process.logTail, logPath: logPath,
            stopRequested: stopRequested)
    }
}

/// The seconds of the last training step, for the wait after SIGINT (read on a timer thread).
private final class StepClock: @unchecked Sendable {
    private let lock = NSLock()
    private let interruptBase: Double
    private var lastSecondsPerStep = 0.0

    init(interruptBase: Double) { self.interruptBase = interruptBase }

    func note(_ seconds: Double) {
        lock.lock()
        lastSecondsPerStep = seconds
        lock.unlock()
    }

    func interruptGrace() -> Double {
        lock.lock()
        defer { lock.unlock() }
        return 2 * lastSecondsPerStep + interruptBase
    }
}

/// The events that decide the outcome, as they arrive on the reader thread.
private final class OutcomeRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var finished: EngineEvent.RunFinished?
    private var error: EngineEvent.ErrorReport?
    private var lastStep: Int?

    func record(_ event: EngineEvent) {
        lock.lock()
        defer { lock.unlock() }
        switch event.body {
        case .runFinished(let f): finished = f
        case .error(let e): error = e
        case .step(let s): lastStep = s.step
        case .runStarted:
            finished = nil
            error = nil
        default: break
        }
    }

    func outcome(
        termination: EngineProcess.Termination, logTail: [String], logPath: String,
        stopRequested: Bool
    ) -> StageOutcome {
        lock.lock()
        defer { lock.unlock() }
        return StageOutcome(
            termination: termination, finished: finished, error: error, lastStep: lastStep,
            logTail: logTail, logPath: logPath, stopRequested: stopRequested)
    }
}
