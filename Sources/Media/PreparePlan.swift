import Foundation
import Manifest
import Support

/// Everything `prepare` is told, besides its inputs.
public struct PrepareOptions: Sendable, Equatable {
    public var target: FrameTarget
    public var clips: ClipPolicy
    public var encode: EncodeSettings
    public var augmentation: AugmentationPolicy
    /// Parallel ffmpeg processes.
    public var jobs: Int
    public var retryFailed: Bool
    public var tools: MediaTools
    /// Prepare only this shard's items (nil: all of them).
    public var shard: PrepareShard?

    public init(
        target: FrameTarget = .fixed(Resolution(width: 1280, height: 720)), clips: ClipPolicy = ClipPolicy(),
        encode: EncodeSettings = EncodeSettings(), augmentation: AugmentationPolicy = AugmentationPolicy(),
        jobs: Int = 2,
        retryFailed: Bool = false, tools: MediaTools = MediaTools(), shard: PrepareShard? = nil
    ) {
        self.target = target
        self.clips = clips
        self.encode = encode
        self.augmentation = augmentation
        self.jobs = jobs
        self.retryFailed = retryFailed
        self.tools = tools
        self.shard = shard
    }
}

/// A manifest and the split its clips belong to.
public struct PrepareInput: Sendable {
    public var manifest: Manifest
    public var split: String

    public init(manifest: Manifest, split: String) {
        self.manifest = manifest
        self.split = split
    }

    /// The split named by a manifest's file name: `train`, `val` or `test` when the name contains
    /// one of them (`all_train.csv` → train, `validation.jsonl` → val), else the name itself.
    public static func splitName(forManifest path: String) -> String {
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let lower = stem.lowercased()
        let words = lower.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        if words.contains(where: { $0 == "train" || $0 == "training" }) { return "train" }
        if words.contains(where: { $0 == "val" || $0 == "valid" || $0 == "validation" || $0 == "dev" }) { return "val" }
        if words.contains(where: { $0 == "test" || $0 == "testing" }) { return "test" }
        return stem.isEmpty ? "data" : stem
    }
}

/// One manifest item to prepare, with where it lives.
public struct PrepareSource: Sendable {
    public var item: ManifestItem
    public var split: String
    /// The manifest file it came from.
    public var manifestPath: String
    /// The media file, absolute.
    public var absolutePath: String
    /// The curation weight (`weight` column), when the manifest has one.
    public var weight: Double?
}

/// One planned output and what it is made of.
public struct PlannedClip: Sendable {
    public var job: EncodeJob
    public var source: PrepareSource
    public var clip: ClipPlan
    public var augmentation: Augmentation
    public var isImage: Bool
}

/// An item that gives no clips, and why.
public struct SetAsideItem: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        /// By rule: too short, or a duplicate path in the same split.
        case skipped
        /// The file is missing, unreadable or failed to encode.
        case quarantined
    }

    public var sourcePath: String
    public var split: String
    public var manifestPath: String
    public var line: Int
    public var outcome: Outcome
    /// `probe`, `plan` or `encode`.
    public var stage: String
    public var reason: String
    /// For encode failures: the output it would have been, and ffmpeg's stderr tail.
    public var output: String = ""
    public var detail: String = ""
}

/// The clips to make and the items set aside, before any encoding.
public struct PreparePlan: Sendable {
    public var clips: [PlannedClip]
    public var setAside: [SetAsideItem]
    public var sources: [PrepareSource]
    public var probes: [String: Result<MediaProbe, ProbeFailure>]
}

/// Pure planning: manifests and probe results in, jobs out.
public enum PreparePlanner {
    /// Resolves paths, finds the weight column and drops (with a record) paths repeated within a split.
    /// With a shard, only its items are returned; duplicates are still found over all items, so an
    /// item repeated in another shard's share is set aside here exactly as in a run without shards.
    public static func sources(_ inputs: [PrepareInput], shard: PrepareShard? = nil) -> (
        sources: [PrepareSource], duplicates: [SetAsideItem]
    ) {
        var sources: [PrepareSource] = []
        var duplicates: [SetAsideItem] = []
        var seen: [String: (split: String, manifest: String, line: Int)] = [:]
        for input in inputs {
            let folder = (input.manifest.source as NSString).deletingLastPathComponent
            let weightIndex = input.manifest.columns.firstIndex {
                $0.trimmingCharacters(in: .whitespaces).lowercased() == "weight"
            }
            for item in input.manifest.items {
                let absolute = PathMath.absolute(item.path, base: folder)
                let key = input.split + "\u{1F}" + absolute
                let owned = shard?.owns(split: input.split, path: item.path) ?? true
                if let first = seen[key] {
                    guard owned else { continue }
                    duplicates.append(
                        SetAsideItem(
                            sourcePath: absolute, split: input.split, manifestPath: input.manifest.source,
                            line: item.line, outcome: .skipped,
                            stage: "plan",
                            reason: "the same file is already in split \(first.split) "
                                + "(\(first.manifest), line \(first.line)); it is prepared once"))
                    continue
                }
                seen[key] = (input.split, input.manifest.source, item.line)
                guard owned else { continue }
                var weight: Double?
                if let weightIndex, weightIndex < item.fields.count {
                    weight = Double(item.fields[weightIndex].trimmingCharacters(in: .whitespaces))
                }
                sources.append(
                    PrepareSource(
                        item: item, split: input.split, manifestPath: input.manifest.source, absolutePath: absolute,
                        weight: weight))
            }
        }
        return (sources, duplicates)
    }

