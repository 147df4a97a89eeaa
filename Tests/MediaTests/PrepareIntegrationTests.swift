import Foundation
import Manifest
import Testing

@testable import Media

/// Real ffmpeg on tiny generated media: what `prepare` writes is checked with ffprobe and by
/// decoding pixels.
@Suite struct PrepareIntegrationTests {
    static func testsrc(_ size: String, rate: String, seconds: Double, to path: String, extra: [String] = [])
        async throws
    {
        try await Tool.ffmpeg(
            ["-f", "lavfi", "-i", "testsrc2=size=\(size):rate=\(rate)", "-t", String(seconds)] + extra
                + ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", path])
    }

    /// Writes a manifest CSV and reads it back with the real reader.
    static func manifest(_ folder: TemporaryFolder, name: String, rows: [String]) throws -> Manifest {
        let path = folder.file(name)
        try ("path,media_type,width,height,duration,category,caption\n" + rows.joined(separator: "\n") + "\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return try ManifestReader().read(path: path)
    }

    static func prepare(
        _ manifest: Manifest, split: String = "train", into out: String,
        _ configure: (inout PrepareOptions) -> Void = { _ in }
    ) async throws -> PrepareSummary {
        var options = PrepareOptions(
            target: .fixed(Resolution(width: 64, height: 48)), clips: ClipPolicy(frames: 17, minimumFrames: 5), jobs: 2)
        configure(&options)
        return try await MediaPreparation(outputDirectory: out, options: options).run([
            PrepareInput(manifest: manifest, split: split)
        ])
    }

    @Test func sizesRatesAndFrameCountsAreExact() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        try await Self.testsrc("160x120", rate: "25", seconds: 3, to: folder.file("pal.mp4"))
        try await Self.testsrc("160x90", rate: "30000/1001", seconds: 2.5, to: folder.file("ntsc.mp4"))
        try await Self.testsrc("160x120", rate: "25", seconds: 0.8, to: folder.file("short.mp4"))
        try await Tool.ffmpeg([
            "-f", "lavfi", "-i", "smptebars=size=200x100", "-frames:v", "1", folder.file("still.png"),
        ])
        let manifest = try Self.manifest(
            folder, name: "train.csv",
            rows: [
                "pal.mp4,video,160,120,3,축제,\"팔 비디오, 25 fps\"",
                "ntsc.mp4,video,160,90,2.5,역사/사회,29.97 fps 비디오",
                "short.mp4,video,160,120,0.8,자연/풍경,짧은 비디오",
                "still.png,image,200,100,,공간/건축,정지 화상",
            ])
        let out = folder.file("out")
        let summary = try await Self.prepare(manifest, into: out) { options in
            options.clips.mode = .chunk
            options.clips.clipsPerVideo = 0
        }
        // pal: 3 s → 48 frames at 16 fps → 2 clips of 17; ntsc: 2.5 s → 40 → 2 clips;
        // short: 0.8 s → 12 frames → shortened to 9; still: 1 frame.
        #expect(summary.clips.count == 6)
        #expect(summary.itemsPrepared == 4)
        #expect(summary.setAside.isEmpty)
        for clip in summary.clips {
            let facts = try await Tool.videoFacts(out + "/" + clip.path)
            #expect(facts.width == 64 && facts.height == 48, "\(clip.path)")
            #expect(facts.sar == "1:1", "\(clip.path)")
            if clip.mediaType == .video {
                #expect(facts.rate == "16/1", "\(clip.path)")
                #expect(facts.frames == clip.frames, "\(clip.path)")
                #expect((clip.frames - 1) % 4 == 0)
            } else {
                #expect(facts.frames == 1)
                #expect(clip.path.hasSuffix(".png"))
            }
        }
        let byName = Dictionary(grouping: summary.clips) { ($0.sourcePath as NSString).lastPathComponent }
        #expect(byName["pal.mp4"]?.map(\.start).sorted() == [0, 1.062])
        #expect(byName["short.mp4"]?.map(\.frames) == [9])
        // The manifest: one row per clip, readable by the manifest reader (and so by analyze).
        let written = try ManifestReader().read(path: out + "/manifest.csv")
        #expect(written.items.count == 6)
        #expect(written.rejected.isEmpty)
        #expect(Set(written.items.map(\.resolution)) == [Resolution(width: 64, height: 48)])
        #expect(written.items.contains { $0.caption == "팔 비디오, 25 fps" && $0.category == "축제" })
        #expect(
            try String(contentsOfFile: out + "/train.csv", encoding: .utf8)
                == String(contentsOfFile: out + "/manifest.csv", encoding: .utf8))
    }

