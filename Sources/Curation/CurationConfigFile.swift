import Foundation
import Manifest

/// A value of the `[curate]` table.
public enum ConfigScalar: Sendable, Equatable {
    case integer(Int)
    case real(Double)
    case bool(Bool)
    case string(String)
}

/// Reads the `[curate]` table of a TOML file into `CurationOptions`.
///
/// Only a small TOML subset is read, and only inside `[curate]`: `key = value` lines whose value
/// is an integer, a float, `true`/`false`, or a one-line string ("basic" with \" \\ \n \t \uXXXX
/// escapes, or 'literal'); `#` comments. Other tables are skipped unread, so a full wanlora.toml
/// can hold the `[curate]` table beside the others. When the toolkit's TOML Config library
/// (branch `planner`) lands, it can own this table; the keys stay the same.
public enum CurationConfigFile {
    /// Every key with the value form it takes, in documentation order.
    public static let keys: [(name: String, form: String)] = [
        ("seed", "a whole number ≥ 0"), ("val_fraction", "a number in [0, 1)"),
        ("sample", "a whole number of items, or \"max\""),
        ("image_share", "a number in [0, 1]"), ("stratify_category", "true or false"),
        ("duplicates", "\"drop\" or \"group\""), ("caption_duplicates", "true or false"),
        ("content_hash", "true or false"), ("perceptual_hash", "true or false"), ("hash", "\"phash\" or \"dhash\""),
        ("near_duplicate_bits", "a whole number 0…32"), ("video_frames", "a whole number 1…15"),
        ("target", "\"WIDTHxHEIGHT\""), ("clip_frames", "a whole number 4n + 1"), ("frame_rate", "a number"),
        ("caption_ideal_min", "a whole number"), ("caption_ideal_max", "a whole number"),
        ("min_quality", "a number in [0, 1]"),
        ("template_captions", "true or false"),
        ("duration_min", "seconds"), ("duration_max", "seconds"), ("caption_length_min", "a whole number"),
        ("caption_length_max", "a whole number"), ("min_short_side", "a whole number of pixels"),
        ("drop_range_outliers", "true or false"), ("iqr_factor", "a number"), ("drop_iqr_outliers", "true or false"),
        ("caption_truncate", "a whole number of characters"), ("weighting", "\"inverse\", \"sqrt\" or \"effective\""),
        ("beta", "a number in [0, 1)"), ("media_root", "a \"path\""), ("require_media", "true or false"),
        ("ffmpeg", "a \"path\""), ("jobs", "a whole number ≥ 1"),
    ]

