import Config
import Foundation
import Testing

@testable import Runs

/// Run folders written from the sample events: each state `wanlora runs` can show.
@Suite struct RunStatusTests {
    static func sample() throws -> [String] { try EventTests.sampleLines() }

    /// A run folder under `runs` with these event lines (train events unless `cache`).
    func makeRun(_ runs: String, _ name: String, train: [String] = [], cache: [String] = [], checkpoints: [Int] = [])
        throws -> RunFolder
    {
        let folder = RunFolder(path: runs + "/" + name)
        try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: folder.configPath))
        if !cache.isEmpty {
            try Data((cache.joined(separator: "\n") + "\n").utf8).write(
                to: URL(fileURLWithPath: folder.eventsPath(.cache)))
        }
        if !train.isEmpty {
            try Data((train.joined(separator: "\n") + "\n").utf8).write(
                to: URL(fileURLWithPath: folder.eventsPath(.train)))
        }
        for step in checkpoints {
            try FileManager.default.createDirectory(
                atPath: folder.checkpointsPath + String(format: "/step-%08d", step), withIntermediateDirectories: true)
        }
        return folder
    }

    @Test func everyState() throws {
        let runs = try scratchFolder("runs")
        defer { try? FileManager.default.removeItem(atPath: runs) }
        let s = try Self.sample()
        let trainStart = s[5]
        let plan = s[7]
        let step = s[8]
        let eval = s[9]
        let checkpoint = s[10]
        _ = try makeRun(
            runs, "a-completed", train: [trainStart, plan, step, eval, checkpoint, s[11]], cache: Array(s[0...4]),
            checkpoints: [2])
        _ = try makeRun(runs, "b-diverged", train: [trainStart, plan, step, s[12], s[13]])
        _ = try makeRun(runs, "c-interrupted", train: [trainStart, plan, step, s[14]], checkpoints: [37])
        // Killed: events end without run_finished; a torn last line is skipped.
        _ = try makeRun(runs, "d-crashed", train: [trainStart, plan, step, String(step.prefix(40))])
        let running = try makeRun(runs, "e-running", train: [trainStart, plan, step])
        _ = try makeRun(runs, "f-new")
        _ = try makeRun(runs, "g-cached", cache: Array(s[0...4]))
        // Resumed after an interruption, then completed: the last start decides.
        _ = try makeRun(runs, "h-resumed", train: [trainStart, plan, step, s[14], trainStart, step, s[11]])
        // Failed at the start of a resume: the earlier completion does not count.
        _ = try makeRun(
            runs, "i-failed",
            train: [
                trainStart, step, s[11], trainStart,
                #"{"event": "run_finished", "schema_version": 1, "time": "2026-11-25T19:00:00.000Z", "elapsed_s": "#
                    + #"1, "stage": "train", "status": "failed", "step": "#
                    + #"null, "seconds": 1, "outputs": {}, "summary": {}}"#,
            ])
        try FileManager.default.createDirectory(atPath: runs + "/not-a-run", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: runs + "/.hidden", withIntermediateDirectories: true)

        let lock = try RunLock.acquire(running, stage: .train)
        let list = try RunStatus.list(runsDir: runs)
        lock.release()
        #expect(
            list.map(\.name) == [
                "a-completed", "b-diverged", "c-interrupted", "d-crashed", "e-running", "f-new", "g-cached",
                "h-resumed", "i-failed",
            ])
        #expect(
            list.map(\.state) == [
                .completed, .diverged, .interrupted, .crashed, .running, .new, .completed, .completed, .failed,
            ])
        let completed = list[0]
        #expect(
            completed.stage == .train && completed.step == 2 && completed.totalSteps == 2 && completed.checkpoints == 1)
        #expect(completed.lastLoss == 1.5840156078338623 && completed.lastValLoss == 1.5289680163065593)
        #expect(completed.updated == "2026-11-25T18:06:28.011Z")
        #expect(list[2].step == 37 && list[2].totalSteps == 2 && list[2].checkpoints == 1)
        #expect(list[6].stage == .cache && list[6].cachedItems == 5)
        // The lock is gone with its holder.
        #expect(RunStatus.read(running)?.state == .crashed)

        let table = RunStatus.table(list)
        let lines = table.split(separator: "\n")
        #expect(lines[0].hasPrefix("run            stage  state        steps"))
        #expect(
            lines[1]
                == "a-completed    train  completed    2/2      1.5840     1.5290    1            2026-11-25 18:06:28")
        #expect(lines[7].hasPrefix("g-cached       cache  completed    5 items"))
        guard case .array(let objects) = RunStatus.json(list) else {
            Issue.record("json")
            return
        }
        #expect(
            objects.count == 9 && objects[1]["state"] == .string("diverged")
                && objects[0]["last_loss"] == .double(1.5840156078338623))
    }

    @Test func missingRunsFolder() throws {
        let error = try #require(throws: RunError.self) { try RunStatus.list(runsDir: "/nonexistent/runs") }
        #expect(error.remedy.contains("--runs-dir"))
    }

    @Test func lockRefusesASecondHolder() throws {
        let runs = try scratchFolder("lock")
        defer { try? FileManager.default.removeItem(atPath: runs) }
        let folder = RunFolder(path: runs)
        let first = try RunLock.acquire(folder, stage: .train)
        #expect(RunLock.isHeld(folder))
        let error = try #require(throws: RunError.self) { try RunLock.acquire(folder, stage: .cache) }
        #expect(error.problem.contains("pid \(getpid()), start \(LockOwner.startTime(of: getpid())!), train"))
        first.release()
        #expect(!RunLock.isHeld(folder))
        let again = try RunLock.acquire(folder, stage: .cache)
        again.release()
    }

    @Test func aPreemptedRunIsShownAsPreempted() throws {
        let runs = try scratchFolder("preempted")
        defer { try? FileManager.default.removeItem(atPath: runs) }
        let s = try Self.sample()
        let stopped = """
            {"event": "stopped", "schema_version": 1, "time": \
            "2026-11-25T18:12:30.400Z", "elapsed_s": 12.6, "reason": "preempted", \
            "signal": "SIGUSR1", "step": 37, "saved": true, "checkpoint": \
            "/r/checkpoints/step-00000037", "seconds_since_signal": 3.5, \
            "grace_seconds": 120}
            """
        _ = try makeRun(runs, "p", train: [s[5], s[7], s[8], stopped, s[14]], checkpoints: [37])
        let ctrlC = stopped.replacingOccurrences(of: "preempted", with: "interrupted").replacingOccurrences(
            of: "SIGUSR1", with: "SIGINT")
        _ = try makeRun(runs, "q", train: [s[5], s[7], s[8], ctrlC, s[14]], checkpoints: [37])
        let list = try RunStatus.list(runsDir: runs)
        #expect(list.map(\.state) == [.preempted, .interrupted])
        guard case .stopped(let event) = try EngineEvent(line: stopped).body else {
            Issue.record("not decoded")
            return
        }
        #expect(
            event
                == EngineEvent.Stopped(
                    reason: "preempted", signal: "SIGUSR1", step: 37, saved: true,
                    checkpoint: "/r/checkpoints/step-00000037"))
        #expect(
            EventText.line(try EngineEvent(line: stopped)) == "preempted by SIGUSR1 after step 37: checkpoint written; "
                + "continue from /r/checkpoints/step-00000037")
    }
}

