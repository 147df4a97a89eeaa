import Foundation
import Manifest
import Support

/// What `prepare --merge` did.
public struct ShardMergeSummary: Sendable {
    public var outputDirectory: String
    public var shards: Int
    /// Items of the whole plan, per split (every shard's `all_items`).
    public var itemsPerSplit: [String: Int]
    public var clipsPerSplit: [String: Int]
    public var itemsPrepared: Int
    public var itemsQuarantined: Int
    public var itemsSkipped: Int
    /// Clips hard-linked into the output folder now.
    public var linked: Int
    /// Clips already there as the same file (an earlier merge).
    public var alreadyInPlace: Int
    /// Clips copied because the shard folder is on another file system.
    public var copied: Int
    public var filesWritten: [String]

    public var items: Int { itemsPerSplit.values.reduce(0, +) }
    public var clips: Int { clipsPerSplit.values.reduce(0, +) }
}

/// A merge that cannot be made; each case names the folder and how to put it right.
public enum ShardMergeError: ActionableError, Equatable {
    case noFolders
    case missingFolder(String)
    case unfinished(folder: String)
    case unreadable(path: String, reason: String)
    case outputIsShard(String)
    case otherShardCount(folder: String, shard: String, expected: Int, reference: String)
    case otherPlan(folder: String, reference: String)
    case sameShardTwice(shard: String, first: String, second: String)
    case missingShards([Int], count: Int)
    case duplicateItem(source: String, split: String, line: Int, first: String, second: String)
    case duplicateClip(path: String, first: String, second: String)
    case countsDoNotAdd(folder: String, accounted: Int, items: Int)
    case itemsUnaccounted(accounted: Int, items: Int)
    case clipMissing(path: String, folder: String)
    case cannotPlace(path: String, reason: String)

    public var problem: String {
        switch self {
        case .noFolders: "--merge needs the shard folders"
        case .missingFolder(let folder): "shard folder \(folder) does not exist"
        case .unfinished(let folder):
            "\(folder) is not a finished shard: it has no \(ShardRecord.fileName) "
                + "(written when `prepare --shard K/N` ends)"
        case .unreadable(let path, let reason): "cannot read \(path): \(reason)"
        case .outputIsShard(let folder): "--out \(folder) is one of the shard folders"
        case .otherShardCount(let folder, let shard, let expected, let reference):
            "\(folder) is shard \(shard), but \(reference) is one of \(expected) shards: "
                + "they are not shards of the same run"
        case .otherPlan(let folder, let reference):
            "\(folder) was prepared from other manifests or with other options than \(reference) "
                + "(their \(ShardRecord.fileName) fingerprints differ)"
        case .sameShardTwice(let shard, let first, let second): "shard \(shard) is given twice: \(first) and \(second)"
        case .missingShards(let missing, let count):
            "shard\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", ")) of \(count) "
                + "\(missing.count == 1 ? "is" : "are") missing: no folder given holds "
                + "\(missing.count == 1 ? "it" : "them")"
        case .duplicateItem(let source, let split, let line, let first, let second):
            "item \(source) (\(split), line \(line)) is in two shards: \(first) and \(second)"
        case .duplicateClip(let path, let first, let second): "clip \(path) is in two shards: \(first) and \(second)"
        case .countsDoNotAdd(let folder, let accounted, let items):
            "\(folder) accounts for \(accounted) items (prepared + quarantined + skipped) "
                + "but its \(ShardRecord.fileName) says it had \(items)"
        case .itemsUnaccounted(let accounted, let items):
            "the shards account for \(accounted) items, but the plan has \(items)"
        case .clipMissing(let path, let folder): "clip \(path) listed in \(folder)/manifest.csv is not there"
        case .cannotPlace(let path, let reason): "cannot place clip \(path): \(reason)"
        }
    }

    public var remedy: String {
        switch self {
        case .noFolders:
            "pass every shard's --out folder, e.g. --merge prepared/shard-1-of-3 prepared/shard-2-of-3 "
                + "prepared/shard-3-of-3 --out prepared"
        case .missingFolder, .unfinished:
            "run (or re-run: it resumes) that shard's `wanlora prepare … --shard K/N --out FOLDER` to the end, "
                + "then merge again"
        case .unreadable:
            "re-run that shard's prepare command (it resumes and writes its files again)"
        case .outputIsShard: "merge into another folder, e.g. the shards' parent folder"
        case .otherShardCount, .otherPlan:
            "merge only folders made by one plan: the same manifests and options with --shard 1/N … N/N; "
                + "re-run the odd one with the others' command"
        case .sameShardTwice: "pass each shard's folder once"
        case .missingShards(let missing, let count):
            "run `wanlora prepare … --shard \(missing[0])/\(count) --out FOLDER` with the other shards' "
                + "options and pass its folder too"
        case .duplicateItem, .duplicateClip, .countsDoNotAdd, .itemsUnaccounted:
            "a shard folder was changed after its run or comes from another wanlora version: "
                + "re-run the shards' commands (they resume) and merge again"
        case .clipMissing:
            "re-run that shard's prepare command: it finds the clip missing and encodes it again"
        case .cannotPlace: "check that --out is writable and the disk is not full"
        }
    }
}

