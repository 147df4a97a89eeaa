import ArgumentParser
import Foundation
import Launch
import Manifest
import Media
import Support

struct Prepare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn the media of one or more manifests into training clips (ffmpeg), resumably.",
        discussion: """
            Every split goes through the same pipeline (the seed report converted only train). For \
            each file: ffprobe; deinterlace when interlaced (bwdif); turn upright when rotated; honour \
            the sample aspect ratio; convert to 16 fps; cut clips of 4n+1 frames; scale to cover the \
            target and crop the centre (--fit pad adds bars instead); images become one frame. Clips are \
            H.264 CRF 12 MP4 (--quality lossless: FFV1 MKV), images PNG.

            Clip modes: head (one clip from the start), uniform (--clips-per-video K spread evenly, \
            never overlapping), chunk (back-to-back clips, at most K; 0 = all that fit). A video shorter \
            than one clip is shortened to the largest 4n+1 frames it holds (--short-videos shorten), \
            padded by repeating its last frame (pad) or skipped (skip); below --min-frames it is skipped.

            Outputs: OUT/SPLIT/xx/NAME.cK.mp4, OUT/manifest.csv (one row per clip: path, media_type, \
            resolution, frames, fps, duration, start, split, category, caption, weight, augmentation, \
            source), OUT/SPLIT.csv, quarantine.csv (files that failed, with ffmpeg's message), \
            skipped.csv. The split is named by the manifest file (train.csv → train, all_val.csv → val) \
            or --split-name. A `weight` column (from curate) is carried through.

            Resumable: OUT/prepare-journal.sqlite records every clip. Run the same command after a crash, \
            kill -9 or Ctrl-C: finished clips are kept, half-written ones redone, none duplicated. Files \
            that fail are quarantined and the run goes on.

            Many machines: --shard K/N prepares the K-th of N shares of the items into its own --out \
            folder (with its own journal: resumable like a whole run); which share an item is in depends \
            only on its split and its path in the manifest. --merge FOLDER… --out DIR then makes one \
            prepared folder of them (clips hard-linked, not copied), after checking that every shard of \
            one plan is there and every item is in exactly one of them. --dry-run --slurm N prints a \
            script that submits the N shards as a Slurm job array and the merge as a job that waits for \
            them.

            Examples:
              wanlora prepare curated/train.csv curated/val.csv --out prepared
              wanlora prepare train.csv --out prepared480 --resolution 832x480 \\
                  --frames 49 --mode chunk --clips-per-video 3
              wanlora prepare train.csv --out prepared --buckets --pixel-budget 921600
              wanlora prepare train.csv --out prepared \\
                  --augment-categories 무형문화유산,유형문화유산 --augment hflip,color,reverse
              wanlora prepare train.csv val.csv --out prepared/shard-2-of-3 --shard 2/3
              wanlora prepare --merge prepared/shard-1-of-3 prepared/shard-2-of-3 \\
                  prepared/shard-3-of-3 --out prepared
              wanlora prepare train.csv val.csv --out prepared --dry-run --slurm 8 \\
                  --slurm-time 12:00:00 > prepare-slurm.sh && bash prepare-slurm.sh
            """)

    @Argument(help: "Manifests (CSV or JSON Lines), e.g. train.csv val.csv (none with --merge).")
    var manifests: [String] = []

    @Option(
        help: ArgumentHelp(
            "Output folder, created when missing (with --shard: this shard's own folder; with --merge: the merged"
                + " folder).", valueName: "dir"))
    var out: String = "prepared"

    @Option(
        help: ArgumentHelp(
            "Prepare only the K-th of N shares of the items (1 ≤ K ≤ N), e.g. 2/3; each shard needs its own --out.",
            valueName: "K/N"))
    var shard: String?

    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "Merge the --out folders of finished shards 1/N … N/N into --out (give no manifests).",
            valueName: "folders"))
    var merge: [String] = []

    @Option(
        help: ArgumentHelp(
            "With --dry-run: print a bash script that submits N shards as a Slurm job array "
                + "(shard K into OUT/shard-K-of-N) and the merge into OUT as a job that waits for all of them.",
            valueName: "N"))
    var slurm: Int?

    @OptionGroup var slurmJob: SlurmJobOptions

    @Option(
        help: ArgumentHelp("Split name for all clips (default: from each manifest's file name).", valueName: "name"))
    var splitName: String?

    @Option(help: ArgumentHelp("Target size WIDTHxHEIGHT (832x480 for 480P).", valueName: "WxH"))
    var resolution: String = "1280x720"

    @Flag(
        help:
            "Aspect-ratio buckets instead of one size: sides in multiples of --bucket-step, area within --pixel-budget."
    )
    var buckets = false

    @Option(
        help: ArgumentHelp("Pixels per frame for --buckets (default: the area of --resolution).", valueName: "pixels"))
    var pixelBudget: Int?

    @Option(help: ArgumentHelp("Bucket side step in pixels.", valueName: "px"))
    var bucketStep: Int = 16

    @Option(help: "cover (scale and crop the centre) or pad (scale and add black bars).")
    var fit: String = "cover"

    @Option(help: "Frames per clip, 4n+1 (81; 49 on small GPUs).")
    var frames: Int = 81

    @Option(help: "Output frame rate in frames per second.")
    var fps: Int = 16

    @Option(help: "head, uniform or chunk.")
    var mode: String = "head"

    @Option(help: "uniform: clips per video; chunk: most clips per video (0 = all that fit).")
    var clipsPerVideo: Int = 1

    @Option(help: "Videos shorter than one clip: shorten, pad or skip.")
    var shortVideos: String = "shorten"

    @Option(help: "Fewest frames a shortened or padded clip may have (4n+1).")
    var minFrames: Int = 17

    @Option(help: "auto (when ffprobe reports interlacing), bwdif, yadif or off.")
    var deinterlace: String = "auto"

    @Option(help: "hq (H.264 CRF 12 MP4) or lossless (FFV1 MKV).")
    var quality: String = "hq"

    @Option(
        help: ArgumentHelp("Augment items of these categories (comma-separated or repeated).", valueName: "categories"))
    var augmentCategories: [String] = []

    @Option(help: ArgumentHelp("Augment items whose weight column is at least this.", valueName: "weight"))
    var augmentWeightAbove: Double?

    @Option(help: ArgumentHelp("Transforms to draw from: hflip, crop, color, reverse, speed.", valueName: "list"))
    var augment: String = "hflip,crop,color,reverse,speed"

    @Option(help: "Augmented copies per clip of an augmented item.")
    var augmentCopies: Int = 1

    @Option(help: "Seed of the augmentation draws (the same seed gives the same transforms).")
    var seed: UInt64 = 42

    @OptionGroup var jobs: JobsOptions

    @Flag(help: "Retry clips that failed in an earlier run (by default they stay quarantined).")
    var retryFailed = false

    @Flag(help: "Print the ffmpeg commands (a shell script) instead of running them.")
    var dryRun = false

    @Flag(help: "Exit with status 2 when any file was quarantined.")
    var strict = false

    @Option(
        help: ArgumentHelp(
            "Map a canonical column to a header name, CANONICAL=HEADER (repeatable).", valueName: "canonical=header"))
    var column: [String] = []

    @Option(help: ArgumentHelp("ffmpeg to run (a name on PATH or a path).", valueName: "path"))
    var ffmpeg: String = "ffmpeg"

    @Option(help: ArgumentHelp("ffprobe to run (a name on PATH or a path).", valueName: "path"))
    var ffprobe: String = "ffprobe"

    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        if !merge.isEmpty {
            guard manifests.isEmpty else {
                throw ValidationError(
                    "--merge reads the shards' folders, not manifests: remove \(manifests.joined(separator: " ")) "
                        + "(the shards already read them)")
            }
            guard shard == nil, !dryRun, slurm == nil else {
                throw ValidationError("--merge goes alone with --out: drop --shard, --dry-run and --slurm")
            }
        } else if manifests.isEmpty {
            throw ValidationError(
                "give the manifests to prepare (e.g. train.csv val.csv), or --merge and the shard folders")
        }
        if let shard {
            do throws(ShardError) {
                _ = try PrepareShard(parsing: shard)
            } catch {
                throw ValidationError("\(error.problem); \(error.remedy)")
            }
        }
        if let slurm {
            guard dryRun else {
                throw ValidationError("--slurm prints a script and runs nothing: add --dry-run")
            }
            guard slurm >= 1 else {
                throw ValidationError("--slurm \(slurm): the number of shards (array tasks) must be at least 1")
            }
            guard shard == nil else {
                throw ValidationError("--slurm gives each array task its own --shard: drop --shard \(shard ?? "")")
            }
        }
        guard let size = Resolution(parsing: resolution) else {
            throw ValidationError("--resolution \(resolution) is not WIDTHxHEIGHT, e.g. 1280x720 or 832x480")
        }
        guard size.width % 2 == 0, size.height % 2 == 0 else {
            throw ValidationError(
                "--resolution \(resolution): width and height must be even (4:2:0 video), e.g. 1280x720")
        }
        if splitName != nil && manifests.count > 1 {
            throw ValidationError(
                "--split-name names the split of a single manifest; "
                    + "with several, each is named by its file (train.csv → train)")
        }
        if let pixelBudget, pixelBudget < bucketStep * bucketStep {
            throw ValidationError("--pixel-budget \(pixelBudget) is smaller than one \(bucketStep)×\(bucketStep) block")
        }
        guard bucketStep >= 2, bucketStep % 2 == 0 else {
            throw ValidationError("--bucket-step must be even and at least 2 (16 suits Wan's 8× VAE and 2× patches)")
        }
        guard FitMode(rawValue: fit) != nil else { throw ValidationError("--fit \(fit): use cover or pad") }
        guard ClipMode(rawValue: mode) != nil else {
            throw ValidationError("--mode \(mode): use head, uniform or chunk")
        }
        guard ShortVideoRule(rawValue: shortVideos) != nil else {
            throw ValidationError("--short-videos \(shortVideos): use shorten, pad or skip")
        }
        guard DeinterlaceMode(rawValue: deinterlace) != nil else {
            throw ValidationError("--deinterlace \(deinterlace): use auto, bwdif, yadif or off")
        }
        guard IntermediateQuality(rawValue: quality) != nil else {
            throw ValidationError("--quality \(quality): use hq or lossless")
        }
        guard fps >= 1 else { throw ValidationError("--fps must be at least 1") }
        guard augmentCopies >= 0 else { throw ValidationError("--augment-copies cannot be negative") }
        for name in augmentKindNames where AugmentationKind(rawValue: name) == nil {
            throw ValidationError("--augment: '\(name)' is not one of hflip, crop, color, reverse, speed")
        }
        if let problem = clipPolicy.problem {
            throw ValidationError(
                problem.replacingOccurrences(of: "frames per clip", with: "--frames").replacingOccurrences(
                    of: "the minimum frame count", with: "--min-frames"))
        }
    }

    var augmentKindNames: [String] {
        augment.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    var clipPolicy: ClipPolicy {
        ClipPolicy(
            frames: frames, fps: fps, mode: ClipMode(rawValue: mode) ?? .head, clipsPerVideo: clipsPerVideo,
            shortVideos: ShortVideoRule(rawValue: shortVideos) ?? .shorten, minimumFrames: minFrames)
    }

    var options: PrepareOptions {
        let size = Resolution(parsing: resolution)!
        let target: FrameTarget =
            buckets ? .buckets(AspectBuckets(pixelBudget: pixelBudget ?? size.pixels, step: bucketStep)) : .fixed(size)
        let categories = Set(
            augmentCategories.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty })
        return PrepareOptions(
            target: target, clips: clipPolicy,
            encode: EncodeSettings(
                fit: FitMode(rawValue: fit)!, deinterlace: DeinterlaceMode(rawValue: deinterlace)!,
                quality: IntermediateQuality(rawValue: quality)!, fps: fps),
            augmentation: AugmentationPolicy(
                categories: categories, minimumWeight: augmentWeightAbove,
                kinds: Set(augmentKindNames.compactMap(AugmentationKind.init(rawValue:))),
                copies: augmentCopies, seed: seed),
            jobs: jobs.count, retryFailed: retryFailed, tools: MediaTools(ffmpeg: ffmpeg, ffprobe: ffprobe),
            shard: shard.flatMap { try? PrepareShard(parsing: $0) })
    }

    func run() async throws {
        let style = progress.style
        if !merge.isEmpty {
            let merged = try reportingErrors { try ShardMerge(folders: merge, outputDirectory: out).run() }
            Console.out(SummaryText.merge(merged))
            if strict && merged.itemsQuarantined > 0 { throw ExitCode(2) }
            return
        }
        let summary = try await reportingErrors { () async throws -> PrepareSummary? in
            let reporter = Console.progress(style: style)
            let reader = ManifestReader(mapping: try ColumnMapping(parsing: column))
            var inputs: [PrepareInput] = []
            for path in manifests {
                let manifest = try reader.read(path: path, progress: reporter)
                inputs.append(
                    PrepareInput(manifest: manifest, split: splitName ?? PrepareInput.splitName(forManifest: path)))
            }
            let preparation = MediaPreparation(outputDirectory: out, options: options)
            if let slurm {
                Console.out(slurmScript(shards: slurm, inputs: inputs))
                return nil
            }
            if dryRun {
                let plan = try await preparation.plan(inputs, progress: reporter)
                Console.out(Self.script(plan, preparation: preparation))
                return nil
            }
            let frozenInputs = inputs
            return try await Interrupts.cancellingOnSignals {
                try await preparation.run(frozenInputs, progress: reporter)
            }
        }
        guard let summary else { return }
        if summary.interrupted && style == .terminal { Console.err("") }
        Console.out(SummaryText.prepare(summary))
        if summary.interrupted { throw ExitCode(130) }
        if strict && summary.itemsQuarantined + summary.clipsFailed > 0 { throw ExitCode(2) }
    }

    /// The script of `--dry-run --slurm N`: this command line, less the options the script sets
    /// itself, once per shard, and the merge.
    func slurmScript(shards: Int, inputs: [PrepareInput]) -> String {
        // -j and --workers: the other spellings of --jobs.
        let valued: Set<String> = [
            "--slurm", "--slurm-time", "--slurm-partition", "--slurm-account", "--out", "--jobs", "-j", "--workers",
        ]
        let own = valued.union(["--dry-run"])
        var kept: [String] = []
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        while let argument = arguments.next() {
            let name = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
            guard own.contains(name) else {
                kept.append(argument)
                continue
            }
            if valued.contains(name) && !argument.contains("=") { _ = arguments.next() }
        }
        let program = CommandLine.arguments[0].contains("/") ? PathMath.absolute(CommandLine.arguments[0]) : "wanlora"
        let folder = { (index: String) in (out as NSString).appendingPathComponent("shard-\(index)-of-\(shards)") }
        let shardCommand =
            [program] + kept + [
                "--shard", ClusterScript.arrayTaskID + "/\(shards)", "--out", folder(ClusterScript.arrayTaskID),
                "--jobs", String(jobs.count),
            ]
        let mergeCommand = [program, "prepare", "--merge"] + (1...shards).map { folder(String($0)) } + ["--out", out]
        var share = Array(repeating: 0, count: shards)
        for input in inputs {
            for item in input.manifest.items {
                share[PrepareShard.number(split: input.split, path: item.path, count: shards) - 1] += 1
            }
        }
        let items = share.reduce(0, +)
        let comments = [
            "wanlora prepare on Slurm: \(NumberFormat.grouped(items)) items in \(shards) shards "
                + "(\(share.map { NumberFormat.grouped($0) }.joined(separator: ", ")) items), one per array task, "
                + "each with \(jobs.count) CPUs; then the merge into \(out).",
            "Save it (e.g. prepare-slurm.sh) and run `bash prepare-slurm.sh` where sbatch works. A shard that fails",
            "leaves the merge pending: run its command again by hand (it resumes), then the merge line below.",
        ]
        return ClusterScript.shardArray(
            jobName: "wanlora-prepare", shards: shards, cpusPerTask: jobs.count,
            workingDirectory: FileManager.default.currentDirectoryPath, shardCommand: shardCommand,
            mergeCommand: mergeCommand,
            settings: SlurmSettings(
                time: slurmJob.time, partition: slurmJob.partition, account: slurmJob.account, signalLeadSeconds: 60),
            comments: comments)
    }

    /// A shell script with one ffmpeg command per clip, writing straight to the final names.
    static func script(_ plan: PreparePlan, preparation: MediaPreparation) -> String {
        var lines = [
            "#!/bin/sh", "# \(plan.clips.count) clips; \(plan.setAside.count) items set aside (not listed)", "set -e",
        ]
        var folders: [String] = []
        var seen: Set<String> = []
        for clip in plan.clips {
            let folder = ((preparation.outputDirectory + "/" + clip.job.output) as NSString).deletingLastPathComponent
            if seen.insert(folder).inserted { folders.append(folder) }
        }
        lines += folders.map { "mkdir -p " + shellQuoted($0) }
        for clip in plan.clips {
            let arguments =
                [preparation.options.tools.ffmpeg]
                + clip.job.command.arguments(output: preparation.outputDirectory + "/" + clip.job.output)
            lines.append(arguments.map(shellQuoted).joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }

    static func shellQuoted(_ text: String) -> String {
        let safe = text.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) || "-_./:=+,".unicodeScalars.contains($0)
        }
        return safe && !text.isEmpty ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
