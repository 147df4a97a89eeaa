import Manifest

/// Count and share (0…1) of something among a dataset's items.
public struct CountShare: Codable, Sendable, Equatable {
    public var count: Int
    public var share: Double

    public init(count: Int, of total: Int) {
        self.count = count
        self.share = total > 0 ? Double(count) / Double(total) : 0
    }
}

/// A labelled count, in a distribution sorted by count (descending), then label.
public struct LabelCount: Codable, Sendable, Equatable {
    public var label: String
    public var count: Int
    public var share: Double
}

/// Minimum, maximum and mean of a set of values (all `nil` when the set is empty).
public struct Summary: Codable, Sendable, Equatable {
    public var count: Int
    public var mean: Double?
    public var min: Double?
    public var max: Double?
    public var median: Double?
    /// 95th percentile (linear interpolation between order statistics).
    public var p95: Double?
}

/// Half-open bucket [lower, upper) of a histogram; `upper == nil` means unbounded.
public struct Bucket: Codable, Sendable, Equatable {
    public var lower: Double
    public var upper: Double?
    public var count: Int
    public var share: Double
}

/// Everything SPEC §2 computes, for one dataset (a manifest or a split).
public struct DatasetStatistics: Codable, Sendable {
    public var name: String
    public var source: String
    public var rowsRead: Int
    public var rejectedRows: Int
    public var items: Int
    public var mediaTypes: MediaTypeStatistics
    public var resolutions: ResolutionStatistics
    public var durations: DurationStatistics
    public var categories: CategoryStatistics
    public var captions: CaptionStatistics
    public var words: WordStatistics
    /// Morpheme-level caption statistics (`analyze --morphemes`; nil without it).
    public var morphemes: MorphemeStatistics?
    /// Pearson correlation of video duration (s) and caption length (characters), over videos.
    public var durationCaptionCorrelation: Double?
}

public struct MediaTypeStatistics: Codable, Sendable {
    public var images: CountShare
    public var videos: CountShare
    /// images / videos (nil without videos).
    public var imageToVideoRatio: Double?
}

/// How an item's size relates to the training resolution.
public enum ConversionKind: String, Codable, Sendable, CaseIterable {
    /// Already the target size.
    case atTarget = "at_target"
    /// Same aspect ratio, larger: a plain downscale.
    case downscale
    /// Same aspect ratio, smaller: an upscale (quality loss).
    case upscale
    /// Different aspect ratio: scale and crop (or pad).
    case reframe
}

public struct ResolutionStatistics: Codable, Sendable {
    public var target: String
    /// Every resolution seen, most frequent first (labels like `1920×1080`).
    public var distribution: [LabelCount]
    public var atTarget: CountShare
    public var needConversion: CountShare
    /// Items per kind of conversion needed.
    public var conversion: [String: Int]
    /// Items in portrait orientation (height > width).
    public var portrait: Int
}

public struct DurationStatistics: Codable, Sendable {
    /// Seconds, over videos.
    public var seconds: Summary
    /// [0,10), [10,20), [20,30), [30,60), [60,∞) seconds.
    public var buckets: [Bucket]
    /// Videos shorter than one training clip at 16 fps (81 frames = 5.0625 s; 49 frames = 3.0625 s).
    public var shorterThan81Frames: Int
    public var shorterThan49Frames: Int
    /// Tukey's fences on duration: Q1 − 1.5·IQR and Q3 + 1.5·IQR, and the videos outside them.
    public var lowerFence: Double?
    public var upperFence: Double?
    public var outliersAbove: Int
    public var outliersBelow: Int
    /// The longest videos (path, seconds, line), longest first.
    public var longest: [ItemRef]
    /// Share of each fine histogram bin (for charts): 5-second bins up to 120 s, then one for the rest.
    public var histogram: [Bucket]
}

/// A pointer to one item, for findings and extremes.
public struct ItemRef: Codable, Sendable, Equatable {
    public var path: String
    public var line: Int
    public var value: Double
}

public struct CategoryStatistics: Codable, Sendable {
    public var distribution: [LabelCount]
    /// Largest over smallest category count (nil with fewer than one category).
    public var maxMinRatio: Double?
    /// G = Σi Σj |xi − xj| / (2 n² mean) over the category counts.
    public var gini: Double?
    /// Categories with fewer than a quarter of the uniform share (n / k / 4 items).
    public var minority: [LabelCount]
}

public struct CaptionStatistics: Codable, Sendable {
    /// Unicode scalars after NFC and trimming.
    public var length: Summary
    /// Captions longer than `lengthLimit` characters.
    public var lengthLimit: Int
    public var overLimit: Int
    /// Captions that were not NFC (e.g. decomposed Hangul) and were normalised before measuring.
    public var normalised: Int
    public var histogram: [Bucket]
    public var longest: [ItemRef]
}

public struct WordStatistics: Codable, Sendable {
    public var totalWords: Int
    public var uniqueWords: Int
    /// unique / total over the whole split.
    public var corpusTTR: Double?
    /// Per-caption unique / total words.
    public var captionTTR: Summary
    public var wordsPerCaption: Summary
    public var topWords: [WordCount]
    /// Captions with no word at all (TTR undefined; excluded from the TTR summary).
    public var captionsWithoutWords: Int
}

public struct WordCount: Codable, Sendable, Equatable {
    public var word: String
    public var count: Int
}
