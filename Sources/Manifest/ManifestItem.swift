/// Whether an item is a still image or a video.
public enum MediaType: String, Sendable, Codable, CaseIterable, Comparable {
    case image
    case video

    /// Parses `image` / `video` in any letter case, surrounding spaces ignored.
    public init?(parsing text: some StringProtocol) {
        let trimmed = text.trimmingASCIIWhitespace()
        if trimmed == "image" {
            self = .image
            return
        }
        if trimmed == "video" {
            self = .video
            return
        }
        switch trimmed.lowercased() {
        case "image", "img", "photo", "picture": self = .image
        case "video", "vid", "clip", "movie": self = .video
        default: return nil
        }
    }

    public static func < (lhs: MediaType, rhs: MediaType) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A pixel size such as 1920×1080.
public struct Resolution: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public var width: Int
    public var height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    /// Parses `1920x1080`, `1920X1080`, `1920×1080` or `1920*1080` (spaces allowed around the separator).
    public init?(parsing text: some StringProtocol) {
        let scalars = Array(String(text).unicodeScalars)
        guard let separator = scalars.firstIndex(where: { $0 == "x" || $0 == "X" || $0 == "×" || $0 == "*" }) else {
            return nil
        }
        let left = String(String.UnicodeScalarView(scalars[..<separator])).trimmingASCIIWhitespace()
        let right = String(String.UnicodeScalarView(scalars[(separator + 1)...])).trimmingASCIIWhitespace()
        guard let width = Int(left), let height = Int(right), width > 0, height > 0 else { return nil }
        self.init(width: width, height: height)
    }

    /// `1920×1080`, the way the report writes it.
    public var description: String { "\(width)×\(height)" }
    /// `1920x1080`, for command lines and file names.
    public var ascii: String { "\(width)x\(height)" }
    public var pixels: Int { width * height }

    public static func < (lhs: Resolution, rhs: Resolution) -> Bool {
        (lhs.pixels, lhs.width) < (rhs.pixels, rhs.width)
    }
}

/// One accepted row of a manifest: the canonical values, parsed and validated, plus the row's
/// original fields so that later stages can write it back with the same schema.
public struct ManifestItem: Sendable {
    /// Physical line (1-based, the header is line 1) where the row starts in the source file.
    public var line: Int
    public var id: String?
    /// The path as written in the manifest (relative to the manifest's folder, or absolute).
    public var path: String
    public var mediaType: MediaType
    public var resolution: Resolution
    /// Seconds; `nil` for images.
    public var duration: Double?
    public var fps: Double?
    /// The category as written (empty when the manifest has none).
    public var category: String
    /// The caption exactly as written (not normalised; statistics normalise on the fly).
    public var caption: String
    /// All fields of the row in the order of `Manifest.columns` (shorter when trailing fields are absent).
    public var fields: [String]

    public init(
        line: Int, id: String? = nil, path: String, mediaType: MediaType, resolution: Resolution,
        duration: Double?, fps: Double? = nil, category: String, caption: String, fields: [String] = []
    ) {
        self.line = line
        self.id = id
        self.path = path
        self.mediaType = mediaType
        self.resolution = resolution
        self.duration = duration
        self.fps = fps
        self.category = category
        self.caption = caption
        self.fields = fields
    }
}

extension String {
    /// Removes spaces, tabs, CR and LF at both ends (cheap; no Foundation).
    func trimmingASCIIWhitespace() -> String {
        let utf8 = self.utf8
        guard let first = utf8.first, let last = utf8.last else { return self }
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0A }
        if !isSpace(first) && !isSpace(last) { return self }
        return Substring(self).trimmingASCIIWhitespace()
    }
}

extension StringProtocol {
    /// Removes spaces, tabs, CR and LF at both ends (cheap; no Foundation).
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard let first = firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = lastIndex(where: { !isSpace($0) })!
        return String(self[first...last])
    }
}
