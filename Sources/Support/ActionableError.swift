/// An error a user can act on: it says what went wrong and how to fix it.
///
/// Every library error in wanlora conforms, so the CLI can print any failure as
/// two plain lines instead of a stack trace.
public protocol ActionableError: Error, CustomStringConvertible, Sendable {
    /// What happened, naming the file, line, key or value concerned.
    var problem: String { get }
    /// What the user can do about it.
    var remedy: String { get }
}

extension ActionableError {
    public var description: String { "\(problem)\nHow to fix: \(remedy)" }
}

/// A generic actionable error for the rare cases that need no own type.
public struct GeneralError: ActionableError {
    public let problem: String
    public let remedy: String
    public init(_ problem: String, remedy: String) {
        self.problem = problem
        self.remedy = remedy
    }
}
