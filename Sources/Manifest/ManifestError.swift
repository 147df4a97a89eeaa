import Support

/// Problems that stop a manifest from being read at all (bad rows are `RejectedRow`s instead).
public enum ManifestError: ActionableError, Equatable {
    case cannotOpen(path: String, reason: String)
    case empty(path: String)
    case noHeader(path: String)
    case requiredColumnsMissing([String], available: [String], source: String)
    case mappedColumnMissing(column: String, header: String, available: [String], source: String)
    case badColumnMapping(String, why: String)
    /// Columns the rows need or that seem present under a name no alias matches (`dur`, `cat`).
    case columnsNotRecognised([ColumnGuess], unmapped: [String], source: String)
    /// Video rows need a duration and the file has no column wanlora reads it from.
    case durationColumnMissing(videoRows: Int, unmapped: [String], source: String)
    case unknownFormat(path: String)
    case cannotWrite(path: String, reason: String)

    public var problem: String {
        switch self {
        case .cannotOpen(let path, let reason): "cannot read manifest \(path): \(reason)"
        case .empty(let path): "manifest \(path) is empty"
        case .noHeader(let path): "manifest \(path) has no header row (its first line is blank or invalid)"
        case .requiredColumnsMissing(let missing, let available, let source):
            "manifest \(source) lacks the column(s) \(missing.joined(separator: ", ")); "
                + "its header is: \(available.joined(separator: ", "))"
        case .mappedColumnMissing(let column, let header, let available, let source):
            "--column \(column)=\(header): manifest \(source) has no column named "
                + "'\(header)'; its header is: \(available.joined(separator: ", "))"
        case .badColumnMapping(let pair, let why): "--column \(pair) is not a valid mapping: \(why)"
        case .columnsNotRecognised(let guesses, let unmapped, let source):
            "manifest \(source): "
                + guesses.map { "no \($0.column) column (expected one of: \(Self.expected($0.column)))" }
                .joined(separator: "; ")
                + "; headers not recognised: \(unmapped.joined(separator: ", "))"
        case .durationColumnMissing(let videoRows, let unmapped, let source):
            "manifest \(source) has \(videoRows) video row\(videoRows == 1 ? "" : "s") but no duration column "
                + "(expected one of: \(Self.expected("duration")))"
                + (unmapped.isEmpty ? "" : "; headers not recognised: \(unmapped.joined(separator: ", "))")
        case .unknownFormat(let path): "cannot tell whether \(path) is CSV or JSON Lines"
        case .cannotWrite(let path, let reason): "cannot write \(path): \(reason)"
        }
    }

    public var remedy: String {
        switch self {
        case .cannotOpen: "check the path and its permissions"
        case .empty, .noHeader:
            "the first line must name the columns, e.g. path,media_type,width,height,duration,category,caption"
        case .requiredColumnsMissing:
            "rename the columns or map them, e.g. --column caption=설명 --column path=파일경로 (canonical names: "
                + CanonicalColumn.allCases.map(\.rawValue).joined(separator: ", ") + ")"
        case .mappedColumnMissing: "use one of the header names listed (matching ignores letter case)"
        case .badColumnMapping:
            "write CANONICAL=HEADER with a canonical name among: "
                + CanonicalColumn.allCases.map(\.rawValue).joined(separator: ", ")
        case .columnsNotRecognised(let guesses, _, _):
            "map them: " + guesses.map { "--column \($0.column)=\($0.header)" }.joined(separator: " ")
                + " (or rename the headers)"
        case .durationColumnMissing(_, let unmapped, _):
            "map the column that holds seconds: --column duration=\(unmapped.first ?? "HEADER") "
                + "(or add a duration column)"
        case .unknownFormat: "name the file with a .csv, .jsonl or .ndjson extension"
        case .cannotWrite: "check that the folder exists and is writable, and that the disk is not full"
        }
    }
}

extension ManifestError {
    /// A canonical column's recognised header names, for messages.
    static func expected(_ column: String) -> String {
        (CanonicalColumn(rawValue: column)?.aliases ?? [column]).joined(separator: ", ")
    }
}
