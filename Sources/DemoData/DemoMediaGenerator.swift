import Foundation
import Manifest
import Media
import Support

/// The built-in demo dataset with real media: short videos and images made with ffmpeg's test
/// sources at the archive's sizes, including the awkward cases of a broadcast archive (1080i
/// MPEG-2 transport streams, 29.97 fps H.264 with audio, anamorphic SD, a rotated phone video,
/// variable frame rate, a video shorter than one clip, a truncated file), with Korean captions and
/// the archive's categories. Small enough for `make demo` to run end to end in minutes on 2 cores.
public struct DemoMediaGenerator: Sendable {
    public var seed: UInt64
    /// 1 gives the archive's real sizes; tests use 1/8 to stay fast.
    public var scale: Double
    public var tools: MediaTools

    public init(seed: UInt64 = 42, scale: Double = 1, tools: MediaTools = MediaTools()) {
        self.seed = seed
        self.scale = scale
        self.tools = tools
    }

    public static let header = [
        "id", "path", "media_type", "width", "height", "duration", "fps", "category", "caption", "note",
    ]

    /// How a demo file is encoded.
    public enum Recipe: String, Sendable {
        /// H.264 in MP4, progressive.
        case h264
        /// H.264 in MP4 with an AAC stereo track.
        case h264WithAudio
        /// 1080i: fields of a 59.94 fps source woven top-field-first, MPEG-2 in a transport stream with MP2 audio.
        case interlacedTransportStream
        /// MPEG-2 program stream flagged 16:9 (anamorphic pixels).
        case anamorphicProgramStream
        /// Stored on its side; the display matrix turns it upright.
        case rotated
        /// Frames dropped irregularly and timestamps kept: variable frame rate.
        case variableFrameRate
        /// Cut to 40% of its bytes: the MP4 index (at the end) is gone.
        case truncated
        /// One frame as JPEG or PNG (by the file extension).
        case still
    }

    /// One demo file and its manifest row.
    public struct Item: Sendable {
        public var id: String
        public var path: String
        public var mediaType: MediaType
        /// Size as the manifest states it: the displayed size (a rotated video is listed upright).
        public var width: Int
        public var height: Int
        public var duration: Double?
        /// Nominal frames per second (`30000/1001` for 29.97).
        public var rate: String?
        public var category: String
        public var caption: String
        public var split: String
        public var recipe: Recipe
        /// The lavfi source, without size and rate.
        public var source: String
        /// Stored size (before rotation and sample aspect ratio).
        public var storedWidth: Int
        public var storedHeight: Int
        /// What this file demonstrates.
        public var note: String

        var fields: [String] {
            [
                id, path, mediaType.rawValue, String(width), String(height),
                duration.map { String(format: "%.2f", $0) } ?? "",
                rate.map(Self.decimalRate) ?? "", category, caption, note,
            ]
        }

        static func decimalRate(_ rate: String) -> String {
            guard let value = Rational(parsing: rate)?.value else { return rate }
            return value == value.rounded() ? String(Int(value)) : String(format: "%.3f", value)
        }
    }

    struct Spec {
        var name: String
        var recipe: Recipe
        var source: String
        var width: Int
        var height: Int
        var rate: String
        var seconds: Double
        var category: String
        var split: String
        var note: String
    }

