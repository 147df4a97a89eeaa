import Manifest

/// A quality score in [0, 1]: the weighted mean of the parts that apply to an item (weights
/// renormalised over those parts). Each part is 1 when the item is fully usable in that respect.
///
/// | part | weight | 1 when | falls to |
/// |---|---|---|---|
/// | resolution | 0.30 | its centre crop to the target's aspect is as tall as the target | crop / target height |
/// | aspect | 0.15 | the aspect ratio equals the target's | the share of the frame a centre crop keeps |
/// | duration (videos) | 0.15 | long enough for one clip (clip_frames / frame_rate s) | duration / clip length |
/// | caption length | 0.15 | from caption_ideal_min to caption_ideal_max characters | length / min, or max / length |
/// | caption variety | 0.10 | type-token ratio ≥ 0.6 | TTR / 0.6 |
/// | brightness (media) | 0.05 | mean luma in 32…224 | linearly to 0 at 0 or 255 |
/// | contrast (media) | 0.05 | luma standard deviation ≥ 32 | σ / 32 |
/// | sharpness (media) | 0.05 | Laplacian variance ≥ 100 (256×256 grey) | variance / 100 |
/// | template caption (`template_captions`, off by default) | 0.10 | the caption is not a template caption | 0 |
public struct QualityScore: Sendable, Equatable {
    public var resolution: Double
    public var aspect: Double
    public var duration: Double?
    public var captionLength: Double
    public var captionVariety: Double
    public var brightness: Double?
    public var contrast: Double?
    public var sharpness: Double?
    /// 0 for a template caption, 1 otherwise; nil unless `CurationOptions.templateCaptions`.
    public var templateCaption: Double?

    public static let weights: [(name: String, weight: Double)] = [
        ("resolution", 0.30), ("aspect", 0.15), ("duration", 0.15), ("caption length", 0.15),
        ("caption variety", 0.10), ("brightness", 0.05), ("contrast", 0.05), ("sharpness", 0.05),
        ("template caption", 0.10),
    ]

    /// Type-token ratio at and above which a caption scores fully on variety.
    public static let fullVarietyTTR = 0.6
    public static let fullContrast = 32.0
    public static let fullSharpness = 100.0
    public static let brightnessRange = 32.0...224.0

    /// The parts in `weights` order (nil: does not apply).
    public var parts: [Double?] {
        [resolution, aspect, duration, captionLength, captionVariety, brightness, contrast, sharpness, templateCaption]
    }

    /// The weighted mean of the parts that apply.
    public var value: Double {
        var sum = 0.0
        var weight = 0.0
        for (part, entry) in zip(parts, Self.weights) {
            guard let part else { continue }
            sum += part * entry.weight
            weight += entry.weight
        }
        return weight > 0 ? sum / weight : 0
    }

    /// The weakest part that applies, for the log line of a low-quality item.
    public var weakest: (name: String, value: Double) {
        var best = (name: "", value: 2.0)
        for (part, entry) in zip(parts, Self.weights) {
            if let part, part < best.value { best = (entry.name, part) }
        }
        return best
    }

    /// `isTemplateCaption`: the item's flag when `options.templateCaptions` is on (else ignored).
    public init(
        item: ManifestItem, captionLength: Int, typeTokenRatio: Double?, measures: FrameMeasures?,
        options: CurationOptions, isTemplateCaption: Bool? = nil
    ) {
        let target = options.target
        let width = Double(item.resolution.width)
        let height = Double(item.resolution.height)
        let aspect = width / height
        let targetAspect = Double(target.width) / Double(target.height)
        let cropHeight = aspect > targetAspect ? height : width / targetAspect
        resolution = min(1, cropHeight / Double(target.height))
        self.aspect = min(aspect, targetAspect) / max(aspect, targetAspect)
        if item.mediaType == .video {
            duration = min(1, max(0, (item.duration ?? 0) / options.clipSeconds))
        }
        let length = Double(captionLength)
        if captionLength < options.captionIdealMin {
            self.captionLength = options.captionIdealMin > 0 ? length / Double(options.captionIdealMin) : 1
        } else if captionLength > options.captionIdealMax {
            self.captionLength = Double(options.captionIdealMax) / length
        } else {
            self.captionLength = 1
        }
        captionVariety = min(1, (typeTokenRatio ?? 0) / Self.fullVarietyTTR)
        if options.templateCaptions, let isTemplateCaption { templateCaption = isTemplateCaption ? 0 : 1 }
        if let measures {
            let luma = measures.brightness
            if luma < Self.brightnessRange.lowerBound {
                brightness = luma / Self.brightnessRange.lowerBound
            } else if luma > Self.brightnessRange.upperBound {
                brightness = (255 - luma) / (255 - Self.brightnessRange.upperBound)
            } else {
                brightness = 1
            }
            brightness = max(0, min(1, brightness!))
            contrast = min(1, measures.contrast / Self.fullContrast)
            sharpness = min(1, measures.sharpness / Self.fullSharpness)
        }
    }
}
