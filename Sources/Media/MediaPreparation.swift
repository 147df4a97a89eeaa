import Foundation
import Manifest
import Support

/// One row of the prepared manifest.
public struct PreparedClip: Sendable, Equatable {
    public var path: String
    public var mediaType: MediaType
    public var size: Resolution
    public var frames: Int
    public var fps: Int
    public var start: Double
    public var split: String
    public var category: String
    public var caption: String
    public var weight: Double
    public var augmentation: String
    public var sourcePath: String
    public var sourceID: String
    public var sourceLine: Int

    /// Readable by `wanlora analyze` and by the engine's cache step: the canonical columns
    /// (path, media_type, resolution, duration, fps, category, caption) come first.
    public static let header = [
        "path", "media_type", "resolution", "frames", "fps", "duration", "start", "split", "category", "caption",
        "weight",
        "augmentation", "source_path", "source_id", "source_line",
    ]

    public var fields: [String] {
        [
            path, mediaType.rawValue, size.ascii, String(frames), mediaType == .video ? String(fps) : "",
            mediaType == .video ? FFmpegCommandBuilder.number(Double(frames) / Double(fps)) : "",
            mediaType == .video ? FFmpegCommandBuilder.number(start) : "", split, category, caption,
            FFmpegCommandBuilder.number(weight), augmentation, sourcePath, sourceID, String(sourceLine),
        ]
    }
}

/// What a prepare run did.
public struct PrepareSummary: Sendable {
    public var outputDirectory: String
    /// Accepted manifest rows given to prepare, per split.
    public var itemsPerSplit: [String: Int]
    /// Rows the manifest readers rejected, per split (written to rejects-SPLIT.csv).
    public var rejectedRowsPerSplit: [String: Int]
    public var clips: [PreparedClip]
    public var setAside: [SetAsideItem]
    public var planned: Int
    public var report: JobRunReport
    /// Files written (relative to the output folder); empty when the run was interrupted.
    public var filesWritten: [String]

    public var interrupted: Bool { report.interrupted }
    public var items: Int { itemsPerSplit.values.reduce(0, +) }
    public var quarantined: [SetAsideItem] { setAside.filter { $0.outcome == .quarantined } }
    public var skipped: [SetAsideItem] { setAside.filter { $0.outcome == .skipped } }
    /// Items that gave at least one clip.
    public var itemsPrepared: Int { preparedKeys.count }
    /// Items set aside by rule (too short, duplicate) .
    public var itemsSkipped: Int { Set(skipped.map(Self.key)).count }
    /// Items that gave no clip because their file or every one of their clips failed.
    public var itemsQuarantined: Int { Set(quarantined.map(Self.key)).subtracting(preparedKeys).count }
    /// Failed clips (this run and, not retried, earlier runs).
    public var clipsFailed: Int { report.failed }

    private var preparedKeys: Set<String> {
        Set(clips.map { $0.split + "\u{1F}" + $0.sourcePath + "\u{1F}" + String($0.sourceLine) })
    }

    static func key(_ item: SetAsideItem) -> String {
        item.split + "\u{1F}" + item.sourcePath + "\u{1F}" + String(item.line)
    }
    /// Planned clips not finished when the run stopped.
    public var clipsLeft: Int { planned - report.outcomes.count }
}

/// `wanlora prepare`: probe, plan, encode (resumably, in parallel), write the manifests.
public struct MediaPreparation: Sendable {
    public var outputDirectory: String
    public var options: PrepareOptions
    public var encoder: any ClipEncoder

    public static let journalName = "prepare-journal.sqlite"

    public init(outputDirectory: String, options: PrepareOptions, encoder: (any ClipEncoder)? = nil) {
        self.outputDirectory = PathMath.absolute(outputDirectory)
        self.options = options
        self.encoder = encoder ?? FFmpegEncoder(tools: options.tools)
    }

    public func openJournal() throws(MediaError) -> PrepareJournal {
        try createOutputDirectory()
        return try PrepareJournal(path: outputDirectory + "/" + Self.journalName)
    }

    func createOutputDirectory() throws(MediaError) { try createFolder(outputDirectory) }

    /// Probes the sources (through the journal's cache) and plans every clip; encodes nothing.
    public func plan(_ inputs: [PrepareInput], journal: PrepareJournal? = nil, progress: ProgressReporter = .silent)
        async throws -> PreparePlan
    {
        let (sources, duplicates) = PreparePlanner.sources(inputs, shard: options.shard)
        let probes = try await ProbeBatch.probe(
            paths: sources.map(\.absolutePath), tools: options.tools, width: options.jobs, journal: journal,
            progress: progress)
        let (clips, setAside) = PreparePlanner.plan(sources: sources, probes: probes, options: options)
        return PreparePlan(clips: clips, setAside: duplicates + setAside, sources: sources, probes: probes)
    }