    /// The demo files: 23 videos and 12 images; 26 in train, 9 in val. Sources with randomness (gradients,
    /// cellauto, life) get fixed colours, positions and seeds, so that two demo runs make the same files.
    static let specs: [Spec] = [
        // 1920×1080 progressive, the archive's most common size (77.78%).
        Spec(
            name: "videos/hd-market.mp4", recipe: .h264, source: "testsrc2", width: 1920, height: 1080, rate: "25",
            seconds: 6.5, category: "생활/문화", split: "train", note: "1080p25 H.264"),
        Spec(
            name: "videos/hd-bars.mp4", recipe: .h264, source: "smptehdbars", width: 1920, height: 1080, rate: "25",
            seconds: 5.5, category: "역사/사회", split: "train", note: "1080p25 H.264, still picture"),
        Spec(
            name: "videos/hd-fractal.mp4", recipe: .h264, source: "mandelbrot", width: 1920, height: 1080, rate: "25",
            seconds: 6, category: "자연/풍경", split: "val", note: "1080p25 H.264, zooming fractal"),
        Spec(
            name: "videos/hd-gradient.mp4", recipe: .h264,
            source: "gradients=c0=0x2040a0:c1=0xe0a040:x0=0:y0=0:x1=1919:y1=1079:nb_colors=2:speed=0.03:seed=7",
            width: 1920, height: 1080, rate: "25", seconds: 5.5, category: "공간/건축", split: "train",
            note: "1080p25 H.264, moving gradient"),
        // 29.97 fps H.264 with audio.
        Spec(
            name: "videos/ntsc-street.mp4", recipe: .h264WithAudio, source: "testsrc2", width: 1920, height: 1080,
            rate: "30000/1001", seconds: 6, category: "사건/사고", split: "train", note: "1080p29.97 H.264 + AAC"),
        Spec(
            name: "videos/ntsc-festival.mp4", recipe: .h264WithAudio, source: "testsrc2", width: 1920, height: 1080,
            rate: "30000/1001", seconds: 5.5, category: "축제", split: "val", note: "1080p29.97 H.264 + AAC"),
        // 1080i broadcast masters.
        Spec(
            name: "videos/broadcast-news.ts", recipe: .interlacedTransportStream, source: "testsrc2", width: 1920,
            height: 1080, rate: "30000/1001", seconds: 6, category: "역사/사회", split: "train",
            note: "1080i29.97 MPEG-2 TS, top field first + MP2"),
        Spec(
            name: "videos/broadcast-ritual.ts", recipe: .interlacedTransportStream, source: "testsrc2", width: 1920,
            height: 1080, rate: "30000/1001", seconds: 5.5, category: "무형문화유산", split: "val",
            note: "1080i29.97 MPEG-2 TS, top field first + MP2"),
        // 720×512 SD (15.52%), one anamorphic 16:9.
        Spec(
            name: "videos/sd-village.mp4", recipe: .h264, source: "rgbtestsrc", width: 720, height: 512, rate: "25",
            seconds: 6, category: "생활/문화", split: "train", note: "720×512 H.264"),
        Spec(
            name: "videos/sd-cells.mp4", recipe: .h264, source: "cellauto=rule=110:seed=7", width: 720, height: 512,
            rate: "25", seconds: 5.5, category: "자연/풍경", split: "train", note: "720×512 H.264, cellular automaton"),
        Spec(
            name: "videos/sd-widescreen.mpg", recipe: .anamorphicProgramStream, source: "testsrc2", width: 720,
            height: 512, rate: "25", seconds: 6, category: "유형문화유산", split: "train",
            note: "720×512 MPEG-2 PS flagged 16:9 (512:405 pixels)"),
        // 1280×720 (5.86%).
        Spec(
            name: "videos/hd720-life.mp4", recipe: .h264,
            source: "life=mold=10:ratio=0.5:death_color=#102040:life_color=#40e0a0:seed=7", width: 1280, height: 720,
            rate: "30", seconds: 6, category: "자연/풍경", split: "train", note: "720p30 H.264"),
        Spec(
            name: "videos/hd720-palace.mp4", recipe: .h264, source: "testsrc2", width: 1280, height: 720, rate: "30",
            seconds: 5.5, category: "공간/건축", split: "val", note: "720p30 H.264"),
        Spec(
            name: "videos/hd720-long.mp4", recipe: .h264, source: "testsrc2", width: 1280, height: 720, rate: "25",
            seconds: 12, category: "생활/문화", split: "train", note: "720p25 H.264, 12 s: two clips in chunk mode"),
        // Other sizes (0.84%): vertical, HDV, NTSC SD.
        Spec(
            name: "videos/vertical-dance.mp4", recipe: .h264, source: "testsrc2", width: 1080, height: 1920, rate: "30",
            seconds: 6, category: "축제", split: "train", note: "1080×1920 vertical H.264"),
        Spec(
            name: "videos/vertical-craft.mp4", recipe: .h264, source: "mandelbrot", width: 1080, height: 1920,
            rate: "30", seconds: 5.5, category: "무형문화유산", split: "train", note: "1080×1920 vertical H.264"),
        Spec(
            name: "videos/hdv-harbour.mp4", recipe: .h264, source: "testsrc2,setsar=4/3", width: 1440, height: 1080,
            rate: "30000/1001", seconds: 6, category: "자연/풍경", split: "train",
            note: "1440×1080 HDV, 4:3 pixels shown 1920×1080"),
        Spec(
            name: "videos/ntsc-sd.mp4", recipe: .h264, source: "smptebars", width: 720, height: 480, rate: "30000/1001",
            seconds: 5.5, category: "역사/사회", split: "val", note: "720×480 29.97 fps H.264"),
        // Phone-style files.
        Spec(
            name: "videos/phone-rotated.mp4", recipe: .rotated, source: "testsrc2", width: 720, height: 1280,
            rate: "30", seconds: 6, category: "사건/사고", split: "train", note: "stored 1280×720 with a 90° display matrix"
        ),
        Spec(
            name: "videos/phone-vfr.mp4", recipe: .variableFrameRate, source: "testsrc2", width: 1280, height: 720,
            rate: "30", seconds: 6.5, category: "축제", split: "train",
            note: "variable frame rate (frames dropped irregularly)"),
        // Edge cases.
        Spec(
            name: "videos/short-bow.mp4", recipe: .h264, source: "testsrc2", width: 1920, height: 1080, rate: "25",
            seconds: 2.5, category: "유형문화유산", split: "train", note: "2.5 s: shorter than one 81-frame clip"),
        Spec(
            name: "videos/truncated-upload.mp4", recipe: .truncated, source: "testsrc2", width: 1920, height: 1080,
            rate: "25", seconds: 6, category: "생활/문화", split: "train", note: "truncated: the MP4 index is missing"),
        Spec(
            name: "videos/ntsc-parade.mp4", recipe: .h264WithAudio, source: "testsrc2", width: 1920, height: 1080,
            rate: "30000/1001", seconds: 6, category: "축제", split: "train", note: "1080p29.97 H.264 + AAC"),
        // Images: half of the archive.
        Spec(
            name: "images/hd-temple.jpg", recipe: .still, source: "testsrc2", width: 1920, height: 1080, rate: "1",
            seconds: 0, category: "공간/건축", split: "train", note: "1920×1080 JPEG"),
        Spec(
            name: "images/hd-bars.jpg", recipe: .still, source: "smptehdbars", width: 1920, height: 1080, rate: "1",
            seconds: 0, category: "역사/사회", split: "train", note: "1920×1080 JPEG"),
        Spec(
            name: "images/hd-fractal.jpg", recipe: .still, source: "mandelbrot", width: 1920, height: 1080, rate: "1",
            seconds: 0, category: "자연/풍경", split: "val", note: "1920×1080 JPEG"),
        Spec(
            name: "images/hd-gradient.jpg", recipe: .still,
            source: "gradients=c0=0x2040a0:c1=0xe0a040:c2=0x40e0a0:x0=0:y0=0:x1=1919:y1=1079:nb_colors=3:seed=7",
            width: 1920, height: 1080, rate: "1", seconds: 0, category: "생활/문화", split: "train",
            note: "1920×1080 JPE"
                + "G"),
        Spec(
            name: "images/hd-cells.jpg", recipe: .still, source: "cellauto=rule=30:seed=7", width: 1920, height: 1080,
            rate: "1", seconds: 0, category: "축제", split: "train", note: "1920×1080 JPEG"),
        Spec(
            name: "images/sd-pottery.png", recipe: .still, source: "testsrc2", width: 720, height: 512, rate: "1",
            seconds: 0, category: "유형문화유산", split: "train", note: "720×512 PNG"),
        Spec(
            name: "images/sd-mask.png", recipe: .still, source: "rgbtestsrc", width: 720, height: 512, rate: "1",
            seconds: 0, category: "무형문화유산", split: "val", note: "720×512 PNG"),
        Spec(
            name: "images/hd720-gate.jpg", recipe: .still, source: "testsrc2", width: 1280, height: 720, rate: "1",
            seconds: 0, category: "공간/건축", split: "train", note: "1280×720 JPEG"),
        Spec(
            name: "images/hd720-road.jpg", recipe: .still, source: "smptebars", width: 1280, height: 720, rate: "1",
            seconds: 0, category: "사건/사고", split: "train", note: "1280×720 JPEG"),
        Spec(
            name: "images/vertical-poster.jpg", recipe: .still, source: "testsrc2", width: 1080, height: 1920,
            rate: "1", seconds: 0, category: "축제", split: "val", note: "1080×1920 JPEG"),
        Spec(
            name: "images/hdv-hall.jpg", recipe: .still, source: "testsrc2", width: 1440, height: 1080, rate: "1",
            seconds: 0, category: "역사/사회", split: "train", note: "1440×1080 JPEG"),
        Spec(
            name: "images/uhd-skyline.png", recipe: .still, source: "testsrc2", width: 3840, height: 2160, rate: "1",
            seconds: 0, category: "자연/풍경", split: "val", note: "3840×2160 PNG"),
    ]

