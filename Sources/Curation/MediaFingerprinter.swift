import Foundation
import Manifest
import Support

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Whether an item's media file could be examined.
public enum MediaStatus: Sendable, Equatable {
    /// The file does not exist: metadata rules still run; media rules say "file missing".
    case missing
    /// The file was read (content hash) and, when asked, decoded (perceptual hashes, measures).
    case present
    /// The file exists but could not be read or decoded (truncated, corrupt, not media).
    case unreadable(String)
}

/// What the media rules know about one item's file.
public struct MediaFingerprint: Sendable, Equatable {
    public var status: MediaStatus
    /// The path that was opened (relative paths resolved against the media root).
    public var resolvedPath: String
    public var bytes: Int64
    /// SHA-256 of the file's bytes (nil when not computed).
    public var digest: ContentDigest?
    /// Perceptual hashes: one for an image, one per sampled frame for a video.
    public var hashes: [UInt64]
    /// Mean brightness, contrast and sharpness of the decoded frames.
    public var measures: FrameMeasures?

    public init(
        status: MediaStatus, resolvedPath: String, bytes: Int64 = 0, digest: ContentDigest? = nil,
        hashes: [UInt64] = [],
        measures: FrameMeasures? = nil
    ) {
        self.status = status
        self.resolvedPath = resolvedPath
        self.bytes = bytes
        self.digest = digest
        self.hashes = hashes
        self.measures = measures
    }
}

/// Totals of one fingerprinting pass, for the summary and the MB/s figure.
public struct FingerprintTotals: Sendable, Equatable {
    public var present = 0
    public var missing = 0
    public var unreadable = 0
    /// Files whose fingerprint came from an earlier, interrupted run (fingerprints.jsonl).
    public var reused = 0
    /// Bytes hashed in this run and the seconds spent in the content hash.
    public var bytesHashed: Int64 = 0
    public var hashSeconds = 0.0
    /// Seconds of wall time for the whole media pass.
    public var seconds = 0.0

    /// Content-hash throughput of one worker in MB/s (10⁶ bytes per second): bytes hashed over the
    /// seconds spent hashing, added up over workers; nil when nothing was hashed.
    public var hashMegabytesPerSecond: Double? {
        hashSeconds > 0 && bytesHashed > 0 ? Double(bytesHashed) / 1e6 / hashSeconds : nil
    }
}

/// Examines every item's media file in parallel: existence, SHA-256 of the bytes, perceptual
/// hashes and frame measures. Results are appended, batch by batch, to a fingerprint cache
/// (JSON Lines) so that an interrupted run resumes where it stopped: a file whose size and
/// modification time are unchanged is not read again.
public struct MediaFingerprinter: Sendable {
    public var options: CurationOptions
    /// Folder that relative paths are resolved against.
    public var root: String
    /// fingerprints.jsonl, or nil for no cache.
    public var cachePath: String?

    public init(options: CurationOptions, root: String, cachePath: String?) {
        self.options = options
        self.root = root
        self.cachePath = cachePath
    }

    public func resolve(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return root.hasSuffix("/") ? root + path : root + "/" + path
    }