    /// Reads `path` and applies its `[curate]` table to `options`.
    public static func apply(file path: String, to options: inout CurationOptions) throws(CurationError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .configUnreadable(
                path: path, reason: FileManager.default.fileExists(atPath: path) ? "not UTF-8 text" : "no such file")
        }
        for entry in try parse(text, source: path) {
            try apply(entry, to: &options, source: path)
        }
    }

    public struct Entry: Sendable, Equatable {
        public var line: Int
        public var key: String
        public var value: ConfigScalar
    }

    /// The `[curate]` table's entries, in file order.
    public static func parse(_ text: String, source: String) throws(CurationError) -> [Entry] {
        var entries: [Entry] = []
        var inCurate = false
        var seen: [String: Int] = [:]
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            let line = stripComment(String(rawLine)).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                inCurate = line == "[curate]"
                continue
            }
            guard inCurate else { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw .configSyntax(path: source, line: number, text: line, why: "expected key = value")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let valueText = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
            else {
                throw .configSyntax(
                    path: source, line: number, text: line, why: "a key is a bare word of letters, digits, _ and -")
            }
            guard keys.contains(where: { $0.name == key }) else {
                throw .configUnknownKey(path: source, line: number, key: key, known: keys.map(\.name))
            }
            if let first = seen[key] {
                throw .configSyntax(
                    path: source, line: number, text: line, why: "\(key) is already set on line \(first)")
            }
            seen[key] = number
            guard let value = scalar(valueText) else {
                throw .configSyntax(
                    path: source, line: number, text: line,
                    why: "the value is not a number, true/false or a one-line string")
            }
            entries.append(Entry(line: number, key: key, value: value))
        }
        return entries
    }

    static func stripComment(_ line: String) -> String {
        var inBasic = false
        var inLiteral = false
        var escaped = false
        for (index, character) in zip(line.indices, line) {
            if escaped {
                escaped = false
                continue
            }
            switch character {
            case "\\" where inBasic: escaped = true
            case "\"" where !inLiteral: inBasic.toggle()
            case "'" where !inBasic: inLiteral.toggle()
            case "#" where !inBasic && !inLiteral: return String(line[..<index])
            default: break
            }
        }
        return line
    }

    static func scalar(_ text: String) -> ConfigScalar? {
        if text == "true" { return .bool(true) }
        if text == "false" { return .bool(false) }
        if text.count >= 2, text.hasPrefix("'"), text.hasSuffix("'") {
            let inner = text.dropFirst().dropLast()
            return inner.contains("'") ? nil : .string(String(inner))
        }
        if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") {
            return basicString(text.dropFirst().dropLast())
        }
        let digits = text.replacingOccurrences(of: "_", with: "")
        if digits.isEmpty || text.hasPrefix("_") || text.hasSuffix("_") || text.contains("__") { return nil }
        if let integer = Int(digits) { return .integer(integer) }
        if let real = Double(digits), real.isFinite, digits.first != ".", digits.last != ".",
            !digits.lowercased().hasPrefix("0x")
        {
            return .real(real)
        }
        return nil
    }

    static func basicString(_ inner: Substring) -> ConfigScalar? {
        var out = ""
        var iterator = inner.makeIterator()
        while let character = iterator.next() {
            if character == "\"" { return nil }
            guard character == "\\" else {
                out.append(character)
                continue
            }
            switch iterator.next() {
            case "\"": out.append("\"")
            case "\\": out.append("\\")
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "u":
                var hex = ""
                for _ in 0..<4 { if let digit = iterator.next() { hex.append(digit) } }
                guard hex.count == 4, let value = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(value) else {
                    return nil
                }
                out.unicodeScalars.append(scalar)
            default: return nil
            }
        }
        return .string(out)
    }

    static func apply(_ entry: Entry, to options: inout CurationOptions, source: String) throws(CurationError) {
        func wrong() -> CurationError {
            .configWrongType(
                path: source, line: entry.line, key: entry.key, expected: keys.first { $0.name == entry.key }!.form)
        }
        func integer() throws(CurationError) -> Int {
            guard case .integer(let value) = entry.value else { throw wrong() }
            return value
        }
        func real() throws(CurationError) -> Double {
            switch entry.value {
            case .integer(let value): return Double(value)
            case .real(let value): return value
            default: throw wrong()
            }
        }
        func bool() throws(CurationError) -> Bool {
            guard case .bool(let value) = entry.value else { throw wrong() }
            return value
        }
        func string() throws(CurationError) -> String {
            guard case .string(let value) = entry.value else { throw wrong() }
            return value
        }
        func choice<T: RawRepresentable>(_ type: T.Type) throws(CurationError) -> T where T.RawValue == String {
            guard let value = T(rawValue: try string().lowercased()) else { throw wrong() }
            return value
        }
        switch entry.key {
        case "seed":
            let value = try integer()
            guard value >= 0 else { throw wrong() }
            options.seed = UInt64(value)
        case "val_fraction": options.valFraction = try real()
        case "sample":
            if case .string(let text) = entry.value {
                guard text == "max" else { throw wrong() }
                options.sampleSize = Int.max
            } else {
                options.sampleSize = try integer()
            }
        case "image_share": options.imageShare = try real()
        case "stratify_category": options.stratifySampleByCategory = try bool()
        case "duplicates": options.duplicatePolicy = try choice(DuplicatePolicy.self)
        case "caption_duplicates": options.captionDuplicates = try bool()
        case "content_hash": options.contentHash = try bool()
        case "perceptual_hash": options.perceptualHash = try bool()
        case "hash": options.hashKind = try choice(PerceptualHashKind.self)
        case "near_duplicate_bits": options.nearDuplicateBits = try integer()
        case "video_frames": options.videoFrames = try integer()
        case "target":
            guard let target = Resolution(parsing: try string()) else { throw wrong() }
            options.target = target
        case "clip_frames": options.clipFrames = try integer()
        case "frame_rate": options.frameRate = try real()
        case "caption_ideal_min": options.captionIdealMin = try integer()
        case "caption_ideal_max": options.captionIdealMax = try integer()
        case "min_quality": options.minQuality = try real()
        case "template_captions": options.templateCaptions = try bool()
        case "duration_min": options.durationMin = try real()
        case "duration_max": options.durationMax = try real()
        case "caption_length_min": options.captionLengthMin = try integer()
        case "caption_length_max": options.captionLengthMax = try integer()
        case "min_short_side": options.minShortSide = try integer()
        case "drop_range_outliers": options.dropRangeOutliers = try bool()
        case "iqr_factor": options.iqrFactor = try real()
        case "drop_iqr_outliers": options.dropIQROutliers = try bool()
        case "caption_truncate": options.captionTruncate = try integer()
        case "weighting": options.weighting = try choice(WeightingMethod.self)
        case "beta": options.beta = try real()
        case "media_root": options.mediaRoot = try string()
        case "require_media": options.requireMedia = try bool()
        case "ffmpeg": options.ffmpeg = try string()
        // `workers`: the key's name before --jobs became the one spelling of every command.
        case "jobs", "workers": options.workers = try integer()
        default: throw .configUnknownKey(path: source, line: entry.line, key: entry.key, known: keys.map(\.name))
        }
    }
}
