/// The canonical manifest fields that wanlora understands.
public enum CanonicalColumn: String, Sendable, CaseIterable, Codable {
    case path
    case mediaType = "media_type"
    case width
    case height
    case resolution
    case duration
    case category
    case caption
    case id
    case fps

    /// Position in `allCases`, without a search.
    var ordinal: Int {
        switch self {
        case .path: 0
        case .mediaType: 1
        case .width: 2
        case .height: 3
        case .resolution: 4
        case .duration: 5
        case .category: 6
        case .caption: 7
        case .id: 8
        case .fps: 9
        }
    }

    /// Header spellings recognised without an explicit mapping (compared case-insensitively).
    var aliases: [String] {
        switch self {
        case .path: ["path", "file", "file_path", "filepath", "filename", "file_name", "media_path"]
        case .mediaType: ["media_type", "mediatype", "media", "type", "kind"]
        case .width: ["width", "w"]
        case .height: ["height", "h"]
        case .resolution: ["resolution", "size", "dimensions"]
        case .duration: ["duration", "duration_s", "duration_sec", "seconds", "length_s"]
        case .category: ["category", "class", "label"]
        case .caption: ["caption", "text", "description", "prompt"]
        case .id: ["id", "item_id", "uid"]
        case .fps: ["fps", "frame_rate", "framerate"]
        }
    }
}

/// User-given mappings from canonical fields to the file's header names, e.g. `caption=설명`.
public struct ColumnMapping: Sendable, Equatable {
    public var explicit: [CanonicalColumn: String]

    public init(_ explicit: [CanonicalColumn: String] = [:]) {
        self.explicit = explicit
    }

    /// Parses `canonical=header` pairs as given on the command line.
    public init(parsing pairs: [String]) throws(ManifestError) {
        var explicit: [CanonicalColumn: String] = [:]
        for pair in pairs {
            guard let equals = pair.firstIndex(of: "=") else {
                throw .badColumnMapping(pair, why: "it has no '='")
            }
            let key = pair[..<equals].trimmingASCIIWhitespace()
            let value = pair[pair.index(after: equals)...].trimmingASCIIWhitespace()
            guard let canonical = CanonicalColumn(rawValue: key.lowercased()) else {
                throw .badColumnMapping(pair, why: "'\(key)' is not a canonical column")
            }
            guard !value.isEmpty else { throw .badColumnMapping(pair, why: "the header name is empty") }
            explicit[canonical] = value
        }
        self.explicit = explicit
    }

    /// Finds each canonical field's column index in `header`; explicit mappings win over aliases.
    public func resolve(header: [String], source: String) throws(ManifestError) -> ResolvedColumns {
        let normalised = header.map { $0.trimmingASCIIWhitespace().lowercased() }
        var indices: [CanonicalColumn: Int] = [:]
        for column in CanonicalColumn.allCases {
            if let wanted = explicit[column] {
                guard let index = normalised.firstIndex(of: wanted.lowercased()) else {
                    throw .mappedColumnMissing(
                        column: column.rawValue, header: wanted, available: header, source: source)
                }
                indices[column] = index
            } else if let index = normalised.firstIndex(where: { column.aliases.contains($0) }),
                !explicit.values.contains(where: { $0.lowercased() == normalised[index] })
            {
                indices[column] = index
            }
        }
        let resolved = ResolvedColumns(indices: indices, header: header)
        var missing: [String] = []
        if indices[.path] == nil { missing.append("path") }
        if indices[.mediaType] == nil { missing.append("media_type") }
        if indices[.caption] == nil { missing.append("caption") }
        if indices[.resolution] == nil && (indices[.width] == nil || indices[.height] == nil) {
            missing.append("width and height (or resolution)")
        }
        if !missing.isEmpty {
            throw .requiredColumnsMissing(missing, available: header, source: source)
        }
        // An optional column the file seems to have under a name no alias matches (`dur`, `cat`) would
        // otherwise read as empty in every row: stop and name the header instead.
        let unmapped = Self.unmappedHeaders(header, resolved: resolved)
        let guesses = Self.lookAlikes(absent: [.duration, .category], unmapped: unmapped, resolved: resolved)
        if !guesses.isEmpty {
            throw .columnsNotRecognised(
                guesses.map { ColumnGuess(column: $0.column.rawValue, header: $0.header) }, unmapped: unmapped,
                source: source)
        }
        return resolved
    }

    /// Headers that feed no canonical column, in file order.
    static func unmappedHeaders(_ header: [String], resolved: ResolvedColumns) -> [String] {
        let used = Set(resolved.indices.values)
        return header.indices.filter { !used.contains($0) }.map { header[$0] }
    }

    /// For each absent column, the first unmapped header that looks like one of its names: a prefix of at
    /// least three letters either way (`dur` → duration, `category_name` → category), ignoring case and
    /// everything but letters and digits.
    static func lookAlikes(absent candidates: [CanonicalColumn], unmapped: [String], resolved: ResolvedColumns)
        -> [(column: CanonicalColumn, header: String)]
    {
        func letters(_ text: String) -> String { String(text.lowercased().filter { $0.isLetter || $0.isNumber }) }
        var guesses: [(column: CanonicalColumn, header: String)] = []
        for column in candidates where resolved[column] == nil {
            let names = ([column.rawValue] + column.aliases).map(letters)
            let match = unmapped.first { header in
                let key = letters(header)
                return names.contains { name in
                    min(key.count, name.count) >= 3 && (name.hasPrefix(key) || key.hasPrefix(name))
                }
            }
            if let match, !guesses.contains(where: { $0.header == match }) { guesses.append((column, match)) }
        }
        return guesses
    }
}

/// A header that seems to hold a canonical column under a name wanlora does not recognise.
public struct ColumnGuess: Sendable, Equatable {
    public var column: String
    public var header: String
    public init(column: String, header: String) {
        self.column = column
        self.header = header
    }
}

/// The column index of each canonical field found in a file's header.
public struct ResolvedColumns: Sendable, Equatable {
    public var indices: [CanonicalColumn: Int] {
        didSet { table = Self.table(indices) }
    }
    public var header: [String]
    /// `indices` as a flat array by `CanonicalColumn.ordinal` (-1 = absent): read per field per row.
    private var table: [Int]

    public init(indices: [CanonicalColumn: Int], header: [String]) {
        self.indices = indices
        self.header = header
        self.table = Self.table(indices)
    }

    private static func table(_ indices: [CanonicalColumn: Int]) -> [Int] {
        var table = Array(repeating: -1, count: CanonicalColumn.allCases.count)
        for (column, index) in indices { table[column.ordinal] = index }
        return table
    }

    @inline(__always)
    public subscript(_ column: CanonicalColumn) -> Int? {
        let index = table[column.ordinal]
        return index < 0 ? nil : index
    }

    /// The file's own name for a canonical column (for messages).
    public func name(of column: CanonicalColumn) -> String {
        indices[column].map { header[$0] } ?? column.rawValue
    }
}
