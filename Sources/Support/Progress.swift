import Foundation

/// One progress observation from a long-running library call.
public struct ProgressEvent: Sendable, Equatable {
    /// Short name of the stage, e.g. "read train.csv".
    public var stage: String
    /// Units finished so far.
    public var completed: Int
    /// Units in all, when known.
    public var total: Int?
    /// Unit name, e.g. "rows", "files", "MB".
    public var unit: String

    public init(stage: String, completed: Int, total: Int?, unit: String) {
        self.stage = stage
        self.completed = completed
        self.total = total
        self.unit = unit
    }
}

/// Where libraries send progress. Libraries never print; the CLI decides how
/// (animated line on a terminal, plain lines in a pipe, JSON lines for machines).
public struct ProgressReporter: Sendable {
    private let sink: @Sendable (ProgressEvent) -> Void

    public init(_ sink: @escaping @Sendable (ProgressEvent) -> Void) {
        self.sink = sink
    }

    public func report(_ event: ProgressEvent) { sink(event) }

    /// A reporter that discards everything (tests, quiet mode).
    public static let silent = ProgressReporter { _ in }
}

/// Counts finished units from several workers and reports the running total.
public final class ProgressCounter: @unchecked Sendable {
    private let reporter: ProgressReporter
    private let stage: String
    private let total: Int?
    private let unit: String
    private var completed = 0
    private let lock = NSLock()

    public init(reporter: ProgressReporter, stage: String, total: Int?, unit: String) {
        self.reporter = reporter
        self.stage = stage
        self.total = total
        self.unit = unit
    }

    public func add(_ units: Int) {
        guard units > 0 else { return }
        lock.lock()
        completed += units
        let now = completed
        lock.unlock()
        reporter.report(ProgressEvent(stage: stage, completed: now, total: total, unit: unit))
    }
}
