import Foundation
import Manifest
import Testing

@testable import Media

@Suite struct PreparePlannerTests {
    static func item(
        _ path: String, _ type: MediaType = .video, line: Int, duration: Double? = 10, category: String = "축제"
    ) -> ManifestItem {
        ManifestItem(
            line: line, path: path, mediaType: type, resolution: Resolution(width: 1920, height: 1080),
            duration: type == .video ? duration : nil, category: category, caption: "캡션")
    }

    static let hd = VideoStreamInfo(
        codec: "h264", width: 1920, height: 1080, realFrameRate: Rational(25, 1), averageFrameRate: Rational(25, 1))

    @Test func splitNamesFromFileNames() {
        #expect(PrepareInput.splitName(forManifest: "/data/all_train.csv") == "train")
        #expect(PrepareInput.splitName(forManifest: "curated/val.csv") == "val")
        #expect(PrepareInput.splitName(forManifest: "validation.jsonl") == "val")
        #expect(PrepareInput.splitName(forManifest: "mbc-test-2024.csv") == "test")
        #expect(PrepareInput.splitName(forManifest: "all_data.csv") == "all_data")
        // "training" is a word; "retrain" is not "train".
        #expect(PrepareInput.splitName(forManifest: "training-set.csv") == "train")
        #expect(PrepareInput.splitName(forManifest: "retrain.csv") == "retrain")
    }

    @Test func everyItemEndsInOnePlace() {
        let a = makeManifest(
            at: "/data/a/train.csv",
            items: [
                Self.item("v1.mp4", line: 2), Self.item("short.mp4", line: 3, duration: 0.5),
                Self.item("broken.mp4", line: 4),
                Self.item("p.jpg", .image, line: 5), Self.item("long.mp4", line: 6, duration: 30),
            ])
        // The same file again in the same split (from a second manifest), and the same relative
        // path in another folder.
        let b = makeManifest(
            at: "/data/b/more_train.csv", items: [Self.item("../a/v1.mp4", line: 2), Self.item("v1.mp4", line: 3)])
        let (sources, duplicates) = PreparePlanner.sources([
            PrepareInput(manifest: a, split: "train"), PrepareInput(manifest: b, split: "train"),
        ])
        #expect(sources.count == 6)
        #expect(duplicates.count == 1)
        #expect(duplicates[0].line == 2 && duplicates[0].reason.contains("line 2"))
        var probes: [String: Result<MediaProbe, ProbeFailure>] = [:]
        for source in sources {
            let name = (source.absolutePath as NSString).lastPathComponent
            switch name {
            case "broken.mp4":
                probes[source.absolutePath] = .failure(ProbeFailure(kind: .unreadable, message: "moov atom not found"))
            case "p.jpg":
                probes[source.absolutePath] = .success(
                    MediaProbe(formatName: "image2", duration: 0.04, video: Self.hd, audio: nil))
            default:
                probes[source.absolutePath] = .success(
                    MediaProbe(formatName: "mov,mp4", duration: source.item.duration, video: Self.hd, audio: nil))
            }
        }
        var options = PrepareOptions()
        options.clips.mode = .chunk
        options.clips.clipsPerVideo = 3
        let (clips, setAside) = PreparePlanner.plan(sources: sources, probes: probes, options: options)
        // v1 (10 s) → 1 clip, long (30 s) → 3 (capped), p.jpg → 1, /data/b/v1.mp4 → 1.
        #expect(clips.count == 6)
        #expect(Set(clips.map(\.job.output)).count == 6)
        #expect(setAside.map(\.outcome) == [.skipped, .quarantined])
        #expect(setAside[0].reason.contains("0.5 s"))
        #expect(setAside[1].stage == "probe" && setAside[1].reason == "moov atom not found")
        let image = clips.first { $0.isImage }!
        #expect(image.job.output.hasSuffix(".png") && !image.job.output.contains(".c0"))
        #expect(image.job.command.expectedFrames == 1)
        // Same manifest path, different files: different outputs.
        let sameName = clips.filter { ($0.source.item.path as NSString).lastPathComponent == "v1.mp4" }
        #expect(sameName.count == 2)
        #expect(sameName[0].job.output != sameName[1].job.output)
        let long = clips.filter { $0.source.item.path == "long.mp4" }
        #expect(long.map { String($0.job.output.suffix(7)) } == [".c0.mp4", ".c1.mp4", ".c2.mp4"])
        #expect(long.allSatisfy { $0.job.output.hasPrefix("train/") })
    }

    @Test func speedUpsThatRunPastTheEndAreDropped() {
        let manifest = makeManifest(
            at: "/data/train.csv", items: [Self.item("rare.mp4", line: 2, duration: 5.1, category: "무형문화유산")])
        let (sources, _) = PreparePlanner.sources([PrepareInput(manifest: manifest, split: "train")])
        let probes: [String: Result<MediaProbe, ProbeFailure>] = [
            sources[0].absolutePath: .success(MediaProbe(formatName: "mp4", duration: 5.1, video: Self.hd, audio: nil))
        ]
        var options = PrepareOptions()
        options.augmentation = AugmentationPolicy(categories: ["무형문화유산"], kinds: [.speed, .hflip], copies: 12)
        let (clips, _) = PreparePlanner.plan(sources: sources, probes: probes, options: options)
        // 5.1 s holds one 5.0625 s clip at normal speed; any speed-up (≥ 1.05×) would need more.
        #expect(clips.count > 1)
        for clip in clips where !clip.augmentation.isIdentity {
            #expect(clip.augmentation.speed <= 1, "\(clip.augmentation.label)")
        }
        #expect(clips.contains { $0.augmentation.speed < 1 })
    }

    @Test func bucketsPickASizePerSource() {
        let manifest = makeManifest(
            at: "/data/train.csv", items: [Self.item("wide.mp4", line: 2), Self.item("tall.mp4", line: 3)])
        let (sources, _) = PreparePlanner.sources([PrepareInput(manifest: manifest, split: "train")])
        let tall = VideoStreamInfo(codec: "h264", width: 1080, height: 1920)
        let probes: [String: Result<MediaProbe, ProbeFailure>] = [
            sources[0].absolutePath: .success(MediaProbe(formatName: "mp4", duration: 10, video: Self.hd, audio: nil)),
            sources[1].absolutePath: .success(MediaProbe(formatName: "mp4", duration: 10, video: tall, audio: nil)),
        ]
        var options = PrepareOptions()
        options.target = .buckets(AspectBuckets(pixelBudget: 832 * 480))
        let sizes = PreparePlanner.plan(sources: sources, probes: probes, options: options).clips.map(
            \.job.command.size)
        #expect(sizes == [Resolution(width: 832, height: 480), Resolution(width: 480, height: 832)])
    }

    @Test func oneRunPerFolder() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        let held = try FolderLock(folder.file(".prepare.lock"))
        let preparation = MediaPreparation(outputDirectory: folder.path, options: PrepareOptions())
        await #expect(throws: MediaError.busy(folder: folder.path)) { try await preparation.run([]) }
        held.release()
        let summary = try await preparation.run([])
        #expect(summary.planned == 0)
        #expect(summary.filesWritten.contains("manifest.csv"))
    }
}
