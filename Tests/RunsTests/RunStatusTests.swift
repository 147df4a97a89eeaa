import Config
import Foundation
import Testing
@testable import Runs

/// Run folders written from the sample events: each state `wanlora runs` can show.
@Suite struct RunStatusTests {
    static func sample() throws -> [String] { try EventTests.sampleLines() }

    /// A run folder under `runs` with these event lines (train events unless `cache`).
    func makeRun(_ runs: String, _ name: String, train: [String] = [], cache: [String] = [], checkpoints: [Int] = []) throws -> RunFolder {
        let folder = RunFolder(path: runs + "/" + name)
        try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: folder.configPath))
        if !cache.isEmpty { try Data((cache.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: folder.eventsPath(.cache))) }
        if !train.isEmpty { try Data((train.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: folder.eventsPath(.train))) }
        for step in checkpoints {
            try FileManager.default.createDirectory(atPath: folder.checkpointsPath + String(format: "/step-%08d", step), withIntermediateDirectories: true)
        }
        return folder
    }

    @Test func everyState() throws {
        let runs = try scratchFolder("runs")
        defer { try? FileManager.default.removeItem(atPath: runs) }
        let s = try Self.sample()
        let trainStart = s[5], plan = s[7], step = s[8], eval = s[9], checkpoint = s[10]
        _ = try makeRun(runs, "a-completed", train: [trainStart, plan, step, eval, checkpoint, s[11]], cache: Array(s[0...4]), checkpoints: [2])
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
        _ = try makeRun(runs, "i-failed", train: [trainStart, step, s[11], trainStart,
            #"{"event": "run_finished", "schema_version": 1, "time": "2026-11-25T19:00:00.000Z", "elapsed_s": "#
                + #"1, "stage": "train", "status": "failed", "step": "#
                + #"null, "seconds": 1, "outputs": {}, "summary": {}}"#])
        try FileManager.default.createDirectory(atPath: runs + "/not-a-run", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: runs + "/.hidden", withIntermediateDirectories: true)

        let lock = try RunLock.acquire(running, stage: .train)
        let list = try RunStatus.list(runsDir: runs)
        lock.release()
        #expect(list.map(\.name) == ["a-completed", "b-diverged", "c-interrupted", "d-crashed", "e-running", "f-new", "g-cached", "h-resumed", "i-failed"])
        #expect(list.map(\.state) == [.completed, .diverged, .interrupted, .crashed, .running, .new, .completed, .completed, .failed])
        let completed = list[0]
        #expect(completed.stage == .train && completed.step == 2 && completed.totalSteps == 2 && completed.checkpoints == 1)
        #expect(completed.lastLoss == 1.5840156078338623 && completed.lastValLoss == 1.5289680163065593)
        #expect(completed.updated == "2026-11-25T18:06:28.011Z")
        #expect(list[2].step == 37 && list[2].totalSteps == 2 && list[2].checkpoints == 1)
        #expect(list[6].stage == .cache && list[6].cachedItems == 5)
        // The lock is gone with its holder.
        #expect(RunStatus.read(running)?.state == .crashed)

        let table = RunStatus.table(list)
        let lines = table.split(separator: "\n")
        #expect(lines[0].hasPrefix("run            stage  state        steps"))
        #expect(lines[1] == "a-completed    train  completed    2/2      1.5840     1.5290    1            2026-11-25 18:06:28")
        #expect(lines[7].hasPrefix("g-cached       cache  completed    5 items"))
        guard case .array(let objects) = RunStatus.json(list) else { Issue.record("json"); return }
        #expect(objects.count == 9 && objects[1]["state"] == .string("diverged") && objects[0]["last_loss"] == .double(1.5840156078338623))
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
        #expect(error.problem.contains("pid \(getpid()), train"))
        first.release()
        #expect(!RunLock.isHeld(folder))
        let again = try RunLock.acquire(folder, stage: .cache)
        again.release()
    }
}
