/// A manifest read from a file: the accepted items, every rejected row with its reason, and the
/// counts that reconcile (`rowsRead == items.count + rejected.count`).
public struct Manifest: Sendable {
    /// The file it was read from.
    public var source: String
    public var format: ManifestFormat
    /// Column names as they appear in the file (JSON Lines: keys in order of first appearance).
    public var columns: [String]
    /// Which file column feeds each canonical field.
    public var columnMap: ResolvedColumns
    public var items: [ManifestItem]
    public var rejected: [RejectedRow]
    /// Blank lines skipped (not rows; counted so that nothing goes unexplained).
    public var blankLines: Int
    /// The captions went to the reader's `CaptionSink` and were not kept: every item's `caption`
    /// (and its caption field) is empty.
    public var captionsSentToSink = false

    public init(
        source: String, format: ManifestFormat, columns: [String], columnMap: ResolvedColumns,
        items: [ManifestItem], rejected: [RejectedRow], blankLines: Int = 0
    ) {
        self.source = source
        self.format = format
        self.columns = columns
        self.columnMap = columnMap
        self.items = items
        self.rejected = rejected
        self.blankLines = blankLines
    }

    /// Data rows read (header and blank lines excluded): accepted + rejected.
    public var rowsRead: Int { items.count + rejected.count }

    /// Rejections grouped by reason kind, most frequent first.
    public var rejectionCounts: [(reason: String, count: Int)] {
        var counts: [String: Int] = [:]
        for row in rejected { counts[row.kind.rawValue, default: 0] += 1 }
        return counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { ($0.key, $0.value) }
    }
}

public enum ManifestFormat: String, Sendable, Codable {
    case csv
    case jsonLines = "jsonl"
}

/// A row that could not be accepted, with where and why. Never dropped silently: readers collect
/// them and `RejectsWriter` writes them out.
public struct RejectedRow: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case wrongFieldCount = "wrong field count"
        case malformedQuoting = "malformed quoting"
        case invalidUTF8 = "invalid UTF-8"
        case missingValue = "missing value"
        case notANumber = "not a number"
        case outOfRange = "out of range"
        case unknownMediaType = "unknown media type"
        case emptyCaption = "empty caption"
        case duplicatePath = "duplicate path"
        case invalidJSON = "invalid JSON"
    }

    /// Physical line (1-based; the header is line 1) where the row starts.
    public var line: Int
    /// The column concerned, when one is.
    public var column: String?
    public var kind: Kind
    /// A sentence with the offending value, e.g. `width "19x0" is not a whole number`.
    public var detail: String
    /// The row's text as read (invalid bytes replaced by U+FFFD).
    public var raw: String

    public init(line: Int, column: String?, kind: Kind, detail: String, raw: String) {
        self.line = line
        self.column = column
        self.kind = kind
        self.detail = detail
        self.raw = raw
    }
}
