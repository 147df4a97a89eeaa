import Config
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A run folder (docs/engine-contract.md §4.3, docs/runs.md): what wanlora and the engine
/// write there, and how to read it back.
public struct RunFolder: Sendable, Equatable {
    public let path: String

    public init(path: String) { self.path = path }

    public var name: String { (path as NSString).lastPathComponent }
    public var configPath: String { file("config.resolved.json") }
    public var checkpointsPath: String { file("checkpoints") }
    public var lockPath: String { file(".wanlora.lock") }

    /// Events of a stage: `events.jsonl` (train) or `cache-events.jsonl`.
    public func eventsPath(_ stage: EngineLaunch.Stage) -> String {
        file(stage == .train ? "events.jsonl" : "cache-events.jsonl")
    }

    /// The engine's stderr of a stage, appended run after run: `train.log` or `cache.log`.
    public func logPath(_ stage: EngineLaunch.Stage) -> String { file("\(stage.rawValue).log") }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Complete checkpoints, oldest first: `checkpoints/step-NNNNNNNN` (a checkpoint exists
    /// under its final name only when complete; temporary names are ignored).
    public func checkpoints() -> [(step: Int, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpointsPath)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("step-"), let step = Int(name.dropFirst(5)) else { return nil }
            return (step, (checkpointsPath as NSString).appendingPathComponent(name))
        }.sorted { $0.0 < $1.0 }
    }

    /// The events of a stage's file in order; a torn last line (a killed engine) and lines that
    /// are not events are skipped.
    public func events(_ stage: EngineLaunch.Stage) -> [EngineEvent] {
        guard let data = FileManager.default.contents(atPath: eventsPath(stage)) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? EngineEvent(line: String($0))
        }
    }

    /// Writes `resolved` as `config.resolved.json` (through a temporary file and a rename, so a
    /// reader never sees half a file).
    public func writeConfig(_ resolved: ResolvedConfig) throws {
        let temporary = file(".config.resolved.json.tmp")
        do {
            try Data(resolved.formatted().utf8).write(to: URL(fileURLWithPath: temporary))
            if FileManager.default.fileExists(atPath: configPath) {
                try FileManager.default.removeItem(atPath: configPath)
            }
            try FileManager.default.moveItem(atPath: temporary, toPath: configPath)
        } catch {
            throw RunError(
                problem: "Cannot write \(configPath): \(error.localizedDescription).",
                remedy: "Check that the run folder is writable and the disk not full.")
        }
    }
}

/// The process recorded in a run's lock file: its pid and its start time (field 22 of
/// /proc/PID/stat, clock ticks after boot), so that a pid the kernel gave to another process since
/// is not taken for the owner.
public struct LockOwner: Sendable, Equatable {
    public var pid: Int32
    /// nil where /proc is missing (not Linux): the pid alone is checked.
    public var startTime: UInt64?
    public var stage: String
    public var since: String

    public enum Liveness: Sendable, Equatable {
        case alive
        /// No process has the pid.
        case ended
        /// The pid belongs to a process started at another time.
        case pidReused
    }

    public init(pid: Int32, startTime: UInt64?, stage: String, since: String) {
        self.pid = pid
        self.startTime = startTime
        self.stage = stage
        self.since = since
    }

    /// This process, taking the lock for `stage` now.
    public static func current(stage: EngineLaunch.Stage) -> LockOwner {
        let pid = getpid()
        return LockOwner(
            pid: pid, startTime: startTime(of: pid), stage: stage.rawValue,
            since: ISO8601DateFormatter().string(from: Date()))
    }

    /// The line written into the lock file.
    public var text: String {
        "pid \(pid), start \(startTime.map(String.init) ?? "unknown"), \(stage), since \(since)\n"
    }

    /// Reads a lock file's line; nil for an empty or foreign text.
    public static func parse(_ text: String) -> LockOwner? {
        let fields = text.trimmingCharacters(in: .whitespacesAndNewlines).components(separatedBy: ", ")
        guard fields.count == 4, fields[0].hasPrefix("pid "), let pid = Int32(fields[0].dropFirst(4)),
            fields[1].hasPrefix("start "), fields[3].hasPrefix("since ")
        else { return nil }
        return LockOwner(
            pid: pid, startTime: UInt64(fields[1].dropFirst(6)), stage: fields[2],
            since: String(fields[3].dropFirst(6)))
    }

    /// Whether the recorded process still runs. `procRoot` is /proc (tests point it elsewhere).
    public func liveness(procRoot: String = "/proc") -> Liveness {
        if let recorded = startTime {
            guard let now = Self.startTime(of: pid, procRoot: procRoot) else { return .ended }
            return now == recorded ? .alive : .pidReused
        }
        return kill(pid, 0) == 0 || errno == EPERM ? .alive : .ended
    }