    /// The items, with captions drawn for `seed` (deterministic).
    public func items() -> [Item] {
        var random = SeededRandom(seed: seed ^ 0x4D45_4449_41)
        let captions = CaptionGenerator()
        return Self.specs.enumerated().map { index, spec in
            let isImage = spec.recipe == .still
            let (storedWidth, storedHeight) =
                spec.recipe == .rotated
                ? (scaled(spec.height), scaled(spec.width)) : (scaled(spec.width), scaled(spec.height))
            let words = 35 + random.below(50)
            return Item(
                id: String(format: "demo-%03d", index + 1), path: spec.name, mediaType: isImage ? .image : .video,
                width: scaled(spec.width), height: scaled(spec.height), duration: isImage ? nil : spec.seconds,
                rate: isImage ? nil : spec.rate, category: spec.category,
                caption: captions.caption(words: words, random: &random),
                split: spec.split, recipe: spec.recipe, source: spec.source, storedWidth: storedWidth,
                storedHeight: storedHeight, note: spec.note)
        }
    }

    /// Sizes shrink with `scale` (rounded to even numbers, at least 16 px).
    func scaled(_ pixels: Int) -> Int {
        max(16, Int((Double(pixels) * scale / 2).rounded()) * 2)
    }

    /// The ffmpeg runs that make one item (without the `ffmpeg` itself), in order.
    public func commands(for item: Item, in folder: String) -> [[String]] {
        let output = folder + "/" + item.path
        let rate = item.rate ?? "25"
        let seconds = String(item.duration ?? 0)
        let size = "\(item.storedWidth)x\(item.storedHeight)"
        let base = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
        func lavfi(_ source: String, size: String, rate: String) -> [String] {
            // Options of the source go after its own, e.g. testsrc2=size=…:rate=…, then filters after a comma.
            let parts = source.split(separator: ",", maxSplits: 1).map(String.init)
            let head = parts[0]
            let joiner = head.contains("=") ? ":" : "="
            return [
                "-f", "lavfi", "-i",
                head + joiner + "size=\(size):rate=\(rate)" + (parts.count > 1 ? "," + parts[1] : ""),
            ]
        }
        let h264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"]
        let sine = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
        let bitrate = String(max(1, Int(15_000_000 * scale * scale)))
        switch item.recipe {
        case .h264:
            return [base + lavfi(item.source, size: size, rate: rate) + ["-t", seconds] + h264 + [output]]
        case .h264WithAudio:
            return [
                base + lavfi(item.source, size: size, rate: rate) + sine + ["-t", seconds] + h264 + [
                    "-c:a", "aac", "-b:a", "96k", "-ac", "2", output,
                ]
            ]
        case .interlacedTransportStream:
            return [
                base + lavfi(item.source, size: size, rate: "60000/1001") + sine + [
                    "-t", seconds, "-vf", "tinterlace=mode=interleave_top,setfield=tff", "-c:v", "mpeg2video", "-flags",
                    "+ilme+ildct", "-top", "1",
                    "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate, "-c:a", "mp2", "-b:a", "192k", "-ac",
                    "2", "-f", "mpegts", output,
                ]
            ]
        case .anamorphicProgramStream:
            return [
                base + lavfi(item.source, size: size, rate: rate) + [
                    "-t", seconds, "-c:v", "mpeg2video", "-b:v", String(max(1, Int(6_000_000 * scale * scale))),
                    "-aspect", "16:9", "-f", "mpeg", output,
                ]
            ]
        case .rotated:
            // Draw the upright picture, store it turned clockwise, then add a display matrix that
            // turns it back (ffprobe: rotation 90, counter-clockwise).
            let upright = "\(item.storedHeight)x\(item.storedWidth)"
            let sideways = output + ".sideways.mp4"
            return [
                base + lavfi(item.source, size: upright, rate: rate) + ["-t", seconds, "-vf", "transpose=clock"] + h264
                    + [sideways],
                base + ["-i", sideways, "-c", "copy", "-metadata:s:v:0", "rotate=90", output],
            ]
        case .variableFrameRate:
            return [
                base + lavfi(item.source, size: size, rate: rate) + [
                    "-t", seconds, "-vf", "select='not(between(mod(n\\,30)\\,10\\,19))+lt(mod(n\\,7)\\,1)'",
                    "-fps_mode", "vfr",
                ] + h264 + [output]
            ]
        case .truncated:
            return [base + lavfi(item.source, size: size, rate: rate) + ["-t", seconds] + h264 + [output]]
        case .still:
            let quality = item.path.hasSuffix(".jpg") ? ["-q:v", "2"] : []
            return [
                base + lavfi(item.source, size: size, rate: "1") + ["-frames:v", "1"] + quality + [
                    "-update", "1", output,
                ]
            ]
        }
    }