    /// The whole run. Stops cleanly when the task is cancelled (then `interrupted` is true and no
    /// manifest is written: a manifest always describes a finished run).
    public func run(_ inputs: [PrepareInput], progress: ProgressReporter = .silent) async throws -> PrepareSummary {
        try createOutputDirectory()
        let lock = try FolderLock(outputDirectory + "/.prepare.lock")
        defer { lock.release() }
        let journal = try openJournal()
        let plan = try await plan(inputs, journal: journal, progress: progress)
        let splits = Array(Set(inputs.map(\.split))).sorted()
        // A manifest left by an earlier run no longer describes the folder once encoding starts.
        for name in Self.resultFiles(splits: splits) + [ShardRecord.fileName] {
            unlink(outputDirectory + "/" + name)
        }
        let runner = JobRunner(
            outputDirectory: outputDirectory, journal: journal, encoder: encoder, width: options.jobs,
            retryFailed: options.retryFailed)
        let report = try await runner.run(plan.clips.map(\.job), progress: progress)

        var clips: [PreparedClip] = []
        var setAside = plan.setAside
        var failedByItem: [String: [SetAsideItem]] = [:]
        for planned in plan.clips {
            let itemKey = planned.source.split + "\u{1F}" + planned.source.absolutePath
            switch report.outcomes[planned.job.output] {
            case .reused?, .encoded?:
                clips.append(
                    PreparedClip(
                        path: planned.job.output, mediaType: planned.isImage ? .image : .video,
                        size: planned.job.command.size,
                        frames: planned.clip.frames, fps: options.clips.fps, start: planned.clip.start,
                        split: planned.source.split,
                        category: planned.source.item.category, caption: planned.source.item.caption,
                        weight: planned.source.weight ?? 1,
                        augmentation: Self.transformLabel(planned),
                        sourcePath: planned.source.absolutePath, sourceID: planned.source.item.id ?? "",
                        sourceLine: planned.source.item.line))
            case .failed(let reason, let tail)?, .failedEarlier(let reason, let tail)?:
                failedByItem[itemKey, default: []].append(
                    SetAsideItem(
                        sourcePath: planned.source.absolutePath, split: planned.source.split,
                        manifestPath: planned.source.manifestPath,
                        line: planned.source.item.line, outcome: .quarantined, stage: "encode", reason: reason,
                        output: planned.job.output,
                        detail: tail))
            case nil:
                break
            }
        }
        // Every failed clip is listed; an item counts as quarantined only when none of its clips worked.
        for (_, failures) in failedByItem.sorted(by: { $0.key < $1.key }) { setAside.append(contentsOf: failures) }

        var itemsPerSplit: [String: Int] = [:]
        var rejectedPerSplit: [String: Int] = [:]
        for input in inputs {
            let owned = input.manifest.items.filter { options.shard?.owns(split: input.split, path: $0.path) ?? true }
            itemsPerSplit[input.split, default: 0] += owned.count
            rejectedPerSplit[input.split, default: 0] += input.manifest.rejected.count
        }
        var summary = PrepareSummary(
            outputDirectory: outputDirectory, itemsPerSplit: itemsPerSplit, rejectedRowsPerSplit: rejectedPerSplit,
            clips: clips,
            setAside: setAside, planned: plan.clips.count, report: report, filesWritten: [])
        if !report.interrupted {
            summary.filesWritten = try write(summary, inputs: inputs, splits: splits)
            if let shard = options.shard {
                var allItems: [String: Int] = [:]
                for input in inputs { allItems[input.split, default: 0] += input.manifest.items.count }
                let record = ShardRecord(
                    format: ShardRecord.currentFormat, shard: shard.index, shards: shard.count,
                    plan: PreparePlanner.fingerprint(inputs, options: options),
                    manifests: inputs.map { $0.split + "=" + PathMath.absolute($0.manifest.source) },
                    items: itemsPerSplit, allItems: allItems)
                try record.write(folder: outputDirectory)
                summary.filesWritten.append(ShardRecord.fileName)
            }
        }
        return summary
    }

    /// The files a finished run writes (besides clips and rejects): a folder with them is finished.
    static func resultFiles(splits: [String]) -> [String] {
        ["manifest.csv", "quarantine.csv", "skipped.csv"] + splits.map { splitFileName($0) }
    }

