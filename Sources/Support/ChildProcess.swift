import Foundation
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// How a child process ended.
public enum ProcessExit: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    public var succeeded: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let code): "exit status \(code)"
        case .signalled(let signal): "killed by signal \(signal)"
        }
    }
}

/// What a finished child process left behind: its exit, the end of its standard output and the
/// end of its standard error (the part that says why it failed).
public struct ChildProcessResult: Sendable {
    public var exit: ProcessExit
    /// The last `outputLimit` bytes of standard output (all of it when shorter).
    public var standardOutput: [UInt8]
    /// True when standard output was longer than the limit and its beginning was dropped.
    public var standardOutputTruncated: Bool
    /// The last `errorTailLimit` bytes of standard error, decoded as UTF-8.
    public var standardErrorTail: String
}

/// The executable could not be started at all.
public struct ChildProcessError: ActionableError {
    public var executable: String
    public var reason: String
    public var problem: String { "cannot start \(executable): \(reason)" }
    public var remedy: String {
        let name = (executable as NSString).lastPathComponent
        if name == "ffmpeg" || name == "ffprobe" {
            return "install ffmpeg (Debian: sudo apt-get install ffmpeg, "
                + "or `make deps-media`), or give its path with --\(name) PATH"
        }
        return "check that \(executable) is installed and on PATH"
    }
}

/// Runs one child process to completion: the one runner of the Swift side for ffmpeg and ffprobe
/// (probe, prepare, demo media, curate's frames). (The engine, which needs a user-driven SIGINT →
/// SIGTERM → SIGKILL teardown and its stderr in a log file, runs through `Runs.EngineProcess`.)
///
/// Both pipes are drained concurrently, so a child that writes a lot to one of them never blocks
/// on the other. The child gets its own process group: a Ctrl-C on the terminal reaches wanlora
/// only, which then stops children deliberately. When the calling task is cancelled the child
/// gets SIGTERM and, if it is still alive after `gracePeriod`, SIGKILL.
public struct ChildProcess: Sendable {
    public var executable: String
    public var arguments: [String]
    public var outputLimit: Int
    public var errorTailLimit: Int
    public var gracePeriod: Duration

    public init(
        _ executable: String, arguments: [String], outputLimit: Int = 4 << 20, errorTailLimit: Int = 4_096,
        gracePeriod: Duration = .seconds(3)
    ) {
        self.executable = executable
        self.arguments = arguments
        self.outputLimit = outputLimit
        self.errorTailLimit = errorTailLimit
        self.gracePeriod = gracePeriod
    }

    /// Runs the process; `started` is called with its process id as soon as it runs (so that a
    /// journal can record it). Throws `ChildProcessError` when it cannot start, and
    /// `CancellationError` when the task was cancelled (the child is gone by then).
    public func run(started: @escaping @Sendable (Int32) async -> Void = { _ in }) async throws -> ChildProcessResult {
        let target: Executable = executable.contains("/") ? .path(FilePath(executable)) : .name(executable)
        var options = PlatformOptions()
        options.processGroupID = 0
        // The child leads its own group, so the signals reach anything it started too.
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: gracePeriod)]
        let outputLimit = self.outputLimit
        let errorTailLimit = self.errorTailLimit
        let outcome: ExecutionResult<(ByteTail, ByteTail), SequenceOutput, SequenceOutput>
        do {
            outcome = try await Subprocess.run(
                .init(executable: target, arguments: Arguments(arguments), platformOptions: options),
                input: .none, output: .sequence, error: .sequence
            ) { execution in
                await started(execution.processIdentifier.value)
                return try await withThrowingTaskGroup(of: (Bool, ByteTail).self) { group in
                    group.addTask {
                        var tail = ByteTail(limit: outputLimit)
                        for try await buffer in execution.standardOutput { buffer.withUnsafeBytes { tail.append($0) } }
                        return (true, tail)
                    }
                    group.addTask {
                        var tail = ByteTail(limit: errorTailLimit)
                        for try await buffer in execution.standardError { buffer.withUnsafeBytes { tail.append($0) } }
                        return (false, tail)
                    }
                    var output = ByteTail(limit: outputLimit)
                    var error = ByteTail(limit: errorTailLimit)
                    for try await (isOutput, tail) in group {
                        if isOutput { output = tail } else { error = tail }
                    }
                    return (output, error)
                }
            }
        } catch let error as SubprocessError {
            if Task.isCancelled { throw CancellationError() }
            throw ChildProcessError(executable: executable, reason: Self.describe(error))
        } catch is CancellationError {
            throw CancellationError()
        }
        if Task.isCancelled { throw CancellationError() }
        let exit: ProcessExit
        switch outcome.terminationStatus {
        case .exited(let code): exit = .exited(code)
        case .signaled(let signal): exit = .signalled(signal)
        }
        let (output, error) = outcome.closureResult
        return ChildProcessResult(
            exit: exit, standardOutput: output.bytes, standardOutputTruncated: output.droppedTotal > 0,
            standardErrorTail: String(decoding: error.bytes, as: UTF8.self))
    }

    static func describe(_ error: SubprocessError) -> String {
        let text = String(describing: error)
        if text.contains("executableNotFound") || text.contains("not found") || text.contains("No such file") {
            return "the executable was not found"
        }
        return text
    }
}

/// Keeps the last `limit` bytes of a stream; counts what it dropped.
struct ByteTail: Sendable {
    let limit: Int
    private(set) var storage: [UInt8] = []
    private(set) var dropped = 0

    init(limit: Int) { self.limit = max(0, limit) }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        storage.append(contentsOf: bytes)
        if storage.count > limit * 2 { trim() }
    }

    private mutating func trim() {
        let excess = storage.count - limit
        if excess > 0 {
            storage.removeFirst(excess)
            dropped += excess
        }
    }

    /// The tail, at most `limit` bytes.
    var bytes: [UInt8] {
        storage.count > limit ? Array(storage.suffix(limit)) : storage
    }

    var droppedTotal: Int { dropped + max(0, storage.count - limit) }
}