/// `wanlora prepare --merge`: one prepared folder from the folders of `prepare --shard 1/N … N/N`.
///
/// Checked before anything is written: every folder is a finished shard of the same plan (the
/// fingerprint in its `shard.json`), every shard 1 … N is there once, no item and no clip is in two
/// shards, each shard's prepared + quarantined + skipped items equal its share, and the shares add
/// up to the plan's items. The clips are hard-linked into the output folder (the same files, no
/// copy; a shard folder on another file system is copied), at the paths a single run gives them,
/// and the manifests are written by the same code as a single run's, so the result is the same.
public struct ShardMerge: Sendable {
    public var folders: [String]
    public var outputDirectory: String

    public init(folders: [String], outputDirectory: String) {
        self.folders = folders.map { PathMath.absolute($0) }
        self.outputDirectory = PathMath.absolute(outputDirectory)
    }

    struct Shard {
        var folder: String
        var record: ShardRecord
        var clips: [MediaPreparation.ManifestRow] = []
        var setAside: [MediaPreparation.SetAsideRow] = []
    }

    public func run() throws -> ShardMergeSummary {
        let shards = try readShards()
        let splits = shards[0].record.allItems.keys.sorted()

        // Every item and clip in exactly one shard; each shard accounts for its share.
        var itemOwner: [String: String] = [:]
        var clipOwner: [String: String] = [:]
        var prepared = 0
        var quarantined = 0
        var skipped = 0
        for shard in shards {
            var preparedKeys: Set<String> = []
            var quarantinedKeys: Set<String> = []
            var skippedKeys: Set<String> = []
            for clip in shard.clips {
                if let first = clipOwner.updateValue(shard.folder, forKey: clip.path) {
                    throw ShardMergeError.duplicateClip(path: clip.path, first: first, second: shard.folder)
                }
                preparedKeys.insert(Self.key(split: clip.split, source: clip.fields[12], line: clip.line))
            }
            for row in shard.setAside {
                let key = Self.key(split: row.fields[1], source: row.fields[0], line: Int(row.fields[3]) ?? 0)
                if row.outcome == .skipped { skippedKeys.insert(key) } else { quarantinedKeys.insert(key) }
            }
            quarantinedKeys.subtract(preparedKeys)
            let keys = preparedKeys.union(quarantinedKeys).union(skippedKeys)
            for key in keys.sorted() {
                if let first = itemOwner.updateValue(shard.folder, forKey: key) {
                    let parts = key.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
                    throw ShardMergeError.duplicateItem(
                        source: parts[1], split: parts[0], line: Int(parts[2]) ?? 0, first: first,
                        second: shard.folder)
                }
            }
            let accounted = preparedKeys.count + quarantinedKeys.count + skippedKeys.count
            let share = shard.record.items.values.reduce(0, +)
            guard accounted == share else {
                throw ShardMergeError.countsDoNotAdd(folder: shard.folder, accounted: accounted, items: share)
            }
            prepared += preparedKeys.count
            quarantined += quarantinedKeys.count
            skipped += skippedKeys.count
        }
        let planned = shards[0].record.allItems.values.reduce(0, +)
        guard prepared + quarantined + skipped == planned else {
            throw ShardMergeError.itemsUnaccounted(accounted: prepared + quarantined + skipped, items: planned)
        }

        try createFolder(outputDirectory)
        let lock = try FolderLock(outputDirectory + "/.prepare.lock")
        defer { lock.release() }
        // The old manifests go first: a folder whose manifest lists clips not yet linked would lie.
        for name in MediaPreparation.resultFiles(splits: splits) { unlink(outputDirectory + "/" + name) }
        var placement = (linked: 0, inPlace: 0, copied: 0)
        for shard in shards {
            for clip in shard.clips {
                switch try place(clip.path, from: shard.folder) {
                case .linked: placement.linked += 1
                case .inPlace: placement.inPlace += 1
                case .copied: placement.copied += 1
                }
            }
        }
        var written = try MediaPreparation.writeResults(
            into: outputDirectory, clips: shards.flatMap(\.clips), setAside: shards.flatMap(\.setAside),
            splits: splits)
        // Every shard read the same manifests, so its rejects files are the same: take the first's.
        let rejects = (try? FileManager.default.contentsOfDirectory(atPath: shards[0].folder)) ?? []
        for name in rejects.sorted() where name.hasPrefix("rejects-") && name.hasSuffix(".csv") {
            let target = outputDirectory + "/" + name
            unlink(target)
            do {
                try FileManager.default.copyItem(atPath: shards[0].folder + "/" + name, toPath: target)
            } catch {
                throw MediaError.cannotWrite(path: target, reason: error.localizedDescription)
            }
            written.append(name)
        }
        var clipsPerSplit: [String: Int] = [:]
        for split in splits { clipsPerSplit[split] = 0 }
        for clip in shards.flatMap(\.clips) { clipsPerSplit[clip.split, default: 0] += 1 }
        return ShardMergeSummary(
            outputDirectory: outputDirectory, shards: shards.count, itemsPerSplit: shards[0].record.allItems,
            clipsPerSplit: clipsPerSplit, itemsPrepared: prepared, itemsQuarantined: quarantined,
            itemsSkipped: skipped, linked: placement.linked, alreadyInPlace: placement.inPlace,
            copied: placement.copied, filesWritten: written)
    }

