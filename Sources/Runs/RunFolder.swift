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
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { try? EngineEvent(line: String($0)) }
    }

    /// Writes `resolved` as `config.resolved.json` (through a temporary file and a rename, so a
    /// reader never sees half a file).
    public func writeConfig(_ resolved: ResolvedConfig) throws {
        let temporary = file(".config.resolved.json.tmp")
        do {
            try Data(resolved.formatted().utf8).write(to: URL(fileURLWithPath: temporary))
            if FileManager.default.fileExists(atPath: configPath) { try FileManager.default.removeItem(atPath: configPath) }
            try FileManager.default.moveItem(atPath: temporary, toPath: configPath)
        } catch {
            throw RunError(problem: "Cannot write \(configPath): \(error.localizedDescription).",
                           remedy: "Check that the run folder is writable and the disk not full.")
        }
    }
}

/// The lock a running stage holds on its run folder (`.wanlora.lock`, flock): a second
/// `wanlora train` on the same run is refused, and `wanlora runs` knows the run is running. The
/// engine inherits the descriptor, so the lock lasts as long as the engine does even if wanlora
/// itself is killed, and disappears with the last process (no stale lock after a crash).
public final class RunLock: @unchecked Sendable {
    private var fd: Int32

    private init(fd: Int32) { self.fd = fd }

    /// Takes the lock of `folder` for `stage`, or explains who holds it.
    public static func acquire(_ folder: RunFolder, stage: EngineLaunch.Stage) throws -> RunLock {
        // Inherited by the engine on purpose (no O_CLOEXEC): see the type's comment.
        let fd = open(folder.lockPath, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else {
            throw RunError(problem: "Cannot create \(folder.lockPath): \(String(cString: strerror(errno))).",
                           remedy: "Check that the run folder is writable.")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = String(decoding: FileManager.default.contents(atPath: folder.lockPath) ?? Data(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw RunError(
                problem: "The run \(folder.path) is in use by another wanlora "
                    + "process (\(holder.isEmpty ? "no details" : holder)).",
                remedy: "Wait for it to finish or stop it (Ctrl-C in its terminal); "
                    + "`wanlora runs` shows its state. Use another run.name for a second run."
            )
        }
        let text = "pid \(getpid()), \(stage.rawValue), since \(ISO8601DateFormatter().string(from: Date()))\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        return RunLock(fd: fd)
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

    public func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
