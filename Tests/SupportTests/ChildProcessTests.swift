import Foundation
import Support
import Testing

/// The process ids a child process reported when it started.
final class StartedProcesses: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [String] = []

    func started(_ id: String) {
        lock.lock()
        ids.append(id)
        lock.unlock()
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return ids
    }
}

@Suite struct ChildProcessTests {
    @Test func drainsBothPipesAndKeepsTheTails() async throws {
        // 1 MB on each pipe: far more than a pipe buffer (64 KiB), so reading one after the other would hang.
        let script =
            "head -c 1000000 /dev/zero | tr '\\0' a; head -c 1000000 /dev/zero | tr '\\0' b >&2; printf END >&2; exit 3"
        let result = try await ChildProcess("/bin/sh", arguments: ["-c", script], outputLimit: 100, errorTailLimit: 10)
            .run()
        #expect(result.exit == .exited(3))
        #expect(!result.exit.succeeded)
        #expect(result.standardOutput == Array(repeating: UInt8(ascii: "a"), count: 100))
        #expect(result.standardOutputTruncated)
        #expect(result.standardErrorTail == "bbbbbbbEND")
    }

    @Test func shortOutputIsWhole() async throws {
        let result = try await ChildProcess("/bin/sh", arguments: ["-c", "printf 'frame=81\\nprogress=end\\n'"]).run()
        #expect(result.exit == .exited(0))
        #expect(String(decoding: result.standardOutput, as: UTF8.self) == "frame=81\nprogress=end\n")
        #expect(!result.standardOutputTruncated)
        #expect(result.standardErrorTail.isEmpty)
    }

    @Test func reportsSignalsAndProcessIDs() async throws {
        let seen = StartedProcesses()
        let result = try await ChildProcess("/bin/sh", arguments: ["-c", "kill -9 $$"]).run { pid in
            seen.started(String(pid))
        }
        #expect(result.exit == .signalled(9))
        #expect(seen.all.count == 1)
        #expect((Int32(seen.all[0]) ?? 0) > 0)
    }

    @Test func cancellationTerminatesTheChild() async throws {
        let pids = StartedProcesses()
        let task = Task {
            try await ChildProcess("/bin/sleep", arguments: ["600"], gracePeriod: .seconds(1)).run { pid in
                pids.started(String(pid))
            }
        }
        while pids.all.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        let start = ContinuousClock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        // SIGTERM ends sleep at once: well before the 600 s it would sleep. (The bound is loose
        // because on 2 cores the cooperative pool can be held for a minute by blocking
        // end-to-end tests running at the same time.)
        #expect(ContinuousClock.now - start < .seconds(300))
        let pid = Int32(pids.all[0])!
        #expect(kill(pid, 0) != 0)
    }

    @Test func stubbornChildrenGetSIGKILL() async throws {
        let pids = StartedProcesses()
        let task = Task {
            try await ChildProcess(
                "/bin/sh", arguments: ["-c", "trap '' TERM; sleep 600 & wait"], gracePeriod: .milliseconds(300)
            ).run { pid in
                pids.started(String(pid))
            }
        }
        while pids.all.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        try await Task.sleep(for: .milliseconds(100))
        let start = ContinuousClock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(ContinuousClock.now - start < .seconds(300))  // not the 600 s of the trapped sleep
        #expect(kill(Int32(pids.all[0])!, 0) != 0)
        // The SIGKILL went to the child's process group: its own `sleep` is gone as well.
        try await Task.sleep(for: .milliseconds(100))
        #expect(livingMembers(ofGroup: Int32(pids.all[0])!).isEmpty)
    }

    /// Processes of a process group that are not zombies (a container's init may reap late).
    func livingMembers(ofGroup group: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { name -> Int32? in
            guard let pid = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 3, fields[0] != "Z", Int32(fields[2]) == group else { return nil }
            return pid
        }
    }

    @Test func missingExecutableIsActionable() async {
        do {
            _ = try await ChildProcess("/nonexistent/ffmpeg", arguments: []).run()
            Issue.record("expected an error")
        } catch let error as ChildProcessError {
            #expect(error.problem.contains("/nonexistent/ffmpeg"))
            #expect(error.remedy.contains("apt-get install ffmpeg"))
            #expect(error.remedy.contains("--ffmpeg"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
