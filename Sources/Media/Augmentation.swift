import Support

/// The transforms a clip may get when its category is rare.
public enum AugmentationKind: String, Sendable, Codable, CaseIterable {
    case hflip
    /// Zoom 5–20% beyond cover and move the crop window.
    case crop
    /// Brightness ±0.06, contrast and saturation ±10%, hue ±6°.
    case color
    /// Play backwards (video only).
    case reverse
    /// 0.8–0.95× or 1.05–1.25× speed (video only; needs the longer source span).
    case speed

    public var videoOnly: Bool { self == .reverse || self == .speed }
}

/// One augmented variant: every field at its neutral value means "no change".
public struct Augmentation: Sendable, Equatable, Codable {
    public var horizontalFlip = false
    /// ≥ 1; 1 = no crop jitter.
    public var cropZoom = 1.0
    /// Crop window position in the overflow, 0…1 each way.
    public var cropX = 0.5
    public var cropY = 0.5
    public var brightness = 0.0
    public var contrast = 1.0
    public var saturation = 1.0
    /// Degrees.
    public var hue = 0.0
    public var reverse = false
    /// Source seconds per output second; 1 = normal speed.
    public var speed = 1.0

    public init() {}

    public var isIdentity: Bool { self == Augmentation() }
    var changesColour: Bool { brightness != 0 || contrast != 1 || saturation != 1 || hue != 0 }

    /// A compact record of the transform for the manifest, e.g.
    /// `hflip;crop=1.12@0.31,0.77;color=b+0.03,c1.05,s0.92,h-4;reverse;speed=1.2`.
    public var label: String {
        var parts: [String] = []
        if horizontalFlip { parts.append("hflip") }
        if cropZoom != 1 {
            parts.append("crop=\(Self.fixed(cropZoom, 3))@\(Self.fixed(cropX, 2)),\(Self.fixed(cropY, 2))")
        }
        if changesColour {
            parts.append(
                "color=b\(Self.signed(brightness, 3)),c\(Self.fixed(contrast, 3)),s\(Self.fixed(saturation, 3)),"
                    + "h\(Self.signed(hue, 1))")
        }
        if reverse { parts.append("reverse") }
        if speed != 1 { parts.append("speed=\(Self.fixed(speed, 3))") }
        return parts.joined(separator: ";")
    }

    /// Draws a non-empty random subset of `kinds` (video-only kinds are left out for images) with
    /// random strengths. Values are rounded as the label prints them, so that the label is the
    /// whole truth about the transform.
    public static func draw(kinds: Set<AugmentationKind>, isVideo: Bool, random: inout SeededRandom) -> Augmentation {
        let usable = AugmentationKind.allCases.filter { kinds.contains($0) && (isVideo || !$0.videoOnly) }
        var augmentation = Augmentation()
        guard !usable.isEmpty else { return augmentation }
        var chosen: [AugmentationKind] = []
        while chosen.isEmpty { chosen = usable.filter { _ in random.unit() < 0.5 } }
        for kind in chosen {
            switch kind {
            case .hflip: augmentation.horizontalFlip = true
            case .crop:
                augmentation.cropZoom = rounded(random.uniform(1.05, 1.2), 3)
                augmentation.cropX = rounded(random.unit(), 2)
                augmentation.cropY = rounded(random.unit(), 2)
            case .color:
                augmentation.brightness = rounded(random.uniform(-0.06, 0.06), 3)
                augmentation.contrast = rounded(random.uniform(0.9, 1.1), 3)
                augmentation.saturation = rounded(random.uniform(0.9, 1.1), 3)
                augmentation.hue = rounded(random.uniform(-6, 6), 1)
            case .reverse: augmentation.reverse = true
            case .speed:
                let slower = random.unit() < 0.5
                augmentation.speed = rounded(slower ? random.uniform(0.8, 0.95) : random.uniform(1.05, 1.25), 3)
            }
        }
        return augmentation
    }

    static func rounded(_ value: Double, _ places: Int) -> Double {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        return (value * scale).rounded() / scale
    }

    static func fixed(_ value: Double, _ places: Int) -> String {
        let text = NumberFormat.decimal(value, places)
        // Trim trailing zeros: 1.200 → 1.2, 1.000 → 1.
        guard text.contains(".") else { return text }
        var trimmed = Substring(text)
        while trimmed.hasSuffix("0") { trimmed = trimmed.dropLast() }
        if trimmed.hasSuffix(".") { trimmed = trimmed.dropLast() }
        return String(trimmed)
    }

    static func signed(_ value: Double, _ places: Int) -> String {
        value < 0 ? fixed(value, places) : "+" + fixed(value, places)
    }
}

/// Which items get augmented copies, how many and of what kind.
public struct AugmentationPolicy: Sendable, Equatable {
    /// Items of these categories are augmented.
    public var categories: Set<String>
    /// Items whose curation `weight` is at least this are augmented (rare categories get large
    /// class-balancing weights).
    public var minimumWeight: Double?
    public var kinds: Set<AugmentationKind>
    /// Augmented copies per clip.
    public var copies: Int
    public var seed: UInt64

    public init(
        categories: Set<String> = [], minimumWeight: Double? = nil,
        kinds: Set<AugmentationKind> = Set(AugmentationKind.allCases), copies: Int = 1, seed: UInt64 = 42
    ) {
        self.categories = categories
        self.minimumWeight = minimumWeight
        self.kinds = kinds
        self.copies = copies
        self.seed = seed
    }

    public var isActive: Bool { copies > 0 && !kinds.isEmpty && (!categories.isEmpty || minimumWeight != nil) }

    public func applies(category: String, weight: Double?) -> Bool {
        guard isActive else { return false }
        if categories.contains(category) { return true }
        if let minimumWeight, let weight, weight >= minimumWeight { return true }
        return false
    }

    /// The transform of copy `copy` of clip `clip` of `source`: the same every run.
    public func augmentation(source: String, clip: Int, copy: Int, isVideo: Bool) -> Augmentation {
        var random = SeededRandom(seed: seed ^ StableHash.fnv1a64(source) ^ UInt64(clip &* 7_919 &+ copy &* 104_729))
        return Augmentation.draw(kinds: kinds, isVideo: isVideo, random: &random)
    }
}

/// A hash that is the same on every machine and every run (Swift's `Hasher` is seeded per process).
enum StableHash {
    /// `start`: the offset basis, or an earlier hash to continue from.
    static func fnv1a64(_ text: String, from start: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var hash = start
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    static func hex(_ value: UInt64, digits: Int = 16) -> String {
        let text = String(value, radix: 16)
        let padded = String(repeating: "0", count: max(0, 16 - text.count)) + text
        return String(padded.prefix(digits))
    }
}
