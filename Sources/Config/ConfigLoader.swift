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
                problem: exists ? "The configuration file \(path) is not readable UTF-8 text."
                    : "The configuration file \(path) does not exist.",
                remedy: exists ? "Save it as UTF-8 text." : "Check the path, or write one with `wanlora config init --preset h100 --out \(path)`."
            )
        }
        return try parse(toml: text, source: path)
    }

    /// Parses and validates TOML text. `base` is the preset used when the text names none.
    public static func parse(toml text: String, source: String = "configuration", base: Preset = .h100) throws -> WanLoRAConfig {
        let root = try parseTable(text, source: source)
        var config: WanLoRAConfig
        if let presetValue = root["preset"] {
            guard case .string(let name) = presetValue else {
                throw ConfigKeys.typeError("preset", presetValue, expected: "a string in quotes")
            }
            guard let preset = Preset(rawValue: name) else {
                throw ConfigError.invalid("preset", "\"\(name)\"", allowed: "one of " + Preset.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))
            }
            config = .preset(preset)
        } else {
            config = .preset(base)
        }
        for name in root.keys.sorted() where name != "preset" {
            guard ConfigKeys.sections.contains(name) else {
                throw unknown(name, among: ["preset"] + ConfigKeys.sections, what: "section", in: source)
            }
            guard case .table(let entries) = root[name]! else {
                throw ConfigKeys.typeError(name, root[name]!, expected: "a table: a line [\(name)] followed by its keys")
            }
            let keys = ConfigKeys.all.filter { $0.section == name }
            for keyName in entries.keys.sorted() {
                guard let key = keys.first(where: { $0.name == keyName }) else {
                    throw unknown("\(name).\(keyName)", among: keys.map(\.path), what: "key", in: source)
                }
                try key.apply(&config, entries[keyName]!)
            }
        }
        try config.validate()
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
        guard let key = ConfigKeys.key(path) else { throw unknownPath(path, in: "--set") }
        let value: ConfigValue
        if let parsed = try? parseTable("v = \(raw)", source: "--set")["v"] {
            value = parsed
        } else {
            value = .string(raw)
        }
        try key.apply(&config, value)
        if validate { try config.validate() }
    }

    /// Sets the key at `path` ("section.name") to `value` with the key's own checks, then
    /// re-validates the whole configuration unless `validate` is false.
    public static func set(_ path: String, _ value: ConfigValue, in config: inout WanLoRAConfig, validate: Bool = true) throws {
        guard let key = ConfigKeys.key(path) else { throw unknownPath(path, in: "override") }
        try key.apply(&config, value)
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
                remedy: "Fix the TOML syntax there (strings in double quotes, one key = value per line, [section] headers)."
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
        var error = unknown(path, among: candidates, what: "key", in: source)
        if sameSection.isEmpty, let guess = closest(to: path, in: ConfigKeys.all.map(\.path)) {
            error = ConfigError(kind: .unknownKey, key: path, problem: error.problem,
                                remedy: "Did you mean \(guess)? Sections: "
                                    + "\(ConfigKeys.sections.joined(separator: ", ")); docs/config.md lists every key.")
        } else if sameSection.isEmpty {
            error = ConfigError(kind: .unknownKey, key: path, problem: error.problem,
                                remedy: "Write section.key with a section from \(ConfigKeys.sections.joined(separator: ", ")); "
                                    + "docs/config.md lists every key.")
        }
        return error
    }

    static func unknown(_ name: String, among allowed: [String], what: String, in source: String) -> ConfigError {
        let suggestion = closest(to: name, in: allowed)
        let hint = suggestion.map { "Did you mean \($0)? " } ?? ""
        return ConfigError(
            kind: .unknownKey, key: name,
            problem: "\(source): unknown \(what) \"\(name)\".",
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
        let a = Array(a), b = Array(b)
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