    /// Field 22 (starttime) of /proc/PID/stat; the fields are counted after the command name's
    /// closing parenthesis, since the name itself may hold spaces and parentheses.
    public static func startTime(of pid: Int32, procRoot: String = "/proc") -> UInt64? {
        guard let data = FileManager.default.contents(atPath: "\(procRoot)/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let close = text.range(of: ")", options: .backwards) else { return nil }
        let rest = text[close.upperBound...].split(separator: " ")
        // rest[0] is field 3 (state): field 22 is rest[19].
        return rest.count > 19 ? UInt64(rest[19]) : nil
    }
}

/// The lock a running stage holds on its run folder (`.wanlora.lock`): a second `wanlora train` on
/// the same run is refused, and `wanlora runs` knows the run is running.
///
/// Two records: an flock on the file, which the engine inherits (so the lock lasts as long as the
/// engine does even if wanlora itself is killed) and the kernel drops with the last process, and
/// the owner's pid and start time written into it (cleared on release). An flock that is free while
/// the file still names an owner means that owner ended without releasing (killed, a lost node): its
/// lock is taken over with a warning. Where the file system has no flock (some NFS and Lustre mounts)
/// the record decides: an owner that still runs (same pid and start time) keeps the lock, an ended
/// one (or a pid reused by another process) is taken over with a warning.
public final class RunLock: @unchecked Sendable {
    private var fd: Int32
    /// Set when the lock was taken over from an owner that had ended: the warning to show.
    public let takenOver: String?

    private init(fd: Int32, takenOver: String?) {
        self.fd = fd
        self.takenOver = takenOver
    }

    /// Takes the lock of `folder` for `stage`, or explains who holds it.
    public static func acquire(
        _ folder: RunFolder, stage: EngineLaunch.Stage,
        procRoot: String = "/proc"
    ) throws -> RunLock {
        // Inherited by the engine on purpose (no O_CLOEXEC): see the type's comment.
        let fd = open(folder.lockPath, O_RDWR | O_CREAT, 0o666)  // less the umask
        guard fd >= 0 else {
            throw RunError(
                problem: "Cannot create \(folder.lockPath): \(String(cString: strerror(errno))).",
                remedy: "Check that the run folder is writable.")
        }
        let recorded = String(decoding: FileManager.default.contents(atPath: folder.lockPath) ?? Data(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let owner = LockOwner.parse(recorded)
        let flocked = flock(fd, LOCK_EX | LOCK_NB) == 0
        let flockError = errno
        let noFlock = !flocked && [ENOLCK, EOPNOTSUPP, ENOSYS, EINVAL].contains(flockError)
        var takenOver: String?
        if !flocked && !noFlock {
            close(fd)
            var problem =
                "The run \(folder.path) is in use by another wanlora process ("
                + (recorded.isEmpty ? "no details" : recorded) + ")."
            var remedy =
                "Wait for it to finish or stop it (Ctrl-C in its terminal); `wanlora runs` shows its state. "
                + "Use another run.name for a second run."
            if let owner, owner.liveness(procRoot: procRoot) != .alive {
                problem =
                    "The run \(folder.path) is locked by a process that wanlora pid \(owner.pid) started "
                    + "(its \(owner.stage) since \(owner.since)); "
                    + "that wanlora has ended but the process still holds the lock."
                remedy =
                    "An engine (or torchrun) left running: find it with `fuser -v \(folder.lockPath)` and stop it "
                    + "(kill PID), then start again."
            }
            throw RunError(problem: problem, remedy: remedy)
        }
        let mine = LockOwner.startTime(of: getpid(), procRoot: procRoot)
        if let owner, owner.pid != getpid() || owner.startTime != mine {
            let liveness = owner.liveness(procRoot: procRoot)
            if noFlock && liveness == .alive {
                close(fd)
                throw RunError(
                    problem: "The run \(folder.path) is in use by wanlora pid \(owner.pid) (\(owner.stage) since "
                        + "\(owner.since)); this file system has no flock, so its lock file decides.",
                    remedy: "Wait for it to finish or stop it (Ctrl-C in its terminal). "
                        + "Use another run.name for a second run."
                )
            }
            let how = liveness == .pidReused ? "its pid now belongs to another process" : "it no longer runs"
            takenOver =
                "took over the lock of \(folder.path) from wanlora pid \(owner.pid) (\(owner.stage) since "
                + "\(owner.since)): \(how), it ended without releasing the lock (killed?)."
        }
        let text = LockOwner.current(stage: stage).text
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        return RunLock(fd: fd, takenOver: takenOver)
    }

    /// Whether some process holds the lock of `folder` now.
    public static func isHeld(_ folder: RunFolder) -> Bool {
        let fd = open(folder.lockPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return errno == EWOULDBLOCK
    }

    /// Clears the owner's record and drops the flock.
    public func release() {
        guard fd >= 0 else { return }
        _ = ftruncate(fd, 0)
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
