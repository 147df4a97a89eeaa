import ArgumentParser
import DemoData
import Foundation
import Manifest
import Media
import Support

struct DemoData: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-data",
        abstract: "Write a demo manifest shaped like the MBC archive (with --media: real video and image files).",
        discussion: """
            The manifest reproduces the seed report's shares of media types (50:50), resolutions \
            (1920×1080 77.78%, 720×512 15.52%, 1280×720 5.86%, other 0.84%), the eight categories, \
            video-duration buckets and caption lengths (≈440 characters, ≈106 words, Korean-looking \
            text with the report's most frequent words). The same --seed gives the same bytes.

            Examples:
              wanlora demo-data --rows 199994 --out demo            # demo/manifest.csv
              wanlora demo-data --rows 2000 --splits --broken 9 --out demo
                  # also demo/train.csv (85%, converted to 1280×720) and demo/val.csv (10%, not
                  # converted: the report's mistake) and 9 rows that the reader must reject
              wanlora demo-data --media --out demo/data
                  # 35 real files made with ffmpeg's test sources (23 videos, 12 images) at the
                  # archive's sizes: 1080p25, 1080p29.97 H.264 with audio, 1080i MPEG-2 TS, 720×512
                  # (one anamorphic 16:9), 720p, vertical 1080×1920, HDV 1440×1080, a rotated phone
                  # video, variable frame rate, a 2.5 s video, a truncated file, a 4K image; Korean
                  # captions; demo/data/manifest.csv, train.csv (26 rows) and val.csv (9 rows)
            """)

    @Option(help: "Number of rows (any size; the archive has 199,994).")
    var rows: Int = 2_000

    @Option(help: "Random seed; the same seed writes the same bytes.")
    var seed: UInt64 = 42

    @Option(help: ArgumentHelp("Output folder (created when missing).", valueName: "dir"))
    var out: String = "demo"

    @Flag(help: "Also write train.csv and val.csv shaped like the report's splits.")
    var splits = false

    @Option(help: "Append this many rows that each break one validation rule.")
    var broken: Int = 0

    @Flag(help: "Make real media files with ffmpeg (35 files, about 100 MB) instead of a manifest of names.")
    var media = false

    @Option(
        help: ArgumentHelp(
            "With --media: shrink every picture by this factor (1 = the archive's sizes).", valueName: "factor"))
    var mediaScale: Double = 1

    @OptionGroup var jobs: JobsOptions

    @Option(help: ArgumentHelp("ffmpeg to run (a name on PATH or a path).", valueName: "path"))
    var ffmpeg: String = "ffmpeg"

    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        guard rows > 0 else { throw ValidationError("--rows must be at least 1 (got \(rows))") }
        guard broken >= 0 else { throw ValidationError("--broken cannot be negative (got \(broken))") }
        guard mediaScale > 0 && mediaScale <= 1 else {
            throw ValidationError("--media-scale must be in (0, 1], e.g. 0.25")
        }
    }

    func run() async throws {
        if media {
            try await runMedia()
            return
        }
        try reportingErrors {
            do {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            } catch {
                throw GeneralError(
                    "cannot create folder \(out): \(error.localizedDescription)",
                    remedy: "choose a writable --out folder")
            }
            let generator = DemoManifestGenerator(rows: rows, seed: seed, brokenRows: broken)
            let generated = generator.generate(progress: Console.progress(style: progress.style))
            let manifestPath = (out as NSString).appendingPathComponent("manifest.csv")
            try write(generator.csv(generated), to: manifestPath)
            var written = ["\(manifestPath) (\(NumberFormat.grouped(rows + broken)) rows)"]
            if splits {
                let (train, val) = DemoManifestGenerator.reportSplits(generated, seed: seed)
                let plain = DemoManifestGenerator(rows: 0, seed: seed)
                let trainPath = (out as NSString).appendingPathComponent("train.csv")
                let valPath = (out as NSString).appendingPathComponent("val.csv")
                try write(plain.csv(train), to: trainPath)
                try write(plain.csv(val), to: valPath)
                written.append("\(trainPath) (\(NumberFormat.grouped(train.count)) rows, all at 1280×720)")
                written.append("\(valPath) (\(NumberFormat.grouped(val.count)) rows, at the source resolutions)")
            }
            Console.out("wrote " + written.joined(separator: ", "))
        }
    }

    /// `--media`: real files, their manifest and a train/val split.
    func runMedia() async throws {
        try await reportingErrors {
            let generator = DemoMediaGenerator(seed: seed, scale: mediaScale, tools: MediaTools(ffmpeg: ffmpeg))
            let folder = out
            let width = jobs.count
            let progress = Console.progress(style: self.progress.style)
            let items = try await Interrupts.cancellingOnSignals {
                try await generator.generate(into: folder, jobs: width, progress: progress)
            }
            var written: [String] = []
            for (name, split) in [("manifest.csv", nil), ("train.csv", "train"), ("val.csv", "val")]
                as [(String, String?)]
            {
                let path = (out as NSString).appendingPathComponent(name)
                try write(DemoMediaGenerator.csv(items, split: split), to: path)
                written.append("\(path) (\(items.filter { split == nil || $0.split == split }.count) rows)")
            }
            let videos = items.filter { $0.mediaType == .video }.count
            Console.out(
                "wrote \(videos) videos and \(items.count - videos) images under \(out), "
                    + written.joined(separator: ", "))
        }
    }

    func write(_ bytes: [UInt8], to path: String) throws {
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw GeneralError(
                "cannot write \(path): \(error.localizedDescription)",
                remedy: "check the folder's permissions and free disk space")
        }
    }
}
