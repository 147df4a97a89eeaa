import Foundation
import GRDB

/// Where a clip's job stands.
public enum JobState: String, Sendable, Codable {
    /// ffmpeg was started; if the journal still says so at the next start, the run was killed.
    case running
    /// ffmpeg finished and the temporary file was checked; the rename is next.
    case encoded
    /// The clip is at its final name.
    case done
    /// ffmpeg failed or wrote the wrong number of frames; the reason is kept.
    case failed
}

/// One row of the journal.
public struct JobRecord: Sendable, Equatable {
    public var output: String
    public var source: String
    public var spec: String
    public var state: JobState
    /// How many times ffmpeg was started for this output.
    public var attempts: Int
    public var temporaryPath: String?
    public var processID: Int32?
    public var bytes: Int?
    public var frames: Int?
    public var reason: String?
    public var standardErrorTail: String?
}

/// The SQLite journal of a prepare run (GRDB, WAL mode): the state of every output and a cache of
/// probe results. Each state change is its own committed transaction, so a `kill -9` loses at
/// most the jobs that were running.
public struct PrepareJournal: Sendable {
    public let path: String
    let database: DatabaseQueue

    public init(path: String) throws(MediaError) {
        self.path = path
        do {
            var configuration = GRDB.Configuration()
            configuration.journalMode = .wal
            configuration.busyMode = .timeout(10)
            configuration.prepareDatabase { db in
                // WAL + NORMAL survives a killed process (not a power cut, which a re-run repairs).
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            database = try DatabaseQueue(path: path, configuration: configuration)
            try Self.migrator.migrate(database)
        } catch {
            throw .journalUnavailable(path: path, reason: String(describing: error))
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE job (
                        output TEXT PRIMARY KEY NOT NULL,
                        source TEXT NOT NULL,
                        spec TEXT NOT NULL,
                        state TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        temporary_path TEXT,
                        process_id INTEGER,
                        bytes INTEGER,
                        frames INTEGER,
                        reason TEXT,
                        stderr_tail TEXT,
                        started_at REAL,
                        finished_at REAL
                    );
                    CREATE TABLE probe (
                        source TEXT PRIMARY KEY NOT NULL,
                        size INTEGER NOT NULL,
                        modified REAL NOT NULL,
                        result TEXT NOT NULL
                    );
                    """)
        }
        return migrator
    }

    // MARK: Jobs

    public func allJobs() throws(MediaError) -> [String: JobRecord] {
        do {
            return try database.read { db in
                var records: [String: JobRecord] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT * FROM job") {
                    let record = Self.record(row)
                    records[record.output] = record
                }
                return records
            }
        } catch {
            throw .journalUnavailable(path: path, reason: String(describing: error))
        }
    }

    public func job(_ output: String) throws(MediaError) -> JobRecord? {
        do {
            return try database.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM job WHERE output = ?", arguments: [output]).map(Self.record)
            }
        } catch {
            throw .journalUnavailable(path: path, reason: String(describing: error))
        }
    }

    /// Records that ffmpeg is about to start for `output`; returns the attempt number.
    @discardableResult
    public func markRunning(output: String, source: String, spec: String, temporaryPath: String) throws(MediaError)
        -> Int
    {
        try write { db in
            try db.execute(
                sql: """
                    INSERT INTO job (output, source, spec, state, attempts, temporary_path, started_at)
                    VALUES (?, ?, ?, 'running', 1, ?, ?)
                    ON CONFLICT(output) DO UPDATE SET source = excluded.source, spec = excluded.spec, state = 'running',
                        attempts = attempts + 1, temporary_path = excluded.temporary_path, \
                    process_id = NULL, bytes = NULL,
                        frames = NULL, reason = NULL, stderr_tail = NULL, \
                    started_at = excluded.started_at, finished_at = NULL
                    """,
                arguments: [output, source, spec, temporaryPath, Date().timeIntervalSince1970])
            return try Int.fetchOne(db, sql: "SELECT attempts FROM job WHERE output = ?", arguments: [output]) ?? 1
        }
    }

    public func recordProcess(output: String, processID: Int32) throws(MediaError) {
        try write { db in
            try db.execute(sql: "UPDATE job SET process_id = ? WHERE output = ?", arguments: [Int(processID), output])
        }
    }

    public func markEncoded(output: String, bytes: Int, frames: Int) throws(MediaError) {
        try write { db in
            try db.execute(
                sql: "UPDATE job SET state = 'encoded', bytes = ?, frames = ?, process_id = NULL WHERE output = ?",
                arguments: [bytes, frames, output])
        }
    }

    public func markDone(output: String) throws(MediaError) {
        try write { db in
            try db.execute(
                sql: "UPDATE job SET state = 'done', temporary_path = NULL, finished_at = ? WHERE output = ?",
                arguments: [Date().timeIntervalSince1970, output])
        }
    }

    public func markFailed(output: String, reason: String, standardErrorTail: String) throws(MediaError) {
        try write { db in
            try db.execute(
                sql: """
                    UPDATE job SET state = 'failed', reason = ?, \
                    stderr_tail = ?, temporary_path = NULL, process_id = NULL,
                        finished_at = ? WHERE output = ?
                    """,
                arguments: [reason, standardErrorTail, Date().timeIntervalSince1970, output])
        }
    }

    // MARK: Probe cache

    /// A cached probe of `source`, valid while its size and modification time are unchanged.
    public func cachedProbe(source: String, size: Int, modified: Double) throws(MediaError) -> Result<
        MediaProbe, ProbeFailure
    >? {
        let text: String?
        do {
            text = try database.read { db in
                try String.fetchOne(
                    db, sql: "SELECT result FROM probe WHERE source = ? AND size = ? AND modified = ?",
                    arguments: [source, size, modified])
            }
        } catch {
            throw .journalUnavailable(path: path, reason: String(describing: error))
        }
        guard let text, let cached = try? JSONDecoder().decode(CachedProbe.self, from: Data(text.utf8)) else {
            return nil
        }
        if let probe = cached.probe { return .success(probe) }
        if let failure = cached.failure { return .failure(failure) }
        return nil
    }

    public func storeProbe(source: String, size: Int, modified: Double, result: Result<MediaProbe, ProbeFailure>)
        throws(MediaError)
    {
        let cached: CachedProbe
        switch result {
        case .success(let probe): cached = CachedProbe(probe: probe, failure: nil)
        case .failure(let failure): cached = CachedProbe(probe: nil, failure: failure)
        }
        guard let data = try? JSONEncoder().encode(cached) else { return }
        let text = String(decoding: data, as: UTF8.self)
        try write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO probe (source, size, modified, result) VALUES (?, ?, ?, ?)",
                arguments: [source, size, modified, text])
        }
    }

    struct CachedProbe: Codable {
        var probe: MediaProbe?
        var failure: ProbeFailure?
    }

    // MARK: Helpers

    /// A synchronous write: a state change takes well under a millisecond, and must not be
    /// skipped because the task was cancelled (GRDB's async writes stop on cancellation).
    private func write<T>(_ body: (Database) throws -> T) throws(MediaError) -> T {
        do {
            return try database.write(body)
        } catch {
            throw .journalUnavailable(path: path, reason: String(describing: error))
        }
    }

    static func record(_ row: Row) -> JobRecord {
        JobRecord(
            output: row["output"], source: row["source"], spec: row["spec"],
            state: JobState(rawValue: row["state"]) ?? .running, attempts: row["attempts"],
            temporaryPath: row["temporary_path"], processID: (row["process_id"] as Int?).map { Int32($0) },
            bytes: row["bytes"], frames: row["frames"], reason: row["reason"], standardErrorTail: row["stderr_tail"])
    }
}