    /// Makes every file (in parallel) and returns the items.
    public func generate(into folder: String, jobs: Int, progress: ProgressReporter = .silent) async throws -> [Item] {
        let items = self.items()
        for subfolder in Set(items.map { (folder + "/" + $0.path as NSString).deletingLastPathComponent }) {
            do {
                try FileManager.default.createDirectory(atPath: subfolder, withIntermediateDirectories: true)
            } catch {
                throw GeneralError(
                    "cannot create folder \(subfolder): \(error.localizedDescription)",
                    remedy: "choose a writable --out folder")
            }
        }
        let total = items.count
        progress.report(ProgressEvent(stage: "make demo media", completed: 0, total: total, unit: "files"))
        let tools = self.tools
        let reportFinished: @Sendable (Int) -> Void = { done in
            progress.report(ProgressEvent(stage: "make demo media", completed: done, total: total, unit: "files"))
        }
        _ = try await Parallel.map(items, width: jobs, finished: reportFinished) { item in
            for arguments in self.commands(for: item, in: folder) {
                let result = try await ChildProcess(tools.ffmpeg, arguments: arguments).run()
                guard result.exit.succeeded else {
                    throw GeneralError(
                        "ffmpeg could not make \(item.path) (\(result.exit)): "
                            + "\(result.standardErrorTail.trimmingCharacters(in: .whitespacesAndNewlines))",
                        remedy: "check that ffmpeg has libx264, mpeg2video, "
                            + "aac and the lavfi test sources (Debian's ffmpeg package does)")
                }
            }
            let output = folder + "/" + item.path
            if item.recipe == .rotated { try? FileManager.default.removeItem(atPath: output + ".sideways.mp4") }
            if item.recipe == .truncated { try Self.truncate(output, keeping: 0.4) }
            return true
        }
        return items
    }

    static func truncate(_ path: String, keeping share: Double) throws {
        guard let handle = FileHandle(forUpdatingAtPath: path) else {
            throw GeneralError("cannot open \(path) to truncate it", remedy: "check the output folder's permissions")
        }
        defer { try? handle.close() }
        let size = try handle.seekToEnd()
        try handle.truncate(atOffset: UInt64(Double(size) * share))
    }

    /// The manifest rows of `items` (all, or one split) as CSV.
    public static func csv(_ items: [Item], split: String? = nil) -> [UInt8] {
        var writer = CSVWriter()
        writer.writeRow(header)
        for item in items where split == nil || item.split == split { writer.writeRow(item.fields) }
        return writer.bytes
    }
}