    /// Plans every clip (augmented copies included) of every source that probed well.
    public static func plan(
        sources: [PrepareSource], probes: [String: Result<MediaProbe, ProbeFailure>], options: PrepareOptions
    ) -> (clips: [PlannedClip], setAside: [SetAsideItem]) {
        var clips: [PlannedClip] = []
        var setAside: [SetAsideItem] = []
        // Output names come from the manifest path (stable when the data moves); two different
        // files with the same manifest path in one split (from two manifests in different folders)
        // fall back to a name from the absolute path, so that no output is claimed twice.
        var stemOwners: [String: String] = [:]
        for source in sources {
            func setAsideItem(_ outcome: SetAsideItem.Outcome, _ stage: String, _ reason: String) {
                setAside.append(
                    SetAsideItem(
                        sourcePath: source.absolutePath, split: source.split, manifestPath: source.manifestPath,
                        line: source.item.line,
                        outcome: outcome, stage: stage, reason: reason))
            }
            guard let result = probes[source.absolutePath] else {
                setAsideItem(.quarantined, "probe", "not probed")
                continue
            }
            let probe: MediaProbe
            switch result {
            case .failure(let failure):
                setAsideItem(.quarantined, "probe", failure.message)
                continue
            case .success(let value): probe = value
            }
            guard let video = probe.video else {
                setAsideItem(.quarantined, "probe", "no video or picture stream")
                continue
            }
            let isImage = probe.isStillImage
            let duration = probe.duration ?? source.item.duration
            var plans: [ClipPlan]
            if isImage {
                plans = [ClipPlanner.image]
            } else {
                guard let duration, duration > 0 else {
                    setAsideItem(
                        .quarantined, "probe",
                        "the video's duration is unknown (neither the file nor the manifest gives it)")
                    continue
                }
                switch ClipPlanner.plan(duration: duration, policy: options.clips) {
                case .skipped(let reason):
                    setAsideItem(.skipped, "plan", reason)
                    continue
                case .clips(let planned): plans = planned
                }
            }
            let size = options.target.size(forAspect: video.displayAspect)
            let augment = options.augmentation.applies(category: source.item.category, weight: source.weight)
            var stem = outputStem(source: source, key: source.item.path)
            if let owner = stemOwners[source.split + "/" + stem], owner != source.absolutePath {
                stem = outputStem(source: source, key: source.absolutePath)
            }
            stemOwners[source.split + "/" + stem] = source.absolutePath
            for plan in plans {
                var variants: [(copy: Int, augmentation: Augmentation)] = [(0, Augmentation())]
                if augment {
                    for copy in 1...options.augmentation.copies {
                        var augmentation = options.augmentation.augmentation(
                            source: source.split + "/" + source.item.path, clip: plan.index, copy: copy,
                            isVideo: !isImage)
                        // A speed-up needs a longer stretch of source; drop it where the video ends first.
                        if augmentation.speed != 1 {
                            let end =
                                plan.start
                                + ClipPlanner.span(
                                    frames: plan.frames, fps: options.clips.fps, speed: augmentation.speed)
                            if plan.paddedFrames > 0 || (duration ?? 0) + 1e-9 < end { augmentation.speed = 1 }
                        }
                        if !augmentation.isIdentity { variants.append((copy, augmentation)) }
                    }
                }
                for variant in variants {
                    let command = FFmpegCommandBuilder.command(
                        source: source.absolutePath, video: video, isImage: isImage, clip: plan, size: size,
                        settings: options.encode,
                        augmentation: variant.augmentation)
                    var name = stem
                    if !isImage { name += ".c\(plan.index)" }
                    if variant.copy > 0 { name += ".aug\(variant.copy)" }
                    name += "." + command.fileExtension
                    let output = source.split + "/" + name
                    clips.append(
                        PlannedClip(
                            job: EncodeJob(output: output, source: source.absolutePath, command: command),
                            source: source, clip: plan,
                            augmentation: variant.augmentation, isImage: isImage))
                }
            }
        }
        return (clips, setAside)
    }

    /// `ab/STEM-1a2b3c4d`: a two-hex-digit folder (so that 200,000 items spread over 256 folders)
    /// and the source's file name with a hash of its manifest path (so that equal names in
    /// different folders stay apart). Stable across runs and machines.
    static func outputStem(source: PrepareSource, key: String) -> String {
        let hash = StableHash.hex(StableHash.fnv1a64(key))
        let stem = ((source.item.path as NSString).lastPathComponent as NSString).deletingPathExtension
        let safe = String(
            stem.unicodeScalars.map { scalar -> Character in
                let c = Character(scalar)
                return c.isLetter || c.isNumber || c == "-" || c == "_" ? c : "_"
            }.prefix(80))
        return String(hash.prefix(2)) + "/" + (safe.isEmpty ? "item" : safe) + "-" + String(hash.dropFirst(2).prefix(8))
    }
}
