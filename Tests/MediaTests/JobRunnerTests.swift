import Foundation
import Testing

@testable import Media

/// Writes a small file instead of running ffmpeg, and counts calls.
struct FakeEncoder: ClipEncoder {
    let counter = Counter()
    var failing: Set<String> = []
    var delay: Duration = .milliseconds(5)

    func encode(_ job: EncodeJob, to temporaryPath: String, started: @escaping @Sendable (Int32) async -> Void)
        async throws -> EncodeResult
    {
        counter.started(job.output)
        defer { counter.finished() }
        await started(Int32(getpid()))
        _ = FileManager.default.createFile(atPath: temporaryPath, contents: Data("partial".utf8))
        try await Task.sleep(for: delay)
        if failing.contains(job.output) {
            return .failure(
                reason: "ffmpeg failed (exit status 1): Invalid data",
                standardErrorTail: "line 1\nInvalid data found when processing input")
        }
        try Data((job.output + " " + job.command.spec).utf8).write(to: URL(fileURLWithPath: temporaryPath))
        return .success(frames: job.command.expectedFrames)
    }
}

@Suite struct JobRunnerTests {
    static func jobs(_ count: Int, frames: Int = 17) -> [EncodeJob] {
        let video = VideoStreamInfo(codec: "h264", width: 320, height: 240)
        return (0..<count).map { index in
            EncodeJob(
                output: "train/\(index % 3)/clip\(index).mp4", source: "/data/v\(index).mp4",
                command: FFmpegCommandBuilder.command(
                    source: "/data/v\(index).mp4", video: video, isImage: false,
                    clip: ClipPlan(index: 0, start: 0, frames: frames),
                    size: .init(width: 64, height: 48), settings: EncodeSettings()))
        }
    }