    public func fingerprint(
        _ items: [ManifestItem], progress: ProgressReporter = .silent
    ) async throws(CurationError) -> (fingerprints: [MediaFingerprint], totals: FingerprintTotals) {
        let start = Date()
        var totals = FingerprintTotals()
        // Pass 1: which files exist (cheap: one stat each).
        var fingerprints: [MediaFingerprint] = []
        var stats: [FileStat?] = []
        fingerprints.reserveCapacity(items.count)
        stats.reserveCapacity(items.count)
        for item in items {
            let resolved = resolve(item.path)
            let stat = FileStat(path: resolved)
            stats.append(stat)
            switch stat {
            case nil: fingerprints.append(MediaFingerprint(status: .missing, resolvedPath: resolved))
            case let stat? where !stat.isRegularFile:
                fingerprints.append(MediaFingerprint(status: .unreadable("not a regular file"), resolvedPath: resolved))
            case let stat?:
                fingerprints.append(MediaFingerprint(status: .present, resolvedPath: resolved, bytes: stat.size))
            }
        }
        let work = fingerprints.indices.filter { fingerprints[$0].status == .present }
        totals.missing = fingerprints.lazy.filter { $0.status == .missing }.count
        guard !work.isEmpty, options.contentHash || options.perceptualHash else {
            totals.present = work.count
            totals.unreadable = fingerprints.count - totals.missing - work.count
            totals.seconds = Date().timeIntervalSince(start)
            return (fingerprints, totals)
        }
        var extractor: FrameExtractor?
        if options.perceptualHash {
            guard let ffmpeg = FrameExtractor.locate(options.ffmpeg) else {
                throw .ffmpegMissing(searched: options.ffmpeg ?? "PATH")
            }
            extractor = FrameExtractor(ffmpeg: ffmpeg)
        }

        // Pass 2: hash and decode, in batches; each batch is appended to the cache.
        var cache = FingerprintCache(path: cachePath, settings: settingsKey)
        let batchSize = max(32, options.workers * 16)
        var done = 0
        var batchStart = 0
        let hasher = ContentHasher()
        while batchStart < work.count {
            let batch = Array(work[batchStart..<min(work.count, batchStart + batchSize)])
            let cached = batch.map { cache.lookup(fingerprints[$0].resolvedPath, stats[$0]!) }
            let needed = batch.indices.filter { cached[$0] == nil }
            // Copies of just this batch's values: the tasks must not capture the mutable arrays.
            let frameExtractor = extractor
            let jobs = needed.map { (position: $0, item: items[batch[$0]], start: fingerprints[batch[$0]]) }
            let examined = await inParallel(jobs.count, workers: options.workers) { slot in
                await examine(jobs[slot].item, jobs[slot].start, hasher: hasher, extractor: frameExtractor)
            }
            var examinedAt: [Int: Examined] = [:]
            for (slot, job) in jobs.enumerated() { examinedAt[job.position] = examined[slot] }
            var newEntries: [FingerprintCache.Entry] = []
            for (position, index) in batch.enumerated() {
                if let entry = cached[position] {
                    fingerprints[index] = entry.fingerprint(resolvedPath: fingerprints[index].resolvedPath)
                    totals.reused += 1
                } else {
                    let examined = examinedAt[position]!
                    fingerprints[index] = examined.fingerprint
                    totals.bytesHashed += examined.hashedBytes
                    totals.hashSeconds += examined.hashSeconds
                    newEntries.append(
                        FingerprintCache.Entry(examined.fingerprint, stat: stats[index]!, settings: settingsKey))
                }
            }
            try cache.append(newEntries)
            done += batch.count
            batchStart += batch.count
            progress.report(ProgressEvent(stage: "examine media", completed: done, total: work.count, unit: "files"))
        }
        for fingerprint in fingerprints {
            switch fingerprint.status {
            case .present: totals.present += 1
            case .unreadable: totals.unreadable += 1
            case .missing: break
            }
        }
        totals.seconds = Date().timeIntervalSince(start)
        return (fingerprints, totals)
    }

    /// Options that change a fingerprint; a cached one made with other options is not reused.
    var settingsKey: String {
        "\(options.contentHash ? "sha256" : "-")/\(options.perceptualHash ? options.hashKind.rawValue : "-")/"
            + "\(options.videoFrames)"
    }

    struct Examined: Sendable {
        var fingerprint: MediaFingerprint
        var hashedBytes: Int64
        var hashSeconds: Double
    }

    /// Runs `body` for `0..<count` with at most `workers` at a time; the results in index order.
    func inParallel<Value: Sendable>(
        _ count: Int, workers: Int, _ body: @escaping @Sendable (Int) async -> Value
    ) async -> [Value] {
        await withTaskGroup(of: (Int, Value).self) { group in
            var results = [Value?](repeating: nil, count: count)
            var next = 0
            for _ in 0..<min(max(1, workers), count) {
                let index = next
                group.addTask { (index, await body(index)) }
                next += 1
            }
            for await (index, value) in group {
                results[index] = value
                if next < count {
                    let following = next
                    group.addTask { (following, await body(following)) }
                    next += 1
                }
            }
            return results.map { $0! }
        }
    }

