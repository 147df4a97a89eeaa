import Manifest

/// What happens to the members of a duplicate group.
public enum DuplicatePolicy: String, Sendable, CaseIterable, Codable {
    /// Keep one member per group (highest quality score, then path order); drop the rest.
    case drop
    /// Keep every member; the group lands wholly in train or wholly in val.
    case group
}

/// Which 64-bit perceptual hash to compute.
public enum PerceptualHashKind: String, Sendable, CaseIterable, Codable {
    /// DCT hash: signs of the 8×8 lowest frequencies (DC excluded) of a 32×32 grey image against their median.
    case pHash = "phash"
    /// Difference hash: whether each pixel of a 9×8 grey image is brighter than its right neighbour.
    case dHash = "dhash"
}

/// How class-balanced sampling weights are computed from the train split's category counts.
public enum WeightingMethod: String, Sendable, CaseIterable, Codable {
    /// w ∝ 1 / n: the report's plan (46× for 무형문화유산 in its train split).
    case inverse
    /// w ∝ 1 / √n: a milder correction.
    case sqrt
    /// w ∝ (1 − β) / (1 − βⁿ): "effective number of samples" (Cui et al., CVPR 2019).
    case effective
}

/// Every rule `curate` applies, with the defaults documented in docs/curation.md.
public struct CurationOptions: Sendable, Equatable {
    // Sampling and split.
    /// Seed of every random choice (sampling, split); the same seed gives the same bytes.
    public var seed: UInt64 = 42
    /// Share of the curated items that goes to val (0 ≤ f < 1).
    public var valFraction: Double = 0.1
    /// Sample this many items (after duplicates, quality and outliers); nil keeps all.
    public var sampleSize: Int?
    /// Share of images in the sample (the rest are videos): the report's 50:50.
    public var imageShare: Double = 0.5
    /// Also keep each category's share within each media type when sampling.
    public var stratifySampleByCategory = false

    // Duplicates.
    public var duplicatePolicy: DuplicatePolicy = .drop
    /// Group items whose normalised captions are identical.
    public var captionDuplicates = true
    /// Hash each media file's bytes (SHA-256, streamed).
    public var contentHash = true
    /// Perceptual hashes and frame measures (needs ffmpeg when files are present).
    public var perceptualHash = true
    public var hashKind: PerceptualHashKind = .pHash
    /// Two items are near duplicates when their 64-bit hashes differ in at most this many bits
    /// (for videos: at every sampled frame).
    public var nearDuplicateBits = 10
    /// Frames sampled from each video for its perceptual hashes and measures.
    public var videoFrames = 3

    // Quality.
    /// The training resolution quality is measured against.
    public var target = Resolution(width: 1280, height: 720)
    /// Frames of one training clip (4n + 1) at `frameRate` frames per second.
    public var clipFrames = 81
    public var frameRate = 16.0
    /// Captions whose length (characters) lies in this range score fully on length.
    public var captionIdealMin = 100
    public var captionIdealMax = 1_000
    /// Items scoring below this are dropped ("low quality"); 0 keeps all.
    public var minQuality = 0.4
    /// Score the "template caption" part: 0 for a caption whose content words repeat a template
    /// (Kiwi, `Statistics.MorphemeCalculator.templateFlags`), 1 otherwise. Off by default.
    public var templateCaptions = false

    // Outliers.
    /// Absolute limits; items outside are range outliers.
    public var durationMin = 49.0 / 16.0
    public var durationMax = 3_600.0
    public var captionLengthMin = 20
    public var captionLengthMax = 20_000
    public var minShortSide = 240
    public var dropRangeOutliers = true
    /// Tukey's fences: outside [Q1 − k·IQR, Q3 + k·IQR] of video durations or caption lengths.
    public var iqrFactor = 1.5
    public var dropIQROutliers = false

    // Captions.
    /// Truncate cleaned captions to at most this many characters (Unicode scalars); nil: no limit.
    public var captionTruncate: Int?

    // Weights.
    public var weighting: WeightingMethod = .effective
    /// β of the effective-number weighting (0 ≤ β < 1).
    public var beta = 0.9999

    // Media.
    /// Folder that relative paths are resolved against; nil: the manifest's folder.
    public var mediaRoot: String?
    /// Drop items whose file is missing (default: keep them and run the metadata rules only).
    public var requireMedia = false
    /// Path of the ffmpeg binary; nil: found on PATH.
    public var ffmpeg: String?
    /// Parallel workers for captions, hashing and frame extraction.
    public var workers = 2

    public init() {}

    /// Checks every value, naming the option and what is allowed.
    public func validate() throws(CurationError) {
        func check(_ ok: Bool, _ name: String, _ value: Any, _ allowed: String) throws(CurationError) {
            if !ok { throw .invalidOption(name: name, value: "\(value)", allowed: allowed) }
        }
        try check(
            valFraction >= 0 && valFraction < 1, "val_fraction", valFraction,
            "a share from 0 up to (not including) 1, e.g. 0.1")
        try check(sampleSize.map { $0 > 0 } ?? true, "sample", sampleSize ?? 0, "a positive number of items")
        try check(
            imageShare >= 0 && imageShare <= 1, "image_share", imageShare, "a share from 0 to 1, e.g. 0.5 for 50:50")
        try check(
            (0...32).contains(nearDuplicateBits), "near_duplicate_bits", nearDuplicateBits,
            "0 to 32 bits of 64 (unrelated images differ in about 32; copies in under 10)")
        try check((1...15).contains(videoFrames), "video_frames", videoFrames, "1 to 15 frames")
        try check(target.width > 0 && target.height > 0, "target", target, "WIDTHxHEIGHT, e.g. 1280x720")
        try check(
            clipFrames >= 1 && clipFrames % 4 == 1, "clip_frames", clipFrames,
            "a frame count of the form 4n + 1, e.g. 81 or 49")
        try check(frameRate > 0, "frame_rate", frameRate, "a positive number of frames per second, e.g. 16")
        try check(
            captionIdealMin >= 0 && captionIdealMin <= captionIdealMax, "caption_ideal_min", captionIdealMin,
            "a length no greater than caption_ideal_max (\(captionIdealMax))")
        try check(minQuality >= 0 && minQuality <= 1, "min_quality", minQuality, "a score from 0 to 1, e.g. 0.4")
        try check(
            durationMin >= 0 && durationMin <= durationMax, "duration_min", durationMin,
            "seconds from 0 up to duration_max (\(durationMax))")
        try check(
            captionLengthMin >= 0 && captionLengthMin <= captionLengthMax, "caption_length_min", captionLengthMin,
            "characters from 0 up to caption_length_max (\(captionLengthMax))")
        try check(minShortSide >= 0, "min_short_side", minShortSide, "a non-negative number of pixels")
        try check(iqrFactor > 0, "iqr_factor", iqrFactor, "a positive factor, e.g. 1.5 (Tukey) or 3")
        try check(
            captionTruncate.map { $0 > 0 } ?? true, "caption_truncate", captionTruncate ?? 0,
            "a positive number of characters")
        try check(beta >= 0 && beta < 1, "beta", beta, "a number from 0 up to (not including) 1, e.g. 0.9999")
        try check(workers >= 1, "workers", workers, "at least 1")
    }

    /// Seconds a video needs for one training clip: `clipFrames / frameRate`.
    public var clipSeconds: Double { Double(clipFrames) / frameRate }
}
