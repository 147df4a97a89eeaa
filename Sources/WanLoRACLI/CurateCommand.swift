import ArgumentParser
import Config
import Curation
import Foundation
import Manifest
import Reports
import Statistics
import Support

struct Curate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Duplicates, quality, outliers, stratified sampling, a leak-free train/val split and class weights.",
        discussion: """
            Every input row ends in exactly one place: OUT/train.csv, OUT/val.csv, or a line of \
            OUT/curation-log.csv saying why it was dropped (the log has one line per input row, \
            rows the reader rejected included). train.csv and val.csv keep the input's columns, with \
            the caption cleaned, and add weight (class-balanced sampling weight), quality (score in \
            [0, 1]) and group (duplicate group). The same seed and input give byte-identical files.

            The rules, in order: unreadable media; absolute ranges (resolution, duration, caption \
            length); Tukey's IQR fences (reported, dropped with --drop-iqr-outliers); minimum quality; \
            duplicate groups — identical files (SHA-256), identical normalised captions, and near \
            duplicates (64-bit perceptual hashes of images and of frames sampled from videos, within \
            --near-duplicate-bits) — keeping the best item of each; then optional stratified sampling \
            (--sample) and the split, stratified by media type × category, with duplicate groups \
            never split. docs/curation.md documents every rule and default.

            Media files are looked up relative to the manifest's folder (or --media-root). When they \
            are absent the metadata rules still run and the log says "file missing"; when present, \
            ffmpeg decodes them. Fingerprints are saved to OUT/fingerprints.jsonl as they are made, \
            so an interrupted run resumes where it stopped.

            Options come from defaults, then the [curate] table of --config FILE (TOML: key = value \
            with numbers, true/false, "strings"; keys as the flags with _ for -), then these flags.

            Examples:
              wanlora curate demo/data/manifest.csv --out demo/curated
              wanlora curate all_data.csv --out curated --sample max --stratify-category --weighting inverse
              wanlora curate items.jsonl --media-root /archive --out curated --duplicates group --caption-truncate 1000
            """)

    @Argument(help: "The manifest (CSV or JSON Lines) to curate.")
    var manifest: String

    @Option(
        help: ArgumentHelp(
            "Output folder (created when missing) for train.csv, val.csv, curation-log.csv and curation-summary.md.",
            valueName: "dir"))
    var out: String = "curated"

    @Option(help: ArgumentHelp("TOML file whose [curate] table sets options (flags win).", valueName: "file"))
    var config: String?

    @Option(
        help: ArgumentHelp(
            "Map a canonical column to a header name, CANONICAL=HEADER (repeatable).", valueName: "canonical=header"))
    var column: [String] = []

    // Sampling and split.
    @Option(help: "Random seed of the sample and the split (default 42).")
    var seed: UInt64?
    @Option(help: ArgumentHelp("Share of curated items for val (default 0.1).", valueName: "share"))
    var valFraction: Double?
    @Option(
        help: ArgumentHelp(
            "Sample this many items, or 'max' for the largest sample with the image share (default: no sampling).",
            valueName: "n|max"))
    var sample: String?
    @Option(help: ArgumentHelp("Share of images in the sample (default 0.5, i.e. 50:50).", valueName: "share"))
    var imageShare: Double?
    @Flag(
        inversion: .prefixedNo, help: "Keep each category's share within each media type when sampling (default off).")
    var stratifyCategory: Bool?

    // Duplicates.
    @Option(
        help: ArgumentHelp(
            "drop: keep the best item of each duplicate group; group: keep all, never split (default drop).",
            valueName: "drop|group"))
    var duplicates: String?
    @Flag(inversion: .prefixedNo, help: "Treat identical normalised captions as duplicates (default on).")
    var captionDuplicates: Bool?
    @Flag(inversion: .prefixedNo, help: "SHA-256 of each media file (default on).")
    var contentHash: Bool?
    @Flag(inversion: .prefixedNo, help: "Perceptual hashes and frame measures via ffmpeg (default on).")
    var perceptualHash: Bool?
    @Option(
        help: ArgumentHelp(
            "Perceptual hash: phash (DCT) or dhash (gradient) (default phash).", valueName: "phash|dhash"))
    var hash: String?
    @Option(
        help: ArgumentHelp("Near duplicates differ in at most this many of 64 bits (default 10).", valueName: "bits"))
    var nearDuplicateBits: Int?
    @Option(help: ArgumentHelp("Frames sampled per video (default 3).", valueName: "n"))
    var videoFrames: Int?

    // Quality.
    @Option(help: ArgumentHelp("Training resolution for the quality score (default 1280x720).", valueName: "WxH"))
    var target: String?
    @Option(
        help: ArgumentHelp(
            "Frames of one training clip, 4n+1 (default 81); at 16 fps it sets the usable duration.", valueName: "n"))
    var clipFrames: Int?
    @Option(help: ArgumentHelp("Drop items scoring below this quality (default 0.4; 0 keeps all).", valueName: "score"))
    var minQuality: Double?

    // Outliers.
    @Option(help: ArgumentHelp("Shortest video kept, seconds (default 3.0625 = 49 frames at 16 fps).", valueName: "s"))
    var durationMin: Double?
    @Option(help: ArgumentHelp("Longest video kept, seconds (default 3600).", valueName: "s"))
    var durationMax: Double?
    @Option(help: ArgumentHelp("Shortest caption kept, characters (default 20).", valueName: "n"))
    var captionLengthMin: Int?
    @Option(help: ArgumentHelp("Longest caption kept, characters (default 20000).", valueName: "n"))
    var captionLengthMax: Int?
    @Option(help: ArgumentHelp("Smallest short side kept, pixels (default 240).", valueName: "px"))
    var minShortSide: Int?
    @Flag(inversion: .prefixedNo, help: "Drop items outside the absolute ranges (default on).")
    var dropRangeOutliers: Bool?
    @Option(help: ArgumentHelp("Tukey fence factor k for duration and caption length (default 1.5).", valueName: "k"))
    var iqrFactor: Double?
    @Flag(inversion: .prefixedNo, help: "Drop IQR outliers instead of only reporting them (default off).")
    var dropIQROutliers: Bool?

    // Captions and weights.
    @Option(
        help: ArgumentHelp("Truncate cleaned captions to this many characters (default: no limit).", valueName: "n"))
    var captionTruncate: Int?
    @Option(
        help: ArgumentHelp(
            "Class weights in the weight column: inverse, sqrt or effective (default effective).", valueName: "method"))
    var weighting: String?
    @Option(help: ArgumentHelp("β of the effective-number weights (default 0.9999).", valueName: "β"))
    var beta: Double?

    // Media.
    @Option(
        help: ArgumentHelp(
            "Folder that relative media paths are resolved against (default: the manifest's folder).", valueName: "dir")
    )
    var mediaRoot: String?
    @Flag(inversion: .prefixedNo, help: "Drop items whose media file is missing (default off: metadata rules only).")
    var requireMedia: Bool?
    @Option(help: ArgumentHelp("The ffmpeg binary (default: ffmpeg on PATH).", valueName: "path"))
    var ffmpeg: String?
    @OptionGroup var jobs: JobsOptions

    @Flag(
        inversion: .prefixedNo,
        help: """
            Score template captions 0 on a quality part (Korean content words by Kiwi in the engine's Python; \
            default off).
            """)
    var templateCaptions: Bool?

    @OptionGroup(title: "Template captions (with --template-captions)")
    var morphemeOptions: MorphemeAnalysisOptions

    @OptionGroup var progress: ProgressOptions

    @OptionGroup var overwrite: OverwriteOptions

    static let summaryFile = "curation-summary.md"

    func validate() throws {
        if out.isEmpty { throw ValidationError("--out needs a folder name, e.g. --out curated") }
        if let sample, sample != "max", (Int(sample) ?? 0) <= 0 {
            throw ValidationError("--sample \(sample): give a positive number of items, or 'max'")
        }
        if let target, Resolution(parsing: target) == nil {
            throw ValidationError("--target \(target) is not WIDTHxHEIGHT, e.g. 1280x720 or 832x480")
        }
        if let duplicates, DuplicatePolicy(rawValue: duplicates) == nil {
            throw ValidationError("--duplicates \(duplicates): use drop or group")
        }
        if let hash, PerceptualHashKind(rawValue: hash) == nil {
            throw ValidationError("--hash \(hash): use phash or dhash")
        }
        if let weighting, WeightingMethod(rawValue: weighting) == nil {
            throw ValidationError("--weighting \(weighting): use inverse, sqrt or effective")
        }
    }

    /// Defaults, then the config file, then the flags given.
    func resolvedOptions() throws(CurationError) -> CurationOptions {
        var options = CurationOptions()
        options.workers = ProcessInfo.processInfo.activeProcessorCount
        if let config { try CurationConfigFile.apply(file: config, to: &options) }
        if let seed { options.seed = seed }
        if let valFraction { options.valFraction = valFraction }
        if let sample { options.sampleSize = sample == "max" ? Int.max : Int(sample) }
        if let imageShare { options.imageShare = imageShare }
        if let stratifyCategory { options.stratifySampleByCategory = stratifyCategory }
        if let duplicates { options.duplicatePolicy = DuplicatePolicy(rawValue: duplicates)! }
        if let captionDuplicates { options.captionDuplicates = captionDuplicates }
        if let contentHash { options.contentHash = contentHash }
        if let perceptualHash { options.perceptualHash = perceptualHash }
        if let hash { options.hashKind = PerceptualHashKind(rawValue: hash)! }
        if let nearDuplicateBits { options.nearDuplicateBits = nearDuplicateBits }
        if let videoFrames { options.videoFrames = videoFrames }
        if let target { options.target = Resolution(parsing: target)! }
        if let clipFrames { options.clipFrames = clipFrames }
        if let minQuality { options.minQuality = minQuality }
        if let templateCaptions { options.templateCaptions = templateCaptions }
        if let durationMin { options.durationMin = durationMin }
        if let durationMax { options.durationMax = durationMax }
        if let captionLengthMin { options.captionLengthMin = captionLengthMin }
        if let captionLengthMax { options.captionLengthMax = captionLengthMax }
        if let minShortSide { options.minShortSide = minShortSide }
        if let dropRangeOutliers { options.dropRangeOutliers = dropRangeOutliers }
        if let iqrFactor { options.iqrFactor = iqrFactor }
        if let dropIQROutliers { options.dropIQROutliers = dropIQROutliers }
        if let captionTruncate { options.captionTruncate = captionTruncate }
        if let weighting { options.weighting = WeightingMethod(rawValue: weighting)! }
        if let beta { options.beta = beta }
        if let mediaRoot { options.mediaRoot = mediaRoot }
        if let requireMedia { options.requireMedia = requireMedia }
        if let ffmpeg { options.ffmpeg = ffmpeg }
        if let jobs = jobs.given { options.workers = jobs }
        try options.validate()
        return options
    }

    func run() async throws {
        let started = Date()
        let result = try await reportingErrors { () async throws -> CurationResult in
            let options = try resolvedOptions()
            // A finished curation is not replaced silently; fingerprints.jsonl alone (a stopped run) resumes.
            try overwrite.check(
                folder: out, files: CurationWriter.fileNames + [Self.summaryFile], command: "curate")
            try OutputLocation.prepareFolder(out, option: "--out")
            let progress = Console.progress(style: self.progress.style)
            let manifest = try ManifestReader(mapping: try ColumnMapping(parsing: column)).read(
                path: manifest, progress: progress)
            let cache = (out as NSString).appendingPathComponent("fingerprints.jsonl")
            var templateFlags: [Bool]?
            if options.templateCaptions {
                // The same analysis as `analyze --morphemes`: distinct captions through Kiwi, then the flags.
                let pass = try MorphemePass(
                    folder: (out as NSString).appendingPathComponent("morphemes"),
                    options: morphemeOptions.resolved(over: .defaults))
                let numbers = manifest.items.map { pass.captions.number(of: $0.caption) }
                let (analysed, _) = try pass.analyse(progress: progress, topWords: 0)
                templateFlags =
                    MorphemeCalculator.templateFlags(
                        captionNumbers: numbers, table: analysed.table,
                        options: analysed.options
                    ).flags
            }
            let result = try await Curator.curate(
                manifest, options: options, fingerprintCache: cache, progress: progress,
                templateCaptions: templateFlags)
            try CurationWriter.write(result, to: out)
            let summaryPath = (out as NSString).appendingPathComponent(Self.summaryFile)
            do {
                try Data(CurationTables.markdown(result.summary, source: manifest.source).utf8)
                    .write(to: URL(fileURLWithPath: summaryPath), options: .atomic)
            } catch {
                throw CurationError.cannotWrite(path: summaryPath, reason: error.localizedDescription)
            }
            return result
        }
        for table in CurationTables.all(result.summary, timings: true)
        where table.title != "Split by media type × category" {
            Console.out(
                "\n" + table.title + "\n" + MarkdownReport.render(table) + (table.note.map { "(\($0))\n" } ?? ""))
        }
        let summary = result.summary
        func rows(_ count: Int) -> String { count == 1 ? "1 row" : "\(NumberFormat.grouped(count)) rows" }
        Console.out(
            "wrote \(out)/train.csv (\(rows(summary.train))), \(out)/val.csv (\(rows(summary.val))), "
                + "\(out)/curation-log.csv (\(rows(summary.rowsRead))), \(out)/curation-summary.md "
                + "in \(NumberFormat.decimal(Date().timeIntervalSince(started), 2)) s")
    }
}
