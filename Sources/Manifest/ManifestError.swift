import Support

/// Problems that stop a manifest from being read at all (bad rows are `RejectedRow`s instead).
public enum ManifestError: ActionableError, Equatable {
    case cannotOpen(path: String, reason: String)
    case empty(path: String)
    case noHeader(path: String)
    case requiredColumnsMissing([String], available: [String], source: String)
    case mappedColumnMissing(column: String, header: String, available: [String], source: String)
    case badColumnMapping(String, why: String)
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
        case .unknownFormat: "name the file with a .csv, .jsonl or .ndjson extension"
        case .cannotWrite: "check that the folder exists and is writable, and that the disk is not full"
        }
    }
}