    @Test func secondRunReusesEverything() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        let journal = try PrepareJournal(path: folder.file("journal.sqlite"))
        let encoder = FakeEncoder()
        let runner = JobRunner(outputDirectory: folder.path, journal: journal, encoder: encoder, width: 2)
        let jobs = Self.jobs(6)
        let first = try await runner.run(jobs)
        #expect(first.encoded == 6)
        #expect(first.reused == 0)
        #expect(!first.interrupted)
        #expect(encoder.counter.maximumRunning <= 2)
        let second = try await runner.run(jobs)
        #expect(second.reused == 6)
        #expect(second.encoded == 0)
        #expect(encoder.counter.all.count == 6)
        // Only final files: no temporary ".part" left behind.
        #expect(folder.files().filter { $0.hasSuffix(".part") }.isEmpty)
        #expect(folder.files().filter { $0.hasSuffix(".mp4") }.count == 6)
        let record = try #require(try journal.job("train/0/clip0.mp4"))
        #expect(record.state == .done)
        #expect(record.attempts == 1)
        #expect(record.frames == 17)
    }

    @Test func changedSettingsOrMissingFilesAreRedone() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        let journal = try PrepareJournal(path: folder.file("journal.sqlite"))
        let encoder = FakeEncoder()
        let runner = JobRunner(outputDirectory: folder.path, journal: journal, encoder: encoder, width: 2)
        var jobs = Self.jobs(4)
        _ = try await runner.run(jobs)
        jobs[1] = Self.jobs(4, frames: 33)[1]
        try FileManager.default.removeItem(atPath: folder.file(jobs[2].output))
        // A file that changed size since it was written is redone too.
        try Data("truncated".utf8).write(to: URL(fileURLWithPath: folder.file(jobs[3].output)))
        let report = try await runner.run(jobs)
        #expect(report.reused == 1)
        #expect(report.encoded == 3)
        #expect(encoder.counter.all.suffix(3).sorted() == [jobs[1].output, jobs[2].output, jobs[3].output].sorted())
        #expect(try journal.job(jobs[1].output)?.attempts == 2)
    }

    @Test func killedRunIsRepaired() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        let journal = try PrepareJournal(path: folder.file("journal.sqlite"))
        let jobs = Self.jobs(3)
        try FileManager.default.createDirectory(atPath: folder.file("train/0"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder.file("train/1"), withIntermediateDirectories: true)
        // Job 0 was mid-encode when the process was killed: a half-written temporary file.
        let half = folder.file("train/0/.clip0.mp4.dead0000.part")
        try Data("half".utf8).write(to: URL(fileURLWithPath: half))
        try journal.markRunning(
            output: jobs[0].output, source: jobs[0].source, spec: jobs[0].command.spec, temporaryPath: half)
        // Job 1 was encoded and checked, but the process died before the rename.
        let complete = folder.file("train/1/.clip1.mp4.dead0000.part")
        try Data("complete clip".utf8).write(to: URL(fileURLWithPath: complete))
        try journal.markRunning(
            output: jobs[1].output, source: jobs[1].source, spec: jobs[1].command.spec, temporaryPath: complete)
        try journal.markEncoded(output: jobs[1].output, bytes: 13, frames: 17)

        let encoder = FakeEncoder()
        let report = try await JobRunner(outputDirectory: folder.path, journal: journal, encoder: encoder, width: 2)
            .run(jobs)
        #expect(report.recoveredFromCrash == 1)
        #expect(report.reused == 1)
        #expect(report.encoded == 2)
        #expect(encoder.counter.all.sorted() == [jobs[0].output, jobs[2].output])
        #expect(try String(contentsOfFile: folder.file(jobs[1].output), encoding: .utf8) == "complete clip")
        #expect(!FileManager.default.fileExists(atPath: half))
        #expect(try journal.job(jobs[0].output)?.attempts == 2)
        #expect(folder.files().filter { $0.hasSuffix(".part") }.isEmpty)
    }

    @Test func failuresAreKeptAndNotRetriedUnlessAsked() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        let journal = try PrepareJournal(path: folder.file("journal.sqlite"))
        let jobs = Self.jobs(3)
        var encoder = FakeEncoder()
        encoder.failing = [jobs[1].output]
        let first = try await JobRunner(outputDirectory: folder.path, journal: journal, encoder: encoder, width: 2).run(
            jobs)
        #expect(first.encoded == 2)
        #expect(first.failed == 1)
        guard case .failed(let reason, let tail)? = first.outcomes[jobs[1].output] else {
            Issue.record("expected a failure")
            return
        }
        #expect(reason.contains("exit status 1"))
        #expect(tail.contains("Invalid data"))
        #expect(!FileManager.default.fileExists(atPath: folder.file(jobs[1].output)))
        #expect(try journal.job(jobs[1].output)?.state == .failed)

        let second = try await JobRunner(outputDirectory: folder.path, journal: journal, encoder: encoder, width: 2)
            .run(jobs)
        #expect(second.outcomes[jobs[1].output] == .failedEarlier(reason: reason, standardErrorTail: tail))
        #expect(encoder.counter.all.count == 3)
        let retried = try await JobRunner(
            outputDirectory: folder.path, journal: journal, encoder: FakeEncoder(), width: 2, retryFailed: true
        ).run(jobs)
        #expect(retried.encoded == 1)
        #expect(retried.reused == 2)
    }

    @Test func cancellationStopsCleanly() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        let journal = try PrepareJournal(path: folder.file("journal.sqlite"))
        var encoder = FakeEncoder()
        encoder.delay = .seconds(600)
        let jobs = Self.jobs(5)
        let runner = JobRunner(outputDirectory: folder.path, journal: journal, encoder: encoder, width: 2)
        let task = Task { try await runner.run(jobs) }
        while encoder.counter.all.count < 2 { try await Task.sleep(for: .milliseconds(10)) }
        let stopped = ContinuousClock.now
        task.cancel()
        let report = try await task.value
        // Not the 600 s the fake encodes take (loose: on 2 cores blocking end-to-end tests can hold
        // the cooperative pool for a minute).
        #expect(ContinuousClock.now - stopped < .seconds(300))
        #expect(report.interrupted)
        #expect(report.encoded == 0)
        #expect(encoder.counter.all.count == 2)
        // No half-written file stays; the journal still says running, so the next run redoes them.
        #expect(folder.files().filter { $0.hasSuffix(".part") || $0.hasSuffix(".mp4") }.isEmpty)
        let states = try journal.allJobs().values.map(\.state)
        #expect(states == [.running, .running])
        let resumed = try await JobRunner(
            outputDirectory: folder.path, journal: journal, encoder: FakeEncoder(), width: 2
        ).run(jobs)
        #expect(resumed.encoded == 5)
        #expect(resumed.recoveredFromCrash == 2)
    }

    @Test func probeCacheFollowsSizeAndTime() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        let journal = try PrepareJournal(path: folder.file("journal.sqlite"))
        let probe = MediaProbe(
            formatName: "mpegts", duration: 4.004,
            video: VideoStreamInfo(codec: "mpeg2video", width: 1920, height: 1080, fieldOrder: .topFirst), audio: nil)
        try journal.storeProbe(source: "/a.ts", size: 100, modified: 5.5, result: .success(probe))
        try journal.storeProbe(
            source: "/b.mp4", size: 7, modified: 1,
            result: .failure(ProbeFailure(kind: .unreadable, message: "moov atom not found")))
        #expect(try journal.cachedProbe(source: "/a.ts", size: 100, modified: 5.5) == .success(probe))
        #expect(try journal.cachedProbe(source: "/a.ts", size: 101, modified: 5.5) == nil)
        #expect(try journal.cachedProbe(source: "/a.ts", size: 100, modified: 6) == nil)
        #expect(
            try journal.cachedProbe(source: "/b.mp4", size: 7, modified: 1)
                == .failure(ProbeFailure(kind: .unreadable, message: "moov atom not found")))
        // The journal is a plain file that reopens with its contents.
        let reopened = try PrepareJournal(path: folder.file("journal.sqlite"))
        #expect(try reopened.cachedProbe(source: "/a.ts", size: 100, modified: 5.5) == .success(probe))
    }
}

