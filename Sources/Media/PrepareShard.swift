import Foundation
import Manifest
import Support

/// Shard `index` of `count` of a prepare run: the items whose key hashes to it.
///
/// An item's shard depends only on its split and its `path` as the manifest writes it (FNV-1a 64
/// of `SPLIT` + U+001F + `PATH`, mixed by splitmix64's finaliser, modulo the count, plus 1): not on
/// the row's position, the other rows, the machine or any timing. Reordering a manifest, or adding
/// rows to it, leaves every other item in its shard. The shares are even on average (a hash, not a
/// round-robin), within a few percent for thousands of items.
public struct PrepareShard: Sendable, Equatable, CustomStringConvertible {
    /// 1 ... count (Slurm's array task ids for `--array=1-N`).
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws(ShardError) {
        guard count >= 1 else { throw .badCount("\(index)/\(count)") }
        guard (1...count).contains(index) else { throw .outOfRange(index: index, count: count) }
        self.index = index
        self.count = count
    }

    /// Parses `K/N`, e.g. `2/3`.
    public init(parsing text: String) throws(ShardError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0].trimmingCharacters(in: .whitespaces)),
            let count = Int(parts[1].trimmingCharacters(in: .whitespaces))
        else { throw .malformed(text) }
        try self.init(index: index, count: count)
    }

    public var description: String { "\(index)/\(count)" }

    /// Whether this shard prepares the item at `path` (as written in the manifest) of `split`.
    public func owns(split: String, path: String) -> Bool {
        Self.number(split: split, path: path, count: count) == index
    }

    /// The shard (1 ... count) of the item at `path` of `split`.
    public static func number(split: String, path: String, count: Int) -> Int {
        Int(mixed(StableHash.fnv1a64(split + "\u{1F}" + path)) % UInt64(count)) + 1
    }

    /// splitmix64's finaliser: FNV-1a's low bits follow the last bytes (modulo 2 it is the parity
    /// of the bytes' low bits, so `v0` … `v9` would alternate), and a modulus reads the low bits.
    static func mixed(_ hash: UInt64) -> UInt64 {
        var z = hash
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A `--shard` value that names no shard.
public enum ShardError: ActionableError, Equatable {
    case malformed(String)
    case badCount(String)
    case outOfRange(index: Int, count: Int)

    public var problem: String {
        switch self {
        case .malformed(let text): "--shard \(text.isEmpty ? "\"\"" : text) is not K/N"
        case .badCount(let text): "--shard \(text): the number of shards N must be at least 1"
        case .outOfRange(let index, let count):
            "--shard \(index)/\(count): shards are numbered 1 to \(count), so \(index) names none of them"
        }
    }

    public var remedy: String {
        "give this shard's number and the number of shards, counted from 1: --shard 1/3, --shard 2/3 and "
            + "--shard 3/3 split the items in three (on Slurm: --shard \"$SLURM_ARRAY_TASK_ID\"/3 with --array=1-3)"
    }
}

/// `shard.json`: what a finished shard folder holds, for `prepare --merge` to check.
///
/// Written when the shard's run ends, beside its manifest (and removed when a run starts), so a
/// folder with it is a finished shard. `plan` is the fingerprint of everything that decides the
/// items and their clips (the manifests read, their order, splits and paths, and every option but
/// `--jobs`, `--retry-failed` and the tool paths): shards of one run have the same one.
public struct ShardRecord: Codable, Sendable, Equatable {
    public static let fileName = "shard.json"
    public static let currentFormat = "wanlora-prepare-shard/1"

    public var format: String
    public var shard: Int
    public var shards: Int
    public var plan: String
    /// What `plan` was computed from, readable: the manifests (absolute) and their splits.
    public var manifests: [String]
    /// Items of this shard, per split.
    public var items: [String: Int]
    /// Items of all shards together, per split.
    public var allItems: [String: Int]

    enum CodingKeys: String, CodingKey {
        case format, shard, shards, plan, manifests, items
        case allItems = "all_items"
    }

    public static func read(folder: String) throws(ShardMergeError) -> ShardRecord {
        let path = folder + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: folder)
            throw exists ? .unfinished(folder: folder) : .missingFolder(folder)
        }
        guard let record = try? JSONDecoder().decode(ShardRecord.self, from: data), record.format == currentFormat
        else { throw .unreadable(path: path, reason: "not a \(currentFormat) record") }
        return record
    }

    func write(folder: String) throws(MediaError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let path = folder + "/" + Self.fileName
        do {
            try (encoder.encode(self) + Data("\n".utf8)).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .cannotWrite(path: path, reason: error.localizedDescription)
        }
    }
}

extension PreparePlanner {
    /// The fingerprint of a prepare plan: the inputs (order, split, absolute manifest path and every
    /// accepted row: its line, parsed values and raw fields) and the options that decide clips, names and bytes.
    /// Canonical text hashed with FNV-1a 64; sets are sorted (Swift's set order changes per process).
    public static func fingerprint(_ inputs: [PrepareInput], options: PrepareOptions) -> String {
        var hash = StableHash.fnv1a64("")
        func mix(_ text: String) { hash = StableHash.fnv1a64(text, from: hash ^ 0x1F) }
        let augment = options.augmentation
        mix("\(options.target)|\(options.clips)|\(options.encode)")
        mix(
            "augment:\(augment.categories.sorted())|\(augment.minimumWeight.map { "\($0)" } ?? "-")|"
                + "\(augment.kinds.map(\.rawValue).sorted())|\(augment.copies)|\(augment.seed)")
        for input in inputs {
            mix("input:\(input.split)|\(PathMath.absolute(input.manifest.source))|\(input.manifest.items.count)")
            for item in input.manifest.items {
                mix(
                    "\(item.line)|\(item.id ?? "")|\(item.path)|\(item.mediaType.rawValue)|\(item.resolution.ascii)|"
                        + "\(item.duration.map { "\($0)" } ?? "")|\(item.fps.map { "\($0)" } ?? "")|\(item.category)|"
                        + item.caption + "|" + item.fields.joined(separator: "\u{1F}"))
            }
        }
        return StableHash.hex(hash)
    }
}
