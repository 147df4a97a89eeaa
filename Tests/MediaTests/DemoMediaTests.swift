import DemoData
import Foundation
import Manifest
import Testing

@testable import Media

/// The demo media, made at 1/8 of the archive's sizes, probed and prepared for real.
@Suite struct DemoMediaTests {
    @Test func demoFilesAreWhatTheManifestSays() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        let generator = DemoMediaGenerator(seed: 42, scale: 0.125)
        let items = try await generator.generate(into: folder.path, jobs: 2)
        #expect(items.count == 35)
        #expect(items.filter { $0.mediaType == .video }.count == 23)
        #expect(Set(items.map(\.split)) == ["train", "val"])
        #expect(items.filter { $0.split == "val" }.count == 9)
        // Captions and categories: Korean, the archive's eight categories.
        #expect(items.allSatisfy { $0.caption.unicodeScalars.contains { (0xAC00...0xD7A3).contains($0.value) } })
        #expect(Set(items.map(\.category)).count == 8)
        // The same seed gives the same captions.
        #expect(DemoMediaGenerator(seed: 42, scale: 0.125).items().map(\.caption) == items.map(\.caption))

        try Data(DemoMediaGenerator.csv(items)).write(to: URL(fileURLWithPath: folder.file("manifest.csv")))
        let manifest = try ManifestReader().read(path: folder.file("manifest.csv"))
        #expect(manifest.items.count == 35)
        #expect(manifest.rejected.isEmpty)
        let summary = try await ProbeSummary.probe(manifest: manifest, tools: MediaTools(), width: 2)
        func probe(_ path: String) -> MediaProbe? {
            guard case .success(let probe)? = summary.rows.first(where: { $0.item.path == path })?.result else {
                return nil
            }
            return probe
        }
        #expect(summary.failures.map(\.item.path) == ["videos/truncated-upload.mp4"])
        #expect(probe("videos/broadcast-news.ts")?.video?.fieldOrder == .topFirst)
        #expect(probe("videos/broadcast-news.ts")?.video?.codec == "mpeg2video")
        #expect(probe("videos/broadcast-news.ts")?.audio?.codec == "mp2")
        #expect(probe("videos/ntsc-street.mp4")?.video?.realFrameRate == Rational(30_000, 1_001))
        #expect(probe("videos/ntsc-street.mp4")?.audio?.channels == 2)
        #expect(probe("videos/phone-rotated.mp4")?.video?.rotation == 270)
        #expect(probe("videos/phone-rotated.mp4")?.video?.displaySize == Resolution(width: 90, height: 160))
        #expect(probe("videos/phone-vfr.mp4")?.video?.frameRateMode == .variable)
        #expect(probe("videos/sd-widescreen.mpg")?.video?.sampleAspectRatio == Rational(512, 405))
        #expect(probe("videos/hdv-harbour.mp4")?.video?.displaySize == Resolution(width: 240, height: 136))
        #expect(probe("images/hd-temple.jpg")?.isStillImage == true)
        #expect(probe("images/uhd-skyline.png")?.video?.width == 480)
        // Apart from the variable frame rate (stated as nominal 30 fps), every row matches its file.
        let mismatches = summary.findings.filter { $0.kind != .unreadable }
        #expect(mismatches.map(\.path) == ["videos/phone-vfr.mp4"])
        #expect(mismatches.first?.kind == .frameRate)

        // Both splits through the same pipeline.
        for split in ["train", "val"] {
            try Data(DemoMediaGenerator.csv(items, split: split)).write(
                to: URL(fileURLWithPath: folder.file(split + ".csv")))
        }
        let inputs = try ["train", "val"].map {
            PrepareInput(manifest: try ManifestReader().read(path: folder.file($0 + ".csv")), split: $0)
        }
        let options = PrepareOptions(target: .fixed(Resolution(width: 64, height: 36)), jobs: 2)
        let prepared = try await MediaPreparation(outputDirectory: folder.file("prepared"), options: options).run(
            inputs)
        #expect(prepared.items == 35)
        #expect(prepared.itemsPrepared == 34)
        #expect(prepared.quarantined.map { ($0.sourcePath as NSString).lastPathComponent } == ["truncated-upload.mp4"])
        #expect(prepared.skipped.isEmpty)
        #expect(prepared.clips.filter { $0.split == "val" }.count == 9)
        #expect(prepared.clips.filter { $0.split == "train" }.count == 25)
        // 2.5 s hold 40 frames at 16 fps: shortened to 37 (4·9+1); every other video gives 81.
        for clip in prepared.clips where clip.mediaType == .video {
            #expect(clip.frames == (clip.sourcePath.hasSuffix("short-bow.mp4") ? 37 : 81), "\(clip.sourcePath)")
        }
        let facts = try await Tool.videoFacts(
            folder.file("prepared/") + prepared.clips.first { $0.sourcePath.hasSuffix("broadcast-news.ts") }!.path)
        #expect((facts.frames, facts.width, facts.height, facts.rate) == (81, 64, 36, "16/1"))
    }
}