@Suite struct OrphanTests {
    /// A killed run's ffmpeg whose pid never reached the journal is still found (by its command line,
    /// which names the temporary file) and stopped before the next run cleans up.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/self/cmdline")))
    func anOrphanWithoutARecordedPidIsFoundByItsCommandLine() throws {
        let temporary = "/tmp/.orphan-\(UUID().uuidString).mp4.run1.part"
        let orphan = Process()
        orphan.executableURL = URL(fileURLWithPath: "/bin/sh")
        // sh stays itself (a loop, not an exec) and its children live 50 ms: Foundation waits for them too
        orphan.arguments = ["-c", "while :; do sleep 0.05; done", temporary]
        try orphan.run()
        defer { if orphan.isRunning { orphan.terminate() } }
        var found: [Int32] = []
        for _ in 0..<100 where found.isEmpty {
            found = JobRunner.processes(writing: temporary)
            if found.isEmpty { usleep(10_000) }
        }
        // The shell forks `sleep` every 50 ms: between fork and exec a child shows the shell's command line too,
        // so a scan may also find that child; any other process would be a wrong match.
        let others = found.filter { $0 != orphan.processIdentifier && !Self.isChild($0, of: orphan.processIdentifier) }
        #expect(found.contains(orphan.processIdentifier))
        #expect(others.isEmpty)
        #expect(JobRunner.processes(writing: temporary + "x").isEmpty)
        JobRunner.killOrphan(pid: orphan.processIdentifier, writing: temporary)
        orphan.waitUntilExit()
        #expect(orphan.terminationReason == .uncaughtSignal && orphan.terminationStatus == SIGKILL)
    }

    /// Whether `pid`'s parent is `parent` (field 4 of /proc/PID/stat); a process already gone counts as the
    /// shell's short-lived child.
    static func isChild(_ pid: Int32, of parent: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 && Int32(fields[1]) == parent
    }
}
