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
