import Support

/// Problems that stop `curate` from running at all. Problems with single rows are never errors:
/// they become lines of curation-log.csv.
public enum CurationError: ActionableError, Equatable {
    case invalidOption(name: String, value: String, allowed: String)
    case configUnreadable(path: String, reason: String)
    case configSyntax(path: String, line: Int, text: String, why: String)
    case configUnknownKey(path: String, line: Int, key: String, known: [String])
    case configWrongType(path: String, line: Int, key: String, expected: String)
    case ffmpegMissing(searched: String)
    case cannotWrite(path: String, reason: String)

    public var problem: String {
        switch self {
        case .invalidOption(let name, let value, _): "\(name) = \(value) is not allowed"
        case .configUnreadable(let path, let reason): "cannot read the configuration file \(path): \(reason)"
        case .configSyntax(let path, let line, let text, let why): "\(path):\(line): \(why): \(text)"
        case .configUnknownKey(let path, let line, let key, _): "\(path):\(line): [curate] has no key \"\(key)\""
        case .configWrongType(let path, let line, let key, let expected): "\(path):\(line): \(key) must be \(expected)"
        case .ffmpegMissing(let searched):
            "media files are present but ffmpeg was not found (searched "
                + "\(searched)); perceptual hashes and frame measures need it"
        case .cannotWrite(let path, let reason): "cannot write \(path): \(reason)"
        }
    }

    public var remedy: String {
        switch self {
        case .invalidOption(let name, _, let allowed): "set \(name) to \(allowed)"
        case .configUnreadable: "check the path and that the file is UTF-8 text"
        case .configSyntax:
            "curate reads a small TOML subset in its [curate] table: "
                + "key = value with a number, true/false or a \"string\"; "
                + "other TOML forms (arrays, inline tables, multi-line strings) "
                + "are not read here, give those options as flags"
        case .configUnknownKey(_, _, _, let known): "use one of: " + known.joined(separator: ", ")
        case .configWrongType: "write the value in that form, e.g. seed = 42, val_fraction = 0.1, duplicates = \"drop\""
        case .ffmpegMissing:
            "install it (`make deps-media`, or `apt-get install ffmpeg`), "
                + "or pass --no-perceptual-hash to use content hashes only"
        case .cannotWrite: "check that the folder is writable and the disk is not full"
        }
    }
}
