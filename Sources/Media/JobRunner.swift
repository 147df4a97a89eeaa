import Foundation
import Support

/// One output file to make.
public struct EncodeJob: Sendable, Equatable {
    /// Path of the output relative to the output folder; the job's identity.
    public var output: String
    /// Absolute path of the source.
    public var source: String
    public var command: FFmpegCommand

    public init(output: String, source: String, command: FFmpegCommand) {
        self.output = output
        self.source = source
        self.command = command
    }
}

/// What one encoder call produced.
public enum EncodeResult: Sendable, Equatable {
    case success(frames: Int)
    case failure(reason: String, standardErrorTail: String)
}

/// Makes one output at a temporary path. The real one runs ffmpeg; tests use fakes.
public protocol ClipEncoder: Sendable {
    func encode(_ job: EncodeJob, to temporaryPath: String, started: @escaping @Sendable (Int32) async -> Void)
        async throws -> EncodeResult
}

/// Runs ffmpeg for a job and checks that it wrote exactly the planned number of frames.
public struct FFmpegEncoder: ClipEncoder {
    public var tools: MediaTools

    public init(tools: MediaTools = MediaTools()) {
        self.tools = tools
    }

    public func encode(_ job: EncodeJob, to temporaryPath: String, started: @escaping @Sendable (Int32) async -> Void)
        async throws -> EncodeResult
    {
        let process = ChildProcess(
            tools.ffmpeg, arguments: job.command.arguments(output: temporaryPath), outputLimit: 16_384)
        let result = try await process.run(started: started)
        let tail = result.standardErrorTail.split(whereSeparator: \.isNewline).map {
            Prober.withoutContextPrefix(String($0))
        }
        .joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.exit.succeeded else {
            let firstLine = Prober.lastLines(tail, count: 1)
            return .failure(
                reason: "ffmpeg failed (\(result.exit))" + (firstLine.isEmpty ? "" : ": " + firstLine),
                standardErrorTail: tail)
        }
        let frames = FFmpegCommandBuilder.framesWritten(progressOutput: result.standardOutput) ?? 0
        guard frames == job.command.expectedFrames else {
            return .failure(
                reason: "ffmpeg wrote \(frames) of \(job.command.expectedFrames) frames: "
                    + "the source ends early (truncated, or shorter than its container says)",
                standardErrorTail: tail)
        }
        return .success(frames: frames)
    }
}

/// How one job ended in this run.
public enum JobOutcome: Sendable, Equatable {
    /// Finished in an earlier run, file present and unchanged: not encoded again.
    case reused
    case encoded
    case failed(reason: String, standardErrorTail: String)
    /// Failed in an earlier run with the same settings; not retried (see `retryFailed`).
    case failedEarlier(reason: String, standardErrorTail: String)
}

/// Counts and outcomes of a runner call.
public struct JobRunReport: Sendable {
    public var outcomes: [String: JobOutcome] = [:]
    /// Jobs that were still to do when the run was stopped.
    public var interrupted = false
    /// Jobs killed mid-encode in an earlier run (found `running` in the journal) and redone.
    public var recoveredFromCrash = 0

    public func count(where predicate: (JobOutcome) -> Bool) -> Int { outcomes.values.filter(predicate).count }
    public var reused: Int { count { $0 == .reused } }
    public var encoded: Int { count { $0 == .encoded } }
    public var failed: Int {
        count {
            switch $0 {
            case .failed, .failedEarlier: true
            default: false
            }
        }
    }
}

/// Runs encode jobs N at a time, resumably.
///
/// Every output is written to a temporary name beside its final one (`.NAME.RUN.part`) and renamed
/// once ffmpeg has exited cleanly with the planned frame count; the journal records each step. On
/// the next start: finished outputs with the same settings are reused; jobs left `running` (the
/// process was killed) are redone after any orphaned ffmpeg still writing for them is killed;
/// jobs left `encoded` are renamed. A job whose settings changed is redone. A failed job is kept
/// with ffmpeg's stderr tail and not retried unless asked.
public struct JobRunner: Sendable {
    public var outputDirectory: String
    public var journal: PrepareJournal
    public var encoder: any ClipEncoder
    public var width: Int
    public var retryFailed: Bool

    public init(
        outputDirectory: String, journal: PrepareJournal, encoder: any ClipEncoder, width: Int,
        retryFailed: Bool = false
    ) {
        self.outputDirectory = outputDirectory
        self.journal = journal
        self.encoder = encoder
        self.width = width
        self.retryFailed = retryFailed
    }