/// The run lock's owner record: pid and start time, so that an ended owner or a reused pid is known.
@Suite struct RunLockTests {
    /// The pid of a process that has ended (started and reaped here).
    func endedPid() throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        return process.processIdentifier
    }

    @Test func ownerRecordRoundTripsAndKnowsWhetherItsProcessRuns() throws {
        let me = LockOwner.current(stage: .train)
        #expect(me.pid == getpid() && me.startTime != nil)
        #expect(LockOwner.parse(me.text) == me)
        #expect(me.liveness() == .alive)
        var reused = me
        reused.startTime = me.startTime! + 1
        #expect(reused.liveness() == .pidReused)
        let ended = LockOwner(pid: try endedPid(), startTime: 5, stage: "train", since: "2026-12-07T00:00:00Z")
        #expect(ended.liveness() == .ended)
        #expect(LockOwner.parse("pid 12, train, since 2026") == nil)  // the record of an older wanlora
    }

    @Test func startTimeIsField22CountedAfterTheCommandName() throws {
        let root = try scratchFolder("proc")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/77", withIntermediateDirectories: true)
        // a command name with spaces and a parenthesis; fields 3 to 22 follow it
        let fields = (3...22).map { $0 == 22 ? "987654" : "\($0)" }.joined(separator: " ")
        try Data("77 (a b) c) \(fields) 23 24\n".utf8).write(to: URL(fileURLWithPath: root + "/77/stat"))
        #expect(LockOwner.startTime(of: 77, procRoot: root) == 987654)
        #expect(LockOwner.startTime(of: 78, procRoot: root) == nil)
    }

    @Test func anEndedOwnersLockIsTakenOverWithAWarning() throws {
        let runs = try scratchFolder("stale")
        defer { try? FileManager.default.removeItem(atPath: runs) }
        let folder = RunFolder(path: runs)
        let dead = try endedPid()
        try Data("pid \(dead), start 4242, train, since 2026-12-07T01:00:00Z\n".utf8).write(
            to: URL(fileURLWithPath: folder.lockPath))
        let lock = try RunLock.acquire(folder, stage: .train)
        #expect(
            lock.takenOver
                == "took over the lock of \(runs) from wanlora pid \(dead) (train since 2026-12-07T01:00:00Z): "
                + "it no longer runs, it ended without releasing the lock (killed?).")
        let record = String(decoding: FileManager.default.contents(atPath: folder.lockPath)!, as: UTF8.self)
        #expect(LockOwner.parse(record)?.pid == getpid())
        lock.release()
        // a clean release clears the record: the next start takes the lock without a warning
        #expect(FileManager.default.contents(atPath: folder.lockPath)?.isEmpty == true)
        let again = try RunLock.acquire(folder, stage: .train)
        #expect(again.takenOver == nil)
        again.release()
        // this process's pid with another start time: the pid was reused, the owner is gone
        let me = LockOwner.current(stage: .train)
        try Data("pid \(me.pid), start \(me.startTime! + 1), cache, since x\n".utf8).write(
            to: URL(fileURLWithPath: folder.lockPath))
        let reused = try RunLock.acquire(folder, stage: .train)
        #expect(reused.takenOver?.contains("its pid now belongs to another process") == true)
        reused.release()
    }

    @Test func aLockStillHeldByWhatAnEndedOwnerStartedIsRefusedNamingTheWayOut() throws {
        let runs = try scratchFolder("orphan")
        defer { try? FileManager.default.removeItem(atPath: runs) }
        let folder = RunFolder(path: runs)
        let held = try RunLock.acquire(folder, stage: .train)  // stands for an engine that outlived its wanlora
        let dead = try endedPid()
        try Data("pid \(dead), start 4242, train, since t\n".utf8).write(to: URL(fileURLWithPath: folder.lockPath))
        let error = try #require(throws: RunError.self) { try RunLock.acquire(folder, stage: .train) }
        #expect(
            error.problem.contains("wanlora pid \(dead) started")
                && error.remedy.contains("fuser -v \(folder.lockPath)"))
        held.release()
    }
}