    /// The shards' records checked against each other, then their manifests read; ordered by shard.
    func readShards() throws -> [Shard] {
        guard !folders.isEmpty else { throw ShardMergeError.noFolders }
        if folders.contains(outputDirectory) { throw ShardMergeError.outputIsShard(outputDirectory) }
        var shards: [Shard] = []
        for folder in folders {
            let record = try ShardRecord.read(folder: folder)
            if let first = shards.first {
                guard record.shards == first.record.shards else {
                    throw ShardMergeError.otherShardCount(
                        folder: folder, shard: "\(record.shard)/\(record.shards)", expected: first.record.shards,
                        reference: first.folder)
                }
                guard record.plan == first.record.plan else {
                    throw ShardMergeError.otherPlan(folder: folder, reference: first.folder)
                }
            }
            if let twin = shards.first(where: { $0.record.shard == record.shard }) {
                throw ShardMergeError.sameShardTwice(
                    shard: "\(record.shard)/\(record.shards)", first: twin.folder, second: folder)
            }
            shards.append(Shard(folder: folder, record: record))
        }
        let count = shards[0].record.shards
        let missing = Set(1...count).subtracting(shards.map(\.record.shard)).sorted()
        guard missing.isEmpty else { throw ShardMergeError.missingShards(missing, count: count) }
        shards.sort { $0.record.shard < $1.record.shard }
        for index in shards.indices {
            let folder = shards[index].folder
            let manifest = try table(folder + "/manifest.csv", header: PreparedClip.header)
            shards[index].clips = manifest.records.map { record in
                MediaPreparation.ManifestRow(
                    split: record.fields[7], line: Int(record.fields[14]) ?? 0, path: record.fields[0],
                    fields: record.fields)
            }
            for (name, outcome) in [("quarantine.csv", SetAsideItem.Outcome.quarantined), ("skipped.csv", .skipped)] {
                let log = try table(folder + "/" + name, header: MediaPreparation.logHeader)
                shards[index].setAside += log.records.map {
                    MediaPreparation.SetAsideRow(outcome: outcome, fields: $0.fields)
                }
            }
        }
        return shards
    }

    /// A CSV a shard wrote, with the header and field count a prepare run writes.
    func table(_ path: String, header: [String]) throws -> CSVTable {
        let table: CSVTable
        do throws(ManifestError) {
            table = try CSVTable.read(path: path)
        } catch {
            throw ShardMergeError.unreadable(path: path, reason: error.problem)
        }
        guard table.header == header else {
            throw ShardMergeError.unreadable(path: path, reason: "its header is not prepare's")
        }
        if let bad = table.records.first(where: { $0.fields.count != header.count || $0.problem != nil }) {
            throw ShardMergeError.unreadable(path: path, reason: "line \(bad.line) is malformed")
        }
        return table
    }

    static func key(split: String, source: String, line: Int) -> String {
        split + "\u{1F}" + source + "\u{1F}" + String(line)
    }

    enum Placement { case linked, inPlace, copied }

    /// Puts the shard's clip at the same relative path under the output folder: a hard link made
    /// under a temporary name and renamed over any older file (a crash leaves no half file).
    func place(_ path: String, from folder: String) throws -> Placement {
        let source = folder + "/" + path
        let target = outputDirectory + "/" + path
        var sourceInfo = stat()
        guard stat(source, &sourceInfo) == 0 else { throw ShardMergeError.clipMissing(path: path, folder: folder) }
        var targetInfo = stat()
        if stat(target, &targetInfo) == 0, targetInfo.st_dev == sourceInfo.st_dev,
            targetInfo.st_ino == sourceInfo.st_ino
        {
            return .inPlace
        }
        let parent = (target as NSString).deletingLastPathComponent
        try createFolder(parent)
        let temporary = parent + "/." + (target as NSString).lastPathComponent + ".merge.part"
        unlink(temporary)
        var placement = Placement.linked
        if link(source, temporary) != 0 {
            guard errno == EXDEV else {
                throw ShardMergeError.cannotPlace(path: path, reason: String(cString: strerror(errno)))
            }
            do {
                try FileManager.default.copyItem(atPath: source, toPath: temporary)
            } catch {
                throw ShardMergeError.cannotPlace(path: path, reason: error.localizedDescription)
            }
            placement = .copied
        }
        guard rename(temporary, target) == 0 else {
            throw ShardMergeError.cannotPlace(path: path, reason: String(cString: strerror(errno)))
        }
        return placement
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
