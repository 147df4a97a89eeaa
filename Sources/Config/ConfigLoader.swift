import Foundation
import TOMLKit

/// Reads configuration files: TOML → preset + overrides → validated `WanLoRAConfig`.
public enum ConfigLoader {
    /// Reads and validates the TOML file at `path`.
    public static func load(file path: String) throws -> WanLoRAConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let exists = FileManager.default.fileExists(atPath: path)
            throw ConfigError(
                kind: .unreadable, key: nil,
                problem: exists
                    ? "The configuration file \(path) is not readable UTF-8 text."
                    : "The configuration file \(path) does not exist.",
                remedy: exists
                    ? "Save it as UTF-8 text."
                    : "Check the path, or write one with `wanlora config init --preset h100 --output \(path)`."
            )
        }
        return try parse(toml: text, source: path)
    }

    /// Parses and validates TOML text. `base` is the preset used when the text names none.
    ///
    /// Every problem of the text is reported in one run, in file order: one as a `ConfigError`,
    /// several as `ConfigErrors`. A syntax error stops at the first (the rest cannot be read).
    public static func parse(toml text: String, source: String = "configuration", base: Preset = .h100) throws
        -> WanLoRAConfig
    {
        let root = try parseTable(text, source: source)
        let lines = KeyLines(text)
        // (line, problem): sorted by line at the end, so the report follows the file.
        var problems: [(Int, ConfigError)] = []
        func report(_ error: ConfigError, at path: String) {
            let line = lines.line(of: path)
            let located = line == Int.max ? "\(source): " : "\(source), line \(line): "
            problems.append(
                (
                    line,
                    ConfigError(
                        kind: error.kind, key: error.key, problem: located + error.problem,
                        remedy: error.remedy)
                ))
        }
        var config = WanLoRAConfig.preset(base)
        if let presetValue = root["preset"] {
            switch Preset.read(presetValue) {
            case .value(let preset): config = .preset(preset)
            case .wrongType, .outside:
                let key = Key("preset", base, .any, "The preset the file starts from.")
                if case .failure(let error) = key.check(presetValue, path: "preset") { report(error, at: "preset") }
            }
        }
        for name in root.keys.sorted() where name != "preset" {
            guard ConfigKeys.sections.contains(name) else {
                report(unknown(name, among: ["preset"] + ConfigKeys.sections, what: "section"), at: name)
                continue
            }
            guard case .table(let entries) = root[name]! else {
                report(
                    ConfigError(
                        kind: .wrongType, key: name,
                        problem: "\(name) = \(root[name]!.literal) is \(root[name]!.typeName).",
                        remedy: "Write \(name) as a table: a line [\(name)] followed by its keys."), at: name)
                continue
            }
            let keys = ConfigKeys.all.filter { $0.section == name }
            for keyName in entries.keys.sorted() {
                let path = "\(name).\(keyName)"
                guard let entry = keys.first(where: { $0.name == keyName }) else {
                    report(unknown(path, among: keys.map(\.path), what: "key"), at: path)
                    continue
                }
                switch entry.key.check(entries[keyName]!, path: path) {
                case .success(let value): config[section: name][keyName] = value
                case .failure(let error): report(error, at: path)
                }
            }
        }
        for error in config.problems() { report(error, at: error.key ?? "") }
        try ConfigErrors.throwIfAny(
            problems.enumerated().sorted { ($0.element.0, $0.offset) < ($1.element.0, $1.offset) }
                .map(\.element.1))
        return config
    }

    /// Applies one `section.key=value` assignment (the value in TOML syntax; a bare word that is
    /// not a TOML value is taken as a string), as `--set` on the command line does, and
    /// re-validates unless `validate` is false (for several assignments followed by one
    /// `validate()`, so that their order does not matter).
    public static func set(_ assignment: String, in config: inout WanLoRAConfig, validate: Bool = true) throws {
        guard let eq = assignment.firstIndex(of: "=") else {
            throw ConfigError(
                kind: .invalidValue, key: nil,
                problem: "\"\(assignment)\" is not an assignment.",
                remedy: "Write it as section.key=value, e.g. training.frames=49 or lora.targets=[\"to_q\",\"to_v\"]."
            )
        }
        let path = assignment[..<eq].trimmingCharacters(in: .whitespaces)
        let raw = assignment[assignment.index(after: eq)...].trimmingCharacters(in: .whitespaces)
        let value: ConfigValue
        if let parsed = try? parseTable("v = \(raw)", source: "--set")["v"] {
            value = parsed
        } else {
            value = .string(raw)
        }
        try set(path, value, in: &config, validate: validate, source: "--set")
    }

    /// Sets the key at `path` ("section.name") to `value` with the key's own checks, then
    /// re-validates the whole configuration unless `validate` is false.
    public static func set(
        _ path: String, _ value: ConfigValue, in config: inout WanLoRAConfig, validate: Bool = true,
        source: String = "override"
    ) throws {
        guard let entry = ConfigKeys.key(path) else { throw unknownPath(path, in: source) }
        config[section: entry.section][entry.name] = try entry.key.check(value, path: path).get()
        if validate { try config.validate() }
    }

    // MARK: - TOML → ConfigValue

    static func parseTable(_ text: String, source: String) throws -> [String: ConfigValue] {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(
                kind: .syntax, key: nil,
                problem: "\(source): line \(error.source.begin.line), "
                    + "column \(error.source.begin.column): \(error.description).",
                remedy:
                    "Fix the TOML syntax there (strings in double quotes, one key = value per line, [section] headers)."
            )
        }
        return convert(table)
    }

    static func convert(_ table: TOMLTable) -> [String: ConfigValue] {
        var out: [String: ConfigValue] = [:]
        for key in table.keys {
            if let value = table[key] { out[key] = convert(value) }
        }
        return out
    }

    static func convert(_ value: TOMLValueConvertible) -> ConfigValue {
        switch value.type {
        case .string: return .string(value.string ?? "")
        case .int: return .integer(value.int ?? 0)
        case .double: return .float(value.double ?? 0)
        case .bool: return .boolean(value.bool ?? false)
        case .array: return .array((value.array.map { Array($0) } ?? []).map(convert))
        case .table: return .table(value.table.map(convert) ?? [:])
        case .date, .time, .dateTime: return .dateOrTime(value.debugDescription)
        }
    }

    // MARK: - Unknown names

    /// An unknown "section.key": lists the keys of that section when the section exists.
    static func unknownPath(_ path: String, in source: String) -> ConfigError {
        let section = path.split(separator: ".").first.map(String.init) ?? ""
        let sameSection = ConfigKeys.all.filter { $0.section == section }.map(\.path)
        let candidates = sameSection.isEmpty ? ConfigKeys.all.map(\.path) : sameSection
        var error = unknown(path, among: candidates, what: "key")
        error = ConfigError(
            kind: error.kind, key: error.key, problem: "\(source): " + error.problem, remedy: error.remedy)
        if sameSection.isEmpty, let guess = closest(to: path, in: ConfigKeys.all.map(\.path)) {
            error = ConfigError(
                kind: .unknownKey, key: path, problem: error.problem,
                remedy: "Did you mean \(guess)? Sections: "
                    + "\(ConfigKeys.sections.joined(separator: ", ")); docs/config.md lists every key.")
        } else if sameSection.isEmpty {
            error = ConfigError(
                kind: .unknownKey, key: path, problem: error.problem,
                remedy: "Write section.key with a section from \(ConfigKeys.sections.joined(separator: ", ")); "
                    + "docs/config.md lists every key.")
        }
        return error
    }

    static func unknown(_ name: String, among allowed: [String], what: String) -> ConfigError {
        let suggestion = closest(to: name, in: allowed)
        let hint = suggestion.map { "Did you mean \($0)? " } ?? ""
        return ConfigError(
            kind: .unknownKey, key: name,
            problem: "unknown \(what) \"\(name)\".",
            remedy: "\(hint)Allowed: \(allowed.joined(separator: ", ")). docs/config.md describes each."
        )
    }

    /// The allowed name nearest to `name` by edit distance, when it is close enough to be a typo.
    static func closest(to name: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(name.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        return best.1 <= max(2, name.count / 3) ? best.0 : nil
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

/// Where each section and key of a TOML text is written, so that problems are reported in file
/// order with their line. A plain line scan: `[section]` headers and `key =` lines (the parser has
/// already accepted the text; keys it cannot place sort last).
struct KeyLines {
    private var lines: [String: Int] = [:]

    init(_ text: String) {
        var section = ""
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("["), let close = line.firstIndex(of: "]") {
                section = line[line.index(after: line.startIndex)..<close].trimmingCharacters(in: .whitespaces)
                if lines[section] == nil { lines[section] = index + 1 }
            } else if let eq = line.firstIndex(of: "="), !line.hasPrefix("#") {
                let name = line[..<eq].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: ["\""])
                let path = section.isEmpty ? name : "\(section).\(name)"
                if lines[path] == nil { lines[path] = index + 1 }
            }
        }
    }

    /// The line of `path` ("section.key", a section, or "preset"); Int.max when not found.
    func line(of path: String) -> Int {
        if let line = lines[path] { return line }
        // A key of the preset (not in the file) or a rule between keys: at its section, else last.
        if let dot = path.firstIndex(of: "."), let line = lines[String(path[..<dot])] { return line }
        return Int.max
    }
}