    public func run(_ jobs: [EncodeJob], progress: ProgressReporter = .silent) async throws -> JobRunReport {
        var report = JobRunReport()
        var records = try journal.allJobs()
        report.recoveredFromCrash = try await recover(&records)

        var todo: [EncodeJob] = []
        var folders: Set<String> = []
        for job in jobs {
            let final = absolute(job.output)
            if let record = records[job.output], record.spec == job.command.spec {
                if record.state == .done, let bytes = record.bytes, Self.fileSize(final) == bytes {
                    report.outcomes[job.output] = .reused
                    continue
                }
                if record.state == .failed && !retryFailed {
                    report.outcomes[job.output] = .failedEarlier(
                        reason: record.reason ?? "failed", standardErrorTail: record.standardErrorTail ?? "")
                    continue
                }
            }
            todo.append(job)
            folders.insert((final as NSString).deletingLastPathComponent)
        }
        for folder in folders { try createFolder(folder) }

        let runID = StableHash.hex(UInt64.random(in: 0...UInt64.max), digits: 8)
        let collected = OutcomeBox()
        let total = todo.count
        progress.report(ProgressEvent(stage: "encode", completed: 0, total: total, unit: "clips"))
        do {
            let reportFinished: @Sendable (Int) -> Void = { done in
                progress.report(ProgressEvent(stage: "encode", completed: done, total: total, unit: "clips"))
            }
            _ = try await Parallel.map(todo, width: width, finished: reportFinished) { job in
                let outcome = try await self.perform(job, runID: runID)
                collected.set(job.output, outcome)
                return true
            }
        } catch is CancellationError {
            report.interrupted = true
        }
        if Task.isCancelled { report.interrupted = true }
        for (output, outcome) in collected.all { report.outcomes[output] = outcome }
        return report
    }

    /// Encodes one job: temporary file, checks, journal, rename.
    func perform(_ job: EncodeJob, runID: String) async throws -> JobOutcome {
        let final = absolute(job.output)
        let folder = (final as NSString).deletingLastPathComponent
        let temporary = folder + "/." + (final as NSString).lastPathComponent + "." + runID + ".part"
        try journal.markRunning(
            output: job.output, source: job.source, spec: job.command.spec, temporaryPath: temporary)
        let result: EncodeResult
        do {
            result = try await encoder.encode(job, to: temporary) { pid in
                try? journal.recordProcess(output: job.output, processID: pid)
            }
        } catch {
            // Stopped (Ctrl-C) or ffmpeg missing: no half-written file stays behind; the journal
            // still says `running`, so the next run redoes this job.
            unlink(temporary)
            throw error
        }
        switch result {
        case .success(let frames):
            guard let bytes = Self.fileSize(temporary), bytes > 0 else {
                try journal.markFailed(
                    output: job.output, reason: "ffmpeg reported success but wrote no file", standardErrorTail: "")
                return .failed(reason: "ffmpeg reported success but wrote no file", standardErrorTail: "")
            }
            try journal.markEncoded(output: job.output, bytes: bytes, frames: frames)
            guard rename(temporary, final) == 0 else {
                throw MediaError.cannotMove(from: temporary, to: final, reason: String(cString: strerror(errno)))
            }
            try journal.markDone(output: job.output)
            return .encoded
        case .failure(let reason, let tail):
            unlink(temporary)
            try journal.markFailed(output: job.output, reason: reason, standardErrorTail: tail)
            return .failed(reason: reason, standardErrorTail: tail)
        }
    }

    /// Repairs what a killed run left: returns the number of jobs that were mid-encode.
    func recover(_ records: inout [String: JobRecord]) async throws -> Int {
        var crashed = 0
        for (output, record) in records {
            switch record.state {
            case .running:
                crashed += 1
                if let temporary = record.temporaryPath {
                    // The journal has the pid only once ffmpeg started: a kill between the start and
                    // that record leaves an orphan only the process table knows.
                    var orphans = Set(Self.processes(writing: temporary))
                    if let pid = record.processID { orphans.insert(pid) }
                    for pid in orphans { Self.killOrphan(pid: pid, writing: temporary) }
                    unlink(temporary)
                }
            case .encoded:
                let final = absolute(output)
                if let temporary = record.temporaryPath, let bytes = record.bytes, Self.fileSize(temporary) == bytes,
                    rename(temporary, final) == 0
                {
                    try journal.markDone(output: output)
                    records[output]?.state = .done
                } else if let bytes = record.bytes, Self.fileSize(final) == bytes {
                    try journal.markDone(output: output)
                    records[output]?.state = .done
                }
            case .done, .failed:
                break
            }
        }
        return crashed
    }

    /// An ffmpeg from a killed run may still be writing; stop it, but only if that process's
    /// command line names the job's temporary file (process ids are reused).
    static func killOrphan(pid: Int32, writing temporary: String) {
        guard pid > 0, let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return }
        let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard arguments.contains(temporary) else { return }
        kill(pid, SIGKILL)
        // Wait briefly for it to go, so that it does not write after the file is unlinked.
        for _ in 0..<50 where FileManager.default.fileExists(atPath: "/proc/\(pid)/cmdline") {
            usleep(10_000)
        }
    }

    /// Processes whose command line names `temporary` (Linux: from /proc; elsewhere none).
    static func processes(writing temporary: String) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        let own = getpid()
        return entries.compactMap { Int32($0) }.filter { pid in
            guard pid != own, let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else {
                return false
            }
            return data.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == temporary }
        }
    }

    func absolute(_ output: String) -> String { outputDirectory + "/" + output }

    static func fileSize(_ path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(info.st_size)
    }
}

/// Outcomes collected from concurrent jobs (also those finished before a stop).
final class OutcomeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var outcomes: [String: JobOutcome] = [:]

    func set(_ output: String, _ outcome: JobOutcome) {
        lock.lock()
        outcomes[output] = outcome
        lock.unlock()
    }

    var all: [String: JobOutcome] {
        lock.lock()
        defer { lock.unlock() }
        return outcomes
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
