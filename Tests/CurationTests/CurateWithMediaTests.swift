import Foundation
import Manifest
import Testing

@testable import Curation

/// curate on real files: an exact copy, near copies, a corrupt file, a missing file; then a
/// second run that resumes from fingerprints.jsonl and writes the same bytes.
@Suite struct CurateWithMediaTests {
    @Test func mediaRulesAndResumption() async throws {
        let folder = TemporaryFolder("curate-media")
        var items = try await MediaFixture.build(
            in: folder.path, imageFamilies: 3, unrelatedImages: 2, videoFamilies: 1, unrelatedVideos: 1)
        #expect(items.count == 19)
        // An exact byte copy of the first original, a file that is not media, a file that is not there.
        try FileManager.default.copyItem(
            atPath: folder.file("media/i0-original.png"), toPath: folder.file("media/i0-copy.png"))
        items.append(
            MediaFixture.Item(
                path: "media/i0-copy.png", type: .image, width: 320, height: 240, duration: nil, family: 1_000,
                variant: "copy"))
        try Data("this is not a JPEG".utf8).write(to: URL(fileURLWithPath: folder.file("media/broken.jpg")))
        items.append(
            MediaFixture.Item(
                path: "media/broken.jpg", type: .image, width: 320, height: 240, duration: nil, family: 1,
                variant: "broken"))
        items.append(
            MediaFixture.Item(
                path: "media/missing.jpg", type: .image, width: 320, height: 240, duration: nil, family: 2,
                variant: "missing"))
        let manifestPath = folder.file("manifest.csv")
        try MediaFixture.writeManifest(items, to: manifestPath)
        let manifest = try ManifestReader().read(path: manifestPath)

        var options = CurationOptions()
        MediaFixture.keepEverything(&options)
        options.duplicatePolicy = .drop
        let cache = folder.file("out/fingerprints.jsonl")
        try FileManager.default.createDirectory(atPath: folder.file("out"), withIntermediateDirectories: true)
        let first = try await Curator.curate(manifest, options: options, fingerprintCache: cache)
        func row(_ path: String) -> CuratedRow { first.rows.first { $0.path == path }! }

        #expect(first.summary.media.present == 20)
        #expect(first.summary.media.unreadable == 1)
        #expect(first.summary.media.missing == 1)
        #expect(first.summary.media.bytesHashed > 0)
        #expect(row("media/broken.jpg").reason == "media unreadable")
        #expect(row("media/missing.jpg").outcome != .dropped)
        #expect(row("media/missing.jpg").detail.hasPrefix("file missing"))
        // The original and its byte copy: one kept, the other dropped as an identical file.
        let pair = [row("media/i0-original.png"), row("media/i0-copy.png")]
        #expect(pair.filter { $0.outcome == .dropped }.count <= 1)
        #expect(first.summary.duplicatePairs["identical file"] == 1)
        // Each family keeps exactly one member; the others are named duplicates of it.
        for family in Set(items.filter { $0.variant != "original" && $0.family >= 1_000 }.map(\.family)) {
            let members = items.filter { $0.family == family }.map { row($0.path) }
            #expect(members.filter { $0.outcome != .dropped }.count == 1, "family \(family)")
            for member in members where member.outcome == .dropped {
                #expect(
                    ["identical file", "near duplicate"].contains(member.reason), "\(member.path): \(member.reason)")
                #expect(member.detail.contains("keeps line"))
            }
            #expect(Set(members.map(\.group)).count == 1)
        }
        // Unrelated items stay.
        for item in items
        where item.family < 1_000 || (items.filter { $0.family == item.family }.count == 1 && item.family >= 1_000) {
            if item.variant == "broken" { continue }
            #expect(row(item.path).outcome != .dropped, "\(item.path)")
        }

        // Resume: nothing is hashed again, and the outputs are the same bytes.
        let second = try await Curator.curate(manifest, options: options, fingerprintCache: cache)
        #expect(second.summary.media.reused == 21)
        #expect(second.summary.media.bytesHashed == 0)
        #expect(CurationWriter.logCSV(second) == CurationWriter.logCSV(first))
        #expect(CurationWriter.splitCSV(second, .train) == CurationWriter.splitCSV(first, .train))

        // A changed file is examined again.
        try Data("still not a JPEG, but longer".utf8).write(to: URL(fileURLWithPath: folder.file("media/broken.jpg")))
        let third = try await Curator.curate(manifest, options: options, fingerprintCache: cache)
        #expect(third.summary.media.reused == 20)
    }

    @Test func perceptualHashingWithoutFFmpegSaysHowToFixIt() async throws {
        let folder = TemporaryFolder("curate-noffmpeg")
        try Data([0xFF, 0xD8, 0xFF]).write(to: URL(fileURLWithPath: folder.file("a.jpg")))
        try Data("path,media_type,width,height,caption\na.jpg,image,640,480,한 장의 사진을 설명하는 캡션입니다.\n".utf8)
            .write(to: URL(fileURLWithPath: folder.file("m.csv")))
        let manifest = try ManifestReader().read(path: folder.file("m.csv"))
        var options = CurationOptions()
        options.ffmpeg = folder.file("no-such-ffmpeg")
        await #expect(throws: CurationError.ffmpegMissing(searched: folder.file("no-such-ffmpeg"))) {
            try await Curator.curate(manifest, options: options)
        }
        options.perceptualHash = false
        let result = try await Curator.curate(manifest, options: options)
        #expect(result.summary.media.present == 1)
        #expect(result.rows[0].outcome == .train)
    }
}
