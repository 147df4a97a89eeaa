import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One running engine process (or torchrun and its workers): started with posix_spawn in a
/// process group of its own, stdout read line by line, stderr appended to a log file while its
/// last lines are kept for error messages, both drained concurrently so neither pipe can fill
/// and block the engine.
///
/// Its own process group means a Ctrl-C on the terminal reaches only wanlora, which forwards it
/// deliberately (`requestStop`): SIGINT first (the engine finishes the step, writes a checkpoint
/// and exits 130), SIGTERM when that takes longer than the grace period or on a second request
/// (the engine stops at once; the previous checkpoint stays valid), SIGKILL to the whole group
/// last. The child starts with default signal dispositions and the caller's environment as it is.
public final class EngineProcess: @unchecked Sendable {
    /// How the process ended.
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32)
    }

    /// What `requestStop` did.
    public enum StopAction: Sendable, Equatable {
        /// SIGINT to the engine: finish the step, checkpoint, exit.
        case interrupt
        /// SIGTERM: stop at once.
        case terminate
        /// SIGKILL to the engine and everything it started.
        case kill
        /// Nothing runs (not started yet or already ended).
        case none
    }

    /// Seconds to wait after SIGINT before SIGTERM, and after SIGTERM before SIGKILL.
    public struct Grace: Sendable {
        /// Asked when SIGINT is sent (the contract: at least 2 × the last seconds per step + 60 s).
        public var afterInterrupt: @Sendable () -> Double
        public var afterTerminate: Double
        public init(afterInterrupt: @escaping @Sendable () -> Double, afterTerminate: Double) {
            self.afterInterrupt = afterInterrupt
            self.afterTerminate = afterTerminate
        }
    }

    public let launch: EngineLaunch
    public let logPath: String
    public var grace: Grace
    /// Lines of stderr kept for the error message.
    public let tailLines: Int

    private let lock = NSLock()
    private var pid: pid_t = 0
    private var level = 0
    private var ended = false
    private var tail: [String] = []
    /// Called (from a timer) when the grace period runs out and the process is signalled again.
    private var onEscalation: (@Sendable (StopAction) -> Void)?

    public init(launch: EngineLaunch, logPath: String, grace: Grace, tailLines: Int = 30) {
        self.launch = launch
        self.logPath = logPath
        self.grace = grace
        self.tailLines = tailLines
    }

    /// The process id while it runs (0 before start).
    public var processID: Int32 {
        lock.lock()
        defer { lock.unlock() }
        return pid
    }

    /// The last lines the engine wrote on stderr.
    public var logTail: [String] {
        lock.lock()
        defer { lock.unlock() }
        return tail
    }

    /// Starts the engine and blocks until it has ended and both pipes are drained. `onLine`
    /// receives each stdout line (without the newline) in order, on a reader thread.
    /// `onStderrLine` sees each stderr line too (for `--verbose`). `onEscalation` is told when a
    /// grace period ran out and a stronger signal was sent.
    public func run(
        onLine: @escaping @Sendable (String) -> Void,
        onStderrLine: (@Sendable (String) -> Void)? = nil,
        onEscalation: (@Sendable (StopAction) -> Void)? = nil
    ) throws -> Termination {
        lock.lock()
        self.onEscalation = onEscalation
        lock.unlock()
        // 0666 less the umask, as Foundation creates files.
        let logFD = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o666)
        guard logFD >= 0 else {
            throw RunError(
                problem: "Cannot open the engine log \(logPath): \(String(cString: strerror(errno))).",
                remedy: "Check that the run folder is writable.")
        }
        defer { close(logFD) }

        var stdoutPipe: [Int32] = [-1, -1]
        var stderrPipe: [Int32] = [-1, -1]
        guard Self.makePipe(&stdoutPipe), Self.makePipe(&stderrPipe) else {
            throw RunError(
                problem: "Cannot create pipes for the engine: \(String(cString: strerror(errno))).",
                remedy: "Too many open files? Raise `ulimit -n` and try again.")
        }
        let child: pid_t
        do {
            child = try spawn(stdoutWrite: stdoutPipe[1], stderrWrite: stderrPipe[1])
        } catch {
            for fd in stdoutPipe + stderrPipe { close(fd) }
            throw error
        }
        close(stdoutPipe[1])
        close(stderrPipe[1])
        lock.lock()
        pid = child
        let stopBeforeStart = level
        lock.unlock()
        if stopBeforeStart > 0 { kill(child, SIGINT) }

        let readers = DispatchGroup()
        let stdoutFD = stdoutPipe[0]
        let stderrFD = stderrPipe[0]
        readers.enter()
        Thread.detachNewThread {
            Self.readLines(stdoutFD, copyTo: nil, onLine: onLine)
            close(stdoutFD)
            readers.leave()
        }
        readers.enter()
        let keep = tailLines
        Thread.detachNewThread { [self] in
            Self.readLines(stderrFD, copyTo: logFD) { line in
                self.lock.lock()
                self.tail.append(line)
                if self.tail.count > keep { self.tail.removeFirst(self.tail.count - keep) }
                self.lock.unlock()
                onStderrLine?(line)
            }
            close(stderrFD)
            readers.leave()
        }

        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        lock.lock()
        ended = true
        lock.unlock()
        // Workers or helpers that outlive the engine keep the pipes open: give them a moment,
        // then end the whole group so that the pipes reach end-of-file.
        if readers.wait(timeout: .now() + 10) == .timedOut {
            kill(-child, SIGKILL)
            readers.wait()
        }
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }

    /// One step of the teardown: SIGINT, then SIGTERM, then SIGKILL to the group. Each step
    /// also arms a timer for the next one (the grace periods), so a single request still ends a
    /// process that does not react.
    @discardableResult
    public func requestStop() -> StopAction {
        lock.lock()
        defer { lock.unlock() }
        guard !ended else { return .none }
        level += 1
        guard pid > 0 else { return level == 1 ? .interrupt : .none }
        return signalLocked(level)
    }

    /// Sends the signal of `level` (lock held) and arms the timer for the next level.
    private func signalLocked(_ target: Int) -> StopAction {
        let action: StopAction
        let wait: Double?
        switch target {
        case 1:
            kill(pid, SIGINT)
            action = .interrupt
            wait = grace.afterInterrupt()
        case 2:
            kill(pid, SIGTERM)
            action = .terminate
            wait = grace.afterTerminate
        default:
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
            action = .kill
            wait = nil
        }
        if let wait {
            DispatchQueue.global().asyncAfter(deadline: .now() + wait) { [weak self] in
                self?.escalate(ifStillAt: target)
            }
        }
        return action
    }

    private func escalate(ifStillAt expected: Int) {
        lock.lock()
        guard !ended, level == expected else {
            lock.unlock()
            return
        }
        level += 1
        let action = signalLocked(level)
        let callback = onEscalation
        lock.unlock()
        callback?(action)
    }

    private func spawn(stdoutWrite: Int32, stderrWrite: Int32) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutWrite, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrWrite, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group (Ctrl-C reaches only wanlora), default dispositions for the
        // signals wanlora handles or ignores (an ignored SIGINT would otherwise be inherited and
        // Python would install no KeyboardInterrupt handler), and no blocked signals.
        var defaults = sigset_t()
        var empty = sigset_t()
        sigemptyset(&defaults)
        sigemptyset(&empty)
        for number in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let words = [launch.executable] + launch.arguments
        let cStrings = words.map { strdup($0) }
        defer { for string in cStrings { free(string) } }
        var argv = cStrings + [nil]
        var child: pid_t = 0
        // The caller's environment, unchanged: torchrun passes it on to every rank.
        var result = posix_spawnp(&child, launch.executable, &actions, &attributes, &argv, environ)
        // ETXTBSY: the executable was just written and another thread's fork still holds it open
        // for writing until that child execs (a script written a moment ago); it clears at once.
        var retries = 0
        while result == ETXTBSY && retries < 50 {
            usleep(20_000)
            retries += 1
            result = posix_spawnp(&child, launch.executable, &actions, &attributes, &argv, environ)
        }
        guard result == 0 else {
            throw RunError(
                problem: "Cannot start the engine \(launch.executable): \(String(cString: strerror(result))).",
                remedy: result == ENOENT
                    ? "Check the path (--engine-python or \(EngineInstallation.environmentVariable)); "
                        + "`make -C engine venv` creates engine/.venv."
                    : "Check that \(launch.executable) is an executable file."
            )
        }
        return child
    }

    /// A pipe whose ends close on exec (the child gets only the duplicates on 1 and 2).
    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }

    /// Reads `fd` to its end, splitting at newlines; a last line without newline is delivered too.
    private static func readLines(_ fd: Int32, copyTo copy: Int32?, onLine: (String) -> Void) {
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            if let copy {
                var offset = 0
                while offset < count {
                    let written = buffer.withUnsafeBytes { write(copy, $0.baseAddress! + offset, count - offset) }
                    if written < 0 && errno == EINTR { continue }
                    if written <= 0 { break }
                    offset += written
                }
            }
            var start = 0
            for index in 0..<count where buffer[index] == UInt8(ascii: "\n") {
                pending.append(contentsOf: buffer[start..<index])
                onLine(String(decoding: pending, as: UTF8.self))
                pending.removeAll(keepingCapacity: true)
                start = index + 1
            }
            pending.append(contentsOf: buffer[start..<count])
        }
        if !pending.isEmpty { onLine(String(decoding: pending, as: UTF8.self)) }
    }
}
