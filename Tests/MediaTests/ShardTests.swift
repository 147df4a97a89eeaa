import Foundation
import Manifest
import Testing

@testable import Media

@Suite struct ShardTests {
    static func item(_ path: String, line: Int, caption: String = "캡션") -> ManifestItem {
        ManifestItem(
            line: line, path: path, mediaType: .video, resolution: Resolution(width: 1920, height: 1080), duration: 10,
            category: "축제", caption: caption)
    }

    @Test func parsesKOverN() throws {
        let shard = try PrepareShard(parsing: "2/3")
        #expect(shard.index == 2 && shard.count == 3)
        #expect(shard.description == "2/3")
        #expect(try PrepareShard(parsing: " 1 / 1 ") == PrepareShard(index: 1, count: 1))
        #expect(throws: ShardError.outOfRange(index: 4, count: 3)) { try PrepareShard(parsing: "4/3") }
        #expect(throws: ShardError.outOfRange(index: 0, count: 3)) { try PrepareShard(parsing: "0/3") }
        #expect(throws: ShardError.outOfRange(index: -1, count: 3)) { try PrepareShard(parsing: "-1/3") }
        #expect(throws: ShardError.badCount("1/0")) { try PrepareShard(parsing: "1/0") }
        for text in ["", "2", "2/", "/3", "a/b", "1/2/3", "1-3", "1.5/3"] {
            #expect(throws: ShardError.malformed(text)) { try PrepareShard(parsing: text) }
        }
    }

    /// FNV-1a 64 of "train\u{1F}a.mp4" mixed by splitmix64's finaliser is 0x922cab78a23b6128
    /// (computed with Python's integers), which is 2 mod 3 → shard 3; "val\u{1F}a.mp4" mixes to
    /// 0x9222a49004039601, 1 mod 3 → shard 2.
    @Test func theShardIsTheMixedHashOfSplitAndPath() {
        #expect(PrepareShard.mixed(StableHash.fnv1a64("train\u{1F}a.mp4")) == 0x922C_AB78_A23B_6128)
        #expect(PrepareShard.number(split: "train", path: "a.mp4", count: 3) == 3)
        #expect(PrepareShard.number(split: "val", path: "a.mp4", count: 3) == 2)
        #expect(PrepareShard.number(split: "train", path: "a.mp4", count: 1) == 1)
        // The same videos' shares of 2 (the test sources v0 … v7 of the CLI tests).
        let shares = (0..<8).map { PrepareShard.number(split: "train", path: "v\($0).mp4", count: 2) }
        #expect(shares == [2, 1, 2, 1, 2, 2, 1, 1])
    }

    @Test func sharesAreEvenAndCoverEveryItemOnce() throws {
        let paths = (0..<3000).map { "videos/clip-\($0).mp4" }
        var counts = [0, 0, 0, 0]
        for path in paths {
            let owners = try (1...4).filter { try PrepareShard(index: $0, count: 4).owns(split: "train", path: path) }
            #expect(owners.count == 1)
            counts[owners[0] - 1] += 1
        }
        // 750 each on average; a binomial's standard deviation is 24.
        #expect(counts.reduce(0, +) == 3000)
        #expect(counts.allSatisfy { abs($0 - 750) < 100 }, "\(counts)")
    }

    /// An item's shard does not depend on the row order or on the other rows (the first 40 rows
    /// reversed, without the duplicate, give each shard the same items); a duplicate whose
    /// first occurrence is in another shard is still set aside.
    @Test func sourcesOfAShardAreStableUnderReorderingAndFindDuplicatesAcrossShards() throws {
        let items = (0..<40).map { Self.item("v\($0).mp4", line: $0 + 2) }
        let manifest = makeManifest(at: "/data/train.csv", items: items + [Self.item("./v5.mp4", line: 42)])
        let reversed = makeManifest(at: "/data/train.csv", items: items.reversed())
        let input = PrepareInput(manifest: manifest, split: "train")
        var prepared: [String] = []
        var duplicates: [SetAsideItem] = []
        for index in 1...3 {
            let shard = try PrepareShard(index: index, count: 3)
            let (sources, dups) = PreparePlanner.sources([input], shard: shard)
            let (reversedSources, _) = PreparePlanner.sources(
                [PrepareInput(manifest: reversed, split: "train")], shard: shard)
            #expect(Set(sources.map(\.item.path)) == Set(reversedSources.map(\.item.path)))
            prepared += sources.map(\.item.path)
            duplicates += dups
        }
        #expect(prepared.sorted() == (0..<40).map { "v\($0).mp4" }.sorted())
        // ./v5.mp4 is shard 3's, v5.mp4 shard 1's: set aside once, by shard 3.
        #expect(PrepareShard.number(split: "train", path: "./v5.mp4", count: 3) == 3)
        #expect(PrepareShard.number(split: "train", path: "v5.mp4", count: 3) == 1)
        #expect(duplicates.map(\.line) == [42])
        #expect(duplicates.first?.reason.contains("line 7") == true)
    }

    @Test func theFingerprintFollowsInputsAndOptionsOnly() {
        let manifest = makeManifest(at: "/data/train.csv", items: [Self.item("a.mp4", line: 2)])
        let inputs = [PrepareInput(manifest: manifest, split: "train")]
        let options = PrepareOptions()
        let reference = PreparePlanner.fingerprint(inputs, options: options)
        #expect(reference.count == 16)
        var workers = options
        workers.jobs = 7
        workers.retryFailed = true
        workers.tools = MediaTools(ffmpeg: "/opt/ffmpeg", ffprobe: "/opt/ffprobe")
        workers.shard = try? PrepareShard(index: 2, count: 3)
        #expect(PreparePlanner.fingerprint(inputs, options: workers) == reference)
        var frames = options
        frames.clips.frames = 49
        #expect(PreparePlanner.fingerprint(inputs, options: frames) != reference)
        var categories = options
        categories.augmentation.categories = ["무형문화유산", "축제", "역사/사회"]
        let first = PreparePlanner.fingerprint(inputs, options: categories)
        #expect(first != reference)
        categories.augmentation.categories = ["역사/사회", "축제", "무형문화유산"]
        #expect(PreparePlanner.fingerprint(inputs, options: categories) == first)
        let caption = makeManifest(at: "/data/train.csv", items: [Self.item("a.mp4", line: 2, caption: "다른 캡션")])
        #expect(
            PreparePlanner.fingerprint([PrepareInput(manifest: caption, split: "train")], options: options) != reference
        )
        #expect(
            PreparePlanner.fingerprint([PrepareInput(manifest: manifest, split: "val")], options: options) != reference)
        let moved = makeManifest(at: "/elsewhere/train.csv", items: [Self.item("a.mp4", line: 2)])
        #expect(
            PreparePlanner.fingerprint([PrepareInput(manifest: moved, split: "train")], options: options) != reference)
    }
}
