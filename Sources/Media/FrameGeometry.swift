import Manifest

/// How a picture of another shape is fitted into the target size.
public enum FitMode: String, Sendable, Codable, CaseIterable {
    /// Scale until the target is covered, then cut the overflow from the centre (no bars; the
    /// edges of a picture of another shape are lost).
    case cover
    /// Scale until the picture fits inside, then add black bars (nothing lost; bars are trained on).
    case pad
}

/// The output size: one fixed size, or the aspect-ratio bucket nearest each source.
public enum FrameTarget: Sendable, Equatable {
    case fixed(Resolution)
    case buckets(AspectBuckets)

    /// The output size for a source of this display aspect (width ÷ height).
    public func size(forAspect aspect: Double) -> Resolution {
        switch self {
        case .fixed(let resolution): resolution
        case .buckets(let buckets): buckets.bucket(forAspect: aspect)
        }
    }
}

/// Output sizes whose sides are multiples of `step` pixels and whose area stays within
/// `pixelBudget`; each source goes to the bucket whose aspect ratio is nearest its own
/// (nearest on a log scale, so 2:1 and 1:2 are equally far from 1:1), so that little is cropped.
public struct AspectBuckets: Sendable, Equatable {
    public var pixelBudget: Int
    public var step: Int
    /// Widest (and, inverted, tallest) aspect ratio offered.
    public var maximumAspect: Double

    public init(pixelBudget: Int, step: Int = 16, maximumAspect: Double = 3) {
        self.pixelBudget = pixelBudget
        self.step = step
        self.maximumAspect = maximumAspect
    }

    /// Every bucket, widest first: for each width (a multiple of `step`), the tallest height
    /// (a multiple of `step`) that keeps the area within the budget.
    public var all: [Resolution] {
        guard step > 0, pixelBudget >= step * step else { return [] }
        var sizes: [Resolution] = []
        var width = step
        while width * step <= pixelBudget {
            let height = pixelBudget / width / step * step
            let aspect = Double(width) / Double(height)
            if height >= step, aspect <= maximumAspect + 1e-9, aspect >= 1 / maximumAspect - 1e-9 {
                sizes.append(Resolution(width: width, height: height))
            }
            width += step
        }
        return sizes.reversed()
    }

    /// The bucket nearest `aspect`; ties go to the larger area.
    public func bucket(forAspect aspect: Double) -> Resolution {
        let target = log(aspect)
        var best: Resolution?
        var bestDistance = Double.infinity
        for size in all {
            let distance = abs(log(Double(size.width) / Double(size.height)) - target)
            if distance < bestDistance - 1e-12
                || (abs(distance - bestDistance) <= 1e-12 && size.pixels > (best?.pixels ?? 0))
            {
                best = size
                bestDistance = distance
            }
        }
        return best ?? Resolution(width: step, height: step)
    }
}

/// Exact scale and crop (or pad) numbers for one source into one target, computed here rather
/// than in ffmpeg expressions so that tests can check them and the manifest can state them.
public struct ScaleAndPlace: Sendable, Equatable {
    /// Size the (square-pixel, upright) source is scaled to.
    public var scaledWidth: Int
    public var scaledHeight: Int
    /// cover: top-left corner of the crop window in the scaled picture.
    /// pad: top-left corner of the scaled picture on the target canvas.
    public var x: Int
    public var y: Int
    public var target: Resolution
    public var fit: FitMode

    /// - Parameters:
    ///   - aspect: the source's display aspect (sample aspect ratio and rotation applied).
    ///   - zoom: ≥ 1; scales beyond cover so that the crop window can move (crop jitter).
    ///   - offset: where the crop window sits in the overflow, 0…1 each way (0.5 = centred).
    public init(
        aspect: Double, target: Resolution, fit: FitMode, zoom: Double = 1, offset: (x: Double, y: Double) = (0.5, 0.5)
    ) {
        self.target = target
        self.fit = fit
        let targetAspect = Double(target.width) / Double(target.height)
        switch fit {
        case .cover:
            var width: Int
            var height: Int
            if aspect >= targetAspect {
                height = Self.even(Double(target.height) * zoom)
                width = Self.even(Double(height) * aspect)
            } else {
                width = Self.even(Double(target.width) * zoom)
                height = Self.even(Double(width) / aspect)
            }
            width = max(width, target.width)
            height = max(height, target.height)
            scaledWidth = width
            scaledHeight = height
            x = Self.evenDown(Double(width - target.width) * min(max(offset.x, 0), 1))
            y = Self.evenDown(Double(height - target.height) * min(max(offset.y, 0), 1))
        case .pad:
            var width: Int
            var height: Int
            if aspect >= targetAspect {
                width = target.width
                height = Self.even(Double(target.width) / aspect)
            } else {
                height = target.height
                width = Self.even(Double(target.height) * aspect)
            }
            width = min(max(width, 2), target.width)
            height = min(max(height, 2), target.height)
            scaledWidth = width
            scaledHeight = height
            x = Self.evenDown(Double(target.width - width) / 2)
            y = Self.evenDown(Double(target.height - height) / 2)
        }
    }

    /// Nearest even number (chroma of 4:2:0 pictures comes in 2×2 blocks).
    static func even(_ value: Double) -> Int { Int((value / 2).rounded()) * 2 }
    static func evenDown(_ value: Double) -> Int { Int((value / 2).rounded(.down)) * 2 }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