    func examine(
        _ item: ManifestItem, _ start: MediaFingerprint, hasher: ContentHasher, extractor: FrameExtractor?
    ) async -> Examined {
        var fingerprint = start
        var hashed: Int64 = 0
        var seconds = 0.0
        if options.contentHash {
            let began = Date()
            do {
                let (digest, bytes) = try hasher.digest(path: start.resolvedPath)
                fingerprint.digest = digest
                fingerprint.bytes = bytes
                hashed = bytes
            } catch {
                let reason =
                    switch error {
                    case .cannotOpen(let why): "cannot open: \(why)"
                    case .readFailed(let why): "read failed: \(why)"
                    }
                fingerprint.status = .unreadable(reason)
                return Examined(fingerprint: fingerprint, hashedBytes: 0, hashSeconds: 0)
            }
            seconds = Date().timeIntervalSince(began)
        }
        if let extractor {
            do {
                let frames: [GreyFrame]
                switch item.mediaType {
                case .image: frames = [try await extractor.imageFrame(path: start.resolvedPath)]
                case .video:
                    frames = try await extractor.videoFrames(
                        path: start.resolvedPath, duration: item.duration, count: options.videoFrames)
                }
                fingerprint.hashes = frames.map { PerceptualHash.hash($0, kind: options.hashKind) }
                fingerprint.measures = FrameMeasures.mean(frames.map(\.measures))
            } catch {
                fingerprint.status = .unreadable(error.reason)
            }
        }
        return Examined(fingerprint: fingerprint, hashedBytes: hashed, hashSeconds: seconds)
    }
}

/// Size, modification time and kind of a file (one `stat` call).
struct FileStat: Sendable, Equatable {
    var size: Int64
    var modifiedNanoseconds: Int64
    var isRegularFile: Bool

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        size = Int64(info.st_size)
        #if canImport(Darwin)
            modifiedNanoseconds = Int64(info.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(info.st_mtimespec.tv_nsec)
        #else
            modifiedNanoseconds = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        #endif
        isRegularFile = (info.st_mode & S_IFMT) == S_IFREG
    }
}

/// fingerprints.jsonl: one JSON object per examined file, appended as work finishes.
struct FingerprintCache {
    struct Entry: Codable, Equatable {
        var path: String
        var size: Int64
        var mtime: Int64
        var settings: String
        var sha256: String?
        var hashes: [String]
        var brightness: Double?
        var contrast: Double?
        var sharpness: Double?
        var problem: String?

        init(_ fingerprint: MediaFingerprint, stat: FileStat, settings: String) {
            path = fingerprint.resolvedPath
            size = stat.size
            mtime = stat.modifiedNanoseconds
            self.settings = settings
            sha256 = fingerprint.digest?.description
            hashes = fingerprint.hashes.map { String(format: "%016llx", $0) }
            brightness = fingerprint.measures?.brightness
            contrast = fingerprint.measures?.contrast
            sharpness = fingerprint.measures?.sharpness
            if case .unreadable(let why) = fingerprint.status { problem = why }
        }

        func fingerprint(resolvedPath: String) -> MediaFingerprint {
            var measures: FrameMeasures?
            if let brightness, let contrast, let sharpness {
                measures = FrameMeasures(brightness: brightness, contrast: contrast, sharpness: sharpness)
            }
            return MediaFingerprint(
                status: problem.map { .unreadable($0) } ?? .present, resolvedPath: resolvedPath, bytes: size,
                digest: sha256.flatMap { ContentDigest(hex: $0) }, hashes: hashes.compactMap { UInt64($0, radix: 16) },
                measures: measures)
        }
    }

    let path: String?
    let settings: String
    private var entries: [String: Entry] = [:]

    init(path: String?, settings: String) {
        self.path = path
        self.settings = settings
        guard let path, let data = FileManager.default.contents(atPath: path) else { return }
        let decoder = JSONDecoder()
        for line in data.split(separator: 0x0A) {
            // A line cut short by an interruption simply fails to decode and is redone.
            guard let entry = try? decoder.decode(Entry.self, from: Data(line)) else { continue }
            entries[entry.path] = entry
        }
    }

    func lookup(_ path: String, _ stat: FileStat) -> Entry? {
        guard let entry = entries[path], entry.size == stat.size, entry.mtime == stat.modifiedNanoseconds,
            entry.settings == settings
        else { return nil }
        return entry
    }

    mutating func append(_ new: [Entry]) throws(CurationError) {
        guard let path, !new.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = Data()
        for entry in new {
            entries[entry.path] = entry
            if let line = try? encoder.encode(entry) {
                data.append(line)
                data.append(0x0A)
            }
        }
        do {
            if !FileManager.default.fileExists(atPath: path) {
                _ = FileManager.default.createFile(atPath: path, contents: nil)
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: data)
        } catch {
            throw .cannotWrite(path: path, reason: error.localizedDescription)
        }
    }
}