    /// Writes manifest.csv, SPLIT.csv, quarantine.csv, skipped.csv and rejects-SPLIT.csv.
    func write(_ summary: PrepareSummary, inputs: [PrepareInput], splits: [String]) throws -> [String] {
        let rows = summary.clips.map {
            ManifestRow(split: $0.split, line: $0.sourceLine, path: $0.path, fields: $0.fields)
        }
        let setAside = summary.setAside.map { item in
            SetAsideRow(
                outcome: item.outcome,
                fields: [
                    item.sourcePath, item.split, item.manifestPath, String(item.line), item.stage, item.reason,
                    item.output, item.detail,
                ])
        }
        var written = try Self.writeResults(into: outputDirectory, clips: rows, setAside: setAside, splits: splits)
        for input in inputs where !input.manifest.rejected.isEmpty {
            let stem = ((input.manifest.source as NSString).lastPathComponent as NSString).deletingPathExtension
            let name = "rejects-\(Self.fileSafe(input.split))-\(Self.fileSafe(stem)).csv"
            try Self.save(RejectsWriter.csv(input.manifest.rejected), to: outputDirectory + "/" + name)
            written.append(name)
        }
        return written
    }

    /// One row of manifest.csv with what orders it.
    struct ManifestRow {
        var split: String
        var line: Int
        var path: String
        var fields: [String]
    }

    /// One row of quarantine.csv or skipped.csv (`logHeader`'s fields).
    struct SetAsideRow {
        var outcome: SetAsideItem.Outcome
        var fields: [String]
    }

    static let logHeader = ["source_path", "split", "manifest", "line", "stage", "reason", "output", "ffmpeg_stderr"]

    /// manifest.csv and SPLIT.csv ordered by split, source line and clip path; quarantine.csv and
    /// skipped.csv by split, manifest, line and output. The order depends on the rows only, so the
    /// merge of shards writes the same bytes as one run.
    static func writeResults(into folder: String, clips: [ManifestRow], setAside: [SetAsideRow], splits: [String])
        throws -> [String]
    {
        var written: [String] = []
        func save(_ writer: CSVWriter, _ name: String) throws {
            try Self.save(writer, to: folder + "/" + name)
            written.append(name)
        }
        let ordered = clips.sorted { ($0.split, $0.line, $0.path) < ($1.split, $1.line, $1.path) }
        var all = CSVWriter()
        all.writeRow(PreparedClip.header)
        for clip in ordered { all.writeRow(clip.fields) }
        try save(all, "manifest.csv")
        for split in splits {
            var writer = CSVWriter()
            writer.writeRow(PreparedClip.header)
            for clip in ordered where clip.split == split { writer.writeRow(clip.fields) }
            try save(writer, Self.splitFileName(split))
        }
        // split, manifest, line (as a number), output
        let logOrder: (SetAsideRow) -> (String, String, Int, String) = {
            ($0.fields[1], $0.fields[2], Int($0.fields[3]) ?? 0, $0.fields[6])
        }
        for (name, outcome) in [("quarantine.csv", SetAsideItem.Outcome.quarantined), ("skipped.csv", .skipped)] {
            var writer = CSVWriter()
            writer.writeRow(logHeader)
            let rows = setAside.filter { $0.outcome == outcome }.sorted { logOrder($0) < logOrder($1) }
            for row in rows { writer.writeRow(row.fields) }
            try save(writer, name)
        }
        return written
    }

    static func save(_ writer: CSVWriter, to path: String) throws(MediaError) {
        do throws(ManifestError) {
            try writer.write(to: path)
        } catch {
            throw MediaError.cannotWrite(path: path, reason: error.problem)
        }
    }

    /// The augmentation label, plus `pad=N` when the pad rule repeated the last frame N times.
    static func transformLabel(_ planned: PlannedClip) -> String {
        var parts = planned.augmentation.isIdentity ? [] : [planned.augmentation.label]
        if planned.clip.paddedFrames > 0 { parts.append("pad=\(planned.clip.paddedFrames)") }
        return parts.joined(separator: ";")
    }

    /// `train.csv`, `val.csv`; a split called "manifest" would clash with manifest.csv.
    public static func splitFileName(_ split: String) -> String {
        let safe = fileSafe(split)
        return (safe == "manifest" || safe == "quarantine" || safe == "skipped" ? "split-" + safe : safe) + ".csv"
    }

    static func fileSafe(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    }
}

/// An exclusive lock on the output folder for the length of a run (flock: the kernel drops it when
/// the process dies, even by SIGKILL).
final class FolderLock: Sendable {
    let descriptor: Int32

    init(_ path: String) throws(MediaError) {
        descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o666)  // less the umask
        guard descriptor >= 0 else {
            throw .cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw .busy(folder: (path as NSString).deletingLastPathComponent)
        }
    }

    func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