    @Test func padRuleFillsWithTheLastFrame() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        try await Self.testsrc("160x120", rate: "25", seconds: 0.8, to: folder.file("short.mp4"))
        let manifest = try Self.manifest(folder, name: "val.csv", rows: ["short.mp4,video,160,120,0.8,축제,짧은 비디오"])
        let out = folder.file("out")
        let summary = try await Self.prepare(manifest, split: "val", into: out) { $0.clips.shortVideos = .pad }
        let clip = try #require(summary.clips.first)
        #expect(clip.frames == 17)
        #expect(clip.augmentation == "pad=5")
        let facts = try await Tool.videoFacts(out + "/" + clip.path)
        #expect(facts.frames == 17)
        let frames = try await Tool.greyFrames(out + "/" + clip.path, width: 64, height: 48)
        #expect(frames.count == 17)
        // The last 5 frames repeat the 12th.
        for index in 12..<17 { #expect(Tool.psnr(frames[11], frames[index]) > 45) }
        #expect(Tool.psnr(frames[10], frames[11]) < 45)
    }

    @Test func interlacedSourcesComeOutProgressive() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        // 1080i-style: 59.94 pictures per second woven into 29.97 top-field-first frames, MPEG-2 in TS.
        try await Tool.ffmpeg([
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=60000/1001", "-t", "2.2", "-vf",
            "tinterlace=mode=interleave_top,setfield=tff",
            "-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-top", "1", "-b:v", "6M", "-f", "mpegts",
            folder.file("interlaced.ts"),
        ])
        let probe = try await Prober().probe(path: folder.file("interlaced.ts")).get()
        #expect(probe.video?.fieldOrder == .topFirst)
        let manifest = try Self.manifest(folder, name: "train.csv", rows: ["interlaced.ts,video,320,240,2.2,축제,인터레이스"])
        func combedFrames(_ deinterlace: DeinterlaceMode) async throws -> (interlaced: Int, progressive: Int) {
            let out = folder.file("out-\(deinterlace.rawValue)")
            let summary = try await Self.prepare(manifest, into: out) { options in
                options.target = .fixed(Resolution(width: 320, height: 240))
                options.encode.deinterlace = deinterlace
            }
            let clip = try #require(summary.clips.first)
            #expect(try await Tool.videoFacts(out + "/" + clip.path).frames == 17)
            return try await Self.idet(out + "/" + clip.path)
        }
        let deinterlaced = try await combedFrames(.auto)
        let untouched = try await combedFrames(.off)
        // ffmpeg's idet (single-frame verdicts) finds combing in every untouched frame and in
        // almost none after bwdif (its detector misreads a frame or two of the moving pattern).
        #expect(untouched.interlaced >= 16)
        #expect(deinterlaced.progressive >= 14)
        #expect(deinterlaced.interlaced <= 3)
    }

    /// idet's single-frame verdicts: (TFF + BFF, progressive).
    static func idet(_ path: String) async throws -> (interlaced: Int, progressive: Int) {
        let result = try await Tool.run(
            "ffmpeg", ["-nostdin", "-hide_banner", "-i", path, "-vf", "idet", "-f", "null", "-"])
        guard
            let line = result.standardErrorTail.split(separator: "\n").last(where: {
                $0.contains("Single frame detection")
            })
        else {
            throw GeneralTestError("no idet line in \(result.standardErrorTail)")
        }
        func value(_ key: String) -> Int {
            guard let range = line.range(of: key + ":") else { return 0 }
            return Int(line[range.upperBound...].split(separator: " ").first ?? "") ?? 0
        }
        return (value("TFF") + value("BFF"), value("Progressive"))
    }

    @Test func rotatedSourcesComeOutUpright() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        // The upright picture: a portrait test pattern.
        try await Self.testsrc("90x160", rate: "25", seconds: 2, to: folder.file("upright.mp4"))
        // The same stored on its side (turned clockwise), with a display matrix that turns it back.
        try await Tool.ffmpeg([
            "-i", folder.file("upright.mp4"), "-vf", "transpose=clock", "-c:v", "libx264", "-preset", "ultrafast",
            folder.file("sideways.mp4"),
        ])
        try await Tool.ffmpeg([
            "-i", folder.file("sideways.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", folder.file("rotated.mp4"),
        ])
        let probe = try await Prober().probe(path: folder.file("rotated.mp4")).get()
        #expect(probe.video?.rotation == 270)
        #expect(probe.video?.displaySize == Resolution(width: 90, height: 160))
        let manifest = try Self.manifest(
            folder, name: "train.csv",
            rows: [
                "upright.mp4,video,90,160,2,축제,세로",
                "rotated.mp4,video,160,90,2,축제,회전",
                "sideways.mp4,video,160,90,2,축제,눕힘",
            ])
        let out = folder.file("out")
        let summary = try await Self.prepare(manifest, into: out) {
            $0.target = .fixed(Resolution(width: 48, height: 80))
        }
        #expect(summary.clips.count == 3)
        func frames(_ name: String) async throws -> [[UInt8]] {
            let clip = try #require(summary.clips.first { $0.sourcePath.hasSuffix("/" + name) })
            return try await Tool.greyFrames(out + "/" + clip.path, width: 48, height: 80)
        }
        let upright = try await frames("upright.mp4")
        let rotated = try await frames("rotated.mp4")
        let sideways = try await frames("sideways.mp4")
        #expect(upright.count == 17 && rotated.count == 17 && sideways.count == 17)
        for index in [0, 8, 16] {
            #expect(Tool.psnr(upright[index], rotated[index]) > 30, "frame \(index)")
            // Without the display matrix the picture lies on its side: nothing alike.
            #expect(Tool.psnr(upright[index], sideways[index]) < 20, "frame \(index)")
        }
    }

    @Test func sampleAspectRatioIsHonoured() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        try await Self.testsrc("320x180", rate: "25", seconds: 1.5, to: folder.file("square.mp4"))
        // The same picture stored anamorphic: 240 columns of 4:3-wide pixels (shown 320×180).
        try await Tool.ffmpeg([
            "-i", folder.file("square.mp4"), "-vf", "scale=240:180,setsar=4/3", "-c:v", "libx264", "-preset",
            "ultrafast", folder.file("anamorphic.mp4"),
        ])
        // The same stored pixels declared square: a 4:3 picture, which cover must crop.
        try await Tool.ffmpeg([
            "-i", folder.file("anamorphic.mp4"), "-vf", "setsar=1", "-c:v", "libx264", "-preset", "ultrafast",
            folder.file("squeezed.mp4"),
        ])
        let manifest = try Self.manifest(
            folder, name: "train.csv",
            rows: [
                "square.mp4,video,320,180,1.5,축제,정사각 화소",
                "anamorphic.mp4,video,240,180,1.5,축제,아나모픽",
                "squeezed.mp4,video,240,180,1.5,축제,찌그러짐",
            ])
        let out = folder.file("out")
        let summary = try await Self.prepare(manifest, into: out) {
            $0.target = .fixed(Resolution(width: 96, height: 54))
        }
        func first(_ name: String) async throws -> [UInt8] {
            let clip = try #require(summary.clips.first { $0.sourcePath.hasSuffix("/" + name) })
            return try #require(try await Tool.greyFrames(out + "/" + clip.path, width: 96, height: 54).first)
        }
        let square = try await first("square.mp4")
        let anamorphic = Tool.psnr(square, try await first("anamorphic.mp4"))
        let squeezed = Tool.psnr(square, try await first("squeezed.mp4"))
        #expect(anamorphic > 28, "anamorphic \(anamorphic) dB")
        // Read as square pixels the same file is cropped differently: far from the original.
        #expect(squeezed < anamorphic - 8, "squeezed \(squeezed) dB, anamorphic \(anamorphic) dB")
    }

    @Test func brokenFilesAreQuarantinedAndCounted() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        try await Self.testsrc("160x120", rate: "25", seconds: 2, to: folder.file("good.mp4"))
        // Index at the end, file cut short: ffprobe cannot read it at all.
        try await Self.testsrc("160x120", rate: "25", seconds: 2, to: folder.file("full.mp4"))
        let full = try Data(contentsOf: URL(fileURLWithPath: folder.file("full.mp4")))
        try full.prefix(full.count * 4 / 10).write(to: URL(fileURLWithPath: folder.file("truncated.mp4")))
        // Index first, media cut short: probes as 2 s but decodes only a fraction.
        try await Self.testsrc(
            "160x120", rate: "25", seconds: 2, to: folder.file("faststart.mp4"), extra: ["-movflags", "+faststart"])
        let fast = try Data(contentsOf: URL(fileURLWithPath: folder.file("faststart.mp4")))
        try fast.prefix(fast.count * 3 / 10).write(to: URL(fileURLWithPath: folder.file("cut.mp4")))
        try "not a video".write(toFile: folder.file("text.mp4"), atomically: true, encoding: .utf8)
        let manifest = try Self.manifest(
            folder, name: "train.csv",
            rows: [
                "good.mp4,video,160,120,2,축제,좋은 파일",
                "truncated.mp4,video,160,120,2,축제,잘린 파일",
                "cut.mp4,video,160,120,2,축제,뒤가 잘린 파일",
                "text.mp4,video,160,120,2,축제,글자 파일",
                "missing.mp4,video,160,120,2,축제,없는 파일",
            ])
        let out = folder.file("out")
        let summary = try await Self.prepare(manifest, into: out)
        #expect(summary.itemsPrepared == 1)
        #expect(summary.itemsQuarantined == 4)
        #expect(summary.items == summary.itemsPrepared + summary.itemsQuarantined + summary.itemsSkipped)
        let reasons = Dictionary(
            uniqueKeysWithValues: summary.quarantined.map { (($0.sourcePath as NSString).lastPathComponent, $0) })
        #expect(reasons["truncated.mp4"]?.stage == "probe")
        #expect(reasons["truncated.mp4"]?.reason.contains("moov atom not found") == true)
        #expect(reasons["text.mp4"]?.stage == "probe")
        #expect(reasons["missing.mp4"]?.reason.contains("file not found") == true)
        let cut = try #require(reasons["cut.mp4"])
        #expect(cut.stage == "encode")
        #expect(cut.reason.contains("of 17 frames") || cut.reason.contains("ffmpeg failed"))
        #expect(!cut.detail.isEmpty || cut.reason.contains("of 17 frames"))
        // quarantine.csv lists them all; nothing half-written stays.
        let quarantine = try CSVRows.read(out + "/quarantine.csv")
        #expect(quarantine.count == 5)
        #expect(
            quarantine.dropFirst().map { ($0[0] as NSString).lastPathComponent }.sorted() == [
                "cut.mp4", "missing.mp4", "text.mp4", "truncated.mp4",
            ])
        #expect(!TemporaryFolder.files(in: out).contains { $0.hasSuffix(".part") })
        // A second run does not encode the failed clip again.
        let again = try await Self.prepare(manifest, into: out)
        #expect(again.report.encoded == 0)
        #expect(again.report.reused == 1)
        #expect(again.itemsQuarantined == 4)
    }

    @Test func horizontalFlipMirrorsTheClip() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        try await Self.testsrc("160x120", rate: "25", seconds: 1.5, to: folder.file("rare.mp4"))
        let manifest = try Self.manifest(folder, name: "train.csv", rows: ["rare.mp4,video,160,120,1.5,무형문화유산,드문 범주"])
        let out = folder.file("out")
        let summary = try await Self.prepare(manifest, into: out) { options in
            options.augmentation = AugmentationPolicy(categories: ["무형문화유산"], kinds: [.hflip], copies: 1)
        }
        #expect(summary.clips.count == 2)
        let base = try #require(summary.clips.first { $0.augmentation.isEmpty })
        let flipped = try #require(summary.clips.first { $0.augmentation == "hflip" })
        #expect(flipped.path.hasSuffix(".aug1.mp4"))
        let a = try await Tool.greyFrames(out + "/" + base.path, width: 64, height: 48)
        let b = try await Tool.greyFrames(out + "/" + flipped.path, width: 64, height: 48)
        func mirrored(_ frame: [UInt8]) -> [UInt8] {
            (0..<48).flatMap { row in frame[row * 64..<(row + 1) * 64].reversed() }
        }
        #expect(Tool.psnr(mirrored(a[0]), b[0]) > 35)
        #expect(Tool.psnr(a[0], b[0]) < 25)
    }

    @Test func weightColumnIsCarriedAndSelectsAugmentation() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        for name in ["common", "rare"] {
            try await Tool.ffmpeg([
                "-f", "lavfi", "-i", "testsrc2=size=160x120", "-frames:v", "1", folder.file(name + ".png"),
            ])
        }
        // As curate writes it: an extra weight column after the canonical ones.
        try
            ("path,media_type,width,height,duration,category,caption,weight\n"
            + "common.png,image,160,120,,생활/문화,흔한 범주,1.0\n"
            + "rare.png,image,160,120,,무형문화유산,드문 범주,3.5\n").write(
                toFile: folder.file("train.csv"), atomically: true, encoding: .utf8)
        let manifest = try ManifestReader().read(path: folder.file("train.csv"))
        let out = folder.file("out")
        let summary = try await Self.prepare(manifest, into: out) { options in
            options.augmentation = AugmentationPolicy(
                minimumWeight: 3, kinds: [.hflip, .color, .reverse, .speed], copies: 1)
        }
        #expect(summary.clips.count == 3)
        #expect(summary.clips.filter { $0.sourcePath.hasSuffix("common.png") }.map(\.weight) == [1])
        let rare = summary.clips.filter { $0.sourcePath.hasSuffix("rare.png") }
        #expect(rare.map(\.weight) == [3.5, 3.5])
        let augmented = try #require(rare.first { !$0.augmentation.isEmpty })
        // An image gets no time transforms.
        #expect(!augmented.augmentation.contains("reverse") && !augmented.augmentation.contains("speed"))
        let rows = try CSVRows.read(out + "/manifest.csv")
        let weightColumn = try #require(rows[0].firstIndex(of: "weight"))
        #expect(rows.dropFirst().map { $0[weightColumn] }.sorted() == ["1", "3.5", "3.5"])
    }

    @Test func bucketsFollowEachSourcesShape() async throws {
        let folder = TemporaryFolder()
        defer { folder.remove() }
        try await Self.testsrc("160x120", rate: "25", seconds: 1.5, to: folder.file("four-three.mp4"))
        try await Self.testsrc("90x160", rate: "25", seconds: 1.5, to: folder.file("vertical.mp4"))
        let manifest = try Self.manifest(
            folder, name: "train.csv",
            rows: [
                "four-three.mp4,video,160,120,1.5,축제,4:3", "vertical.mp4,video,90,160,1.5,축제,세로",
            ])
        let out = folder.file("out")
        let summary = try await Self.prepare(manifest, into: out) {
            $0.target = .buckets(AspectBuckets(pixelBudget: 64 * 48, step: 16))
        }
        for clip in summary.clips {
            let facts = try await Tool.videoFacts(out + "/" + clip.path)
            #expect((facts.width, facts.height) == (clip.size.width, clip.size.height))
        }
        #expect(
            summary.clips.first { $0.sourcePath.hasSuffix("four-three.mp4") }?.size == Resolution(width: 64, height: 48)
        )
        // 9:16 → 48×64 (0.75) is nearer than 32×96 (0.33) on a log scale.
        #expect(
            summary.clips.first { $0.sourcePath.hasSuffix("vertical.mp4") }?.size == Resolution(width: 48, height: 64))
    }
}

extension TemporaryFolder {
    static func files(in path: String) -> [String] {
        (FileManager.default.enumerator(atPath: path)?.allObjects as? [String]) ?? []
    }
}

/// Reads RFC 4180 CSV (quoted fields with commas, quotes and line breaks) for assertions.
enum CSVRows {
    static func read(_ path: String) throws -> [[String]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var rows: [[String]] = []
        var fields: [String] = []
        var field = ""
        var quoted = false
        var characters = Array(text)[...]
        while let character = characters.popFirst() {
            if quoted {
                if character == "\"" {
                    if characters.first == "\"" {
                        field.append("\"")
                        characters = characters.dropFirst()
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(character)
                }
            } else if character == "\"" {
                quoted = true
            } else if character == "," {
                fields.append(field)
                field = ""
            } else if character == "\n" {
                fields.append(field)
                rows.append(fields)
                fields = []
                field = ""
            } else {
                field.append(character)
            }
        }
        if !field.isEmpty || !fields.isEmpty {
            fields.append(field)
            rows.append(fields)
        }
        return rows
    }
}
