import Foundation

/// A Swift type a configuration key can hold, and how it is read from a TOML or JSON value.
public protocol ConfigType: Sendable, Equatable {
    /// The value read from a file, or why it cannot be one.
    static func read(_ value: ConfigValue) -> ConfigReading<Self>
    /// The value as TOML and JSON hold it.
    var configValue: ConfigValue { get }
    /// How a value of this type is written, for "wrong type" messages ("an integer (no quotes…)").
    static var spelling: String { get }
    /// What every value of the type may be when the key has no rule of its own ("true or false").
    static var allowedByType: String { get }
    /// The type's name in the engine's schema (config_schema.json).
    static var schemaType: [String: ConfigValue] { get }
    /// How several values are written, for arrays ("strings in quotes").
    static var plural: String { get }
}

/// The outcome of reading a file's value as a `ConfigType`.
public enum ConfigReading<Value> {
    case value(Value)
    /// Another TOML type (a string where a number belongs).
    case wrongType
    /// The right TOML type but not a value of this type (an unknown choice, "12x" as a resolution).
    case outside
}

/// What a key allows beyond its type, in words and as a check.
public struct Rule<Value: ConfigType>: Sendable {
    /// The allowed values in words ("an integer from 1 to 1024").
    public let allowed: String
    /// nil when `value` is allowed, else the reason ("" when the allowed text says it all).
    let problem: @Sendable (Value) -> String?
    /// The engine's schema type when it is not the Swift type's own (paths are strings here).
    let schema: [String: ConfigValue]?

    public init(
        _ allowed: String, schema: [String: ConfigValue]? = nil, problem: @escaping @Sendable (Value) -> String?
    ) {
        self.allowed = allowed
        self.schema = schema
        self.problem = problem
    }

    /// Every value of the type (choices, flags, free text).
    public static var any: Rule { Rule(Value.allowedByType) { _ in nil } }

    /// The values for which `ok` holds, described by `allowed`.
    public static func when(_ allowed: String, _ ok: @escaping @Sendable (Value) -> Bool) -> Rule {
        Rule(allowed) { ok($0) ? nil : "" }
    }
}

extension Rule where Value == Int {
    public static func range(_ range: ClosedRange<Int>) -> Rule {
        .when("an integer from \(range.lowerBound) to \(range.upperBound)") { range.contains($0) }
    }

    /// Frame counts: the VAE compresses time 4:1 after the first frame.
    public static func frames(_ range: ClosedRange<Int>) -> Rule {
        Rule("an integer from \(range.lowerBound) to \(range.upperBound) of the form 4n+1 (1, 5, …, 49, …, 81)") { n in
            guard range.contains(n) else { return "" }
            guard (n - 1) % 4 != 0 else { return nil }
            let below = (n - 1) / 4 * 4 + 1
            return "the VAE compresses time 4:1 after the first frame, so clips have 4n+1 frames; "
                + "nearest: \(below) or \(below + 4)"
        }
    }
}

extension Rule where Value == Double {
    /// Finite numbers for which `ok` holds.
    public static func number(_ allowed: String, _ ok: @escaping @Sendable (Double) -> Bool) -> Rule {
        .when(allowed) { $0.isFinite && ok($0) }
    }
}

extension Rule where Value == String {
    public static var nonEmpty: Rule {
        .when("a non-empty string") { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    }

    /// A file or folder: relative to the configuration file's folder; config.resolved.json holds it
    /// absolute (the engine's schema type "path").
    public static var path: Rule {
        Rule("a non-empty path", schema: ["type": .string("path")]) {
            $0.trimmingCharacters(in: .whitespaces).isEmpty ? "" : nil
        }
    }

    /// A path, or "" for none (the key's summary says what "" means; the engine reads it as None).
    public static var optionalPath: Rule { Rule("a path, or \"\"", schema: ["type": .string("path")]) { _ in nil } }

    /// A model folder or a Hugging Face repo id (Support's `ModelSource`), or "" for none: a folder is
    /// made absolute in config.resolved.json, a repo id stays as written (the engine's schema type
    /// "model_source").
    public static var modelSource: Rule {
        Rule(
            "a folder, a Hugging Face repo id (\"Org/Name\") found in the local hub cache, or \"\"",
            schema: ["type": .string("model_source")]
        ) { _ in nil }
    }

    /// A run name becomes a folder name: one path component, no leading dot.
    public static var runName: Rule {
        Rule(
            "a folder name (letters, digits, \"-\", \"_\", \".\"; no \"/\"), or \"\" for the configuration file's name"
        ) {
            name in
            if name.isEmpty { return nil }
            if name.contains("/") || name.contains("\\") { return "a run name is one folder name, without slashes" }
            if name.hasPrefix(".") { return "a run name cannot start with a dot" }
            if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == " " }) {
                return "a run name cannot contain spaces or control characters"
            }
            return nil
        }
    }
}

extension Rule where Value == Resolution {
    /// Both sides multiples of 16 (VAE stride 8 × patch 2) from 16 to 4096.
    public static var videoSize: Rule {
        Rule("\"WIDTHxHEIGHT\" with both sides multiples of 16 from 16 to 4096, e.g. \"1280x720\" or \"832x480\"") {
            r in
            for (side, v) in [("width", r.width), ("height", r.height)] {
                guard (16...4096).contains(v) else { return "the \(side) \(v) is outside 16…4096" }
                // A side that is not a multiple of 16 has no whole patch grid.
                guard v % 16 == 0 else {
                    return "the \(side) \(v) is not a multiple of 16 (VAE stride 8 × patch 2); "
                        + "nearest: \(v / 16 * 16) or \(v / 16 * 16 + 16)"
                }
            }
            return nil
        }
    }
}

/// One configuration key, declared once: its TOML name, its value in the default preset (h100)
/// and where the a100 and v100 presets differ, what it allows, and one line saying what it is.
///
/// Everything else — the defaults of each preset, validation, `wanlora config init`'s commented
/// file, config.resolved.json, the engine's schema and docs/config.md's tables — is read from it.
public struct Key<Value: ConfigType>: Sendable {
    public let name: String
    public let defaultValue: Value
    public let a100: Value?
    public let v100: Value?
    public let rule: Rule<Value>
    public let summary: String

    public init(
        _ name: String, _ value: Value, _ rule: Rule<Value>, a100: Value? = nil, v100: Value? = nil, _ summary: String
    ) {
        self.name = name
        self.defaultValue = value
        self.a100 = a100
        self.v100 = v100
        self.rule = rule
        self.summary = summary
    }

    public func value(for preset: Preset) -> Value {
        switch preset {
        case .h100: defaultValue
        case .a100: a100 ?? defaultValue
        case .v100: v100 ?? defaultValue
        }
    }
}

/// A key with its value type erased, for the code that walks the registry.
public protocol AnyConfigKey: Sendable {
    var name: String { get }
    var summary: String { get }
    /// The allowed values in words.
    var allowed: String { get }
    /// The key's entry in the engine's schema: its type, and its choices where it has them.
    var schemaType: [String: ConfigValue] { get }
    func presetValue(_ preset: Preset) -> ConfigValue
    /// Checks a value read from a file (type, then rule) and returns it as stored, or the problem.
    func check(_ value: ConfigValue, path: String) -> Result<ConfigValue, ConfigError>
    /// The value as stored when it has the key's type, else nil (reading back a resolved file:
    /// the rules ran before it was written).
    func typed(_ value: ConfigValue) -> ConfigValue?
    /// How a value of the key's type is written ("an integer (no quotes, no decimal point)").
    var spelling: String { get }
}

extension Key: AnyConfigKey {
    public var allowed: String { rule.allowed }
    public var schemaType: [String: ConfigValue] { rule.schema ?? Value.schemaType }
    public func presetValue(_ preset: Preset) -> ConfigValue { value(for: preset).configValue }

    public func check(_ value: ConfigValue, path: String) -> Result<ConfigValue, ConfigError> {
        switch Value.read(value) {
        case .wrongType:
            return .failure(
                ConfigError(
                    kind: .wrongType, key: path, problem: "\(path) = \(value.literal) is \(value.typeName).",
                    remedy: "Write \(path) as \(Value.spelling)."))
        case .outside:
            return .failure(.invalid(path, value.literal, allowed: allowed))
        case .value(let typed):
            if let why = rule.problem(typed) {
                return .failure(.invalid(path, value.literal, allowed: allowed, why: why.isEmpty ? nil : why))
            }
            return .success(typed.configValue)
        }
    }

    public func typed(_ value: ConfigValue) -> ConfigValue? {
        if case .value(let typed) = Value.read(value) { return typed.configValue }
        return nil
    }

    public var spelling: String { Value.spelling }
}

/// The keys of one TOML section: a struct whose stored properties are `Key`s, one line each.
public protocol KeySet: Sendable {
    /// The TOML section, e.g. "training".
    static var section: String { get }
    /// The one instance, read through key paths by `ConfigSection`.
    static var keys: Self { get }
}

extension KeySet {
    /// The keys in declaration order (the order of the file, the docs and the JSON schema).
    static var list: [any AnyConfigKey] {
        Mirror(reflecting: keys).children.compactMap { $0.value as? any AnyConfigKey }
    }
}

/// The values of one section, read and written as typed properties: `config.training.frames`
/// is the value of `TrainingKeys.frames`, stored under its TOML name.
@dynamicMemberLookup
public struct ConfigSection<Keys: KeySet>: Sendable, Equatable {
    /// TOML name → value; every key of the section is present.
    var values: [String: ConfigValue]

    /// The section as `preset` sets it.
    init(preset: Preset) {
        var values: [String: ConfigValue] = [:]
        for key in Keys.list { values[key.name] = key.presetValue(preset) }
        self.values = values
    }

    public subscript<T: ConfigType>(dynamicMember path: KeyPath<Keys, Key<T>>) -> T {
        get {
            let name = Keys.keys[keyPath: path].name
            guard let stored = values[name], case .value(let value) = T.read(stored) else {
                preconditionFailure("\(Keys.section).\(name) holds no \(T.self)")
            }
            return value
        }
        set { values[Keys.keys[keyPath: path].name] = newValue.configValue }
    }
}

// MARK: - The value types

extension Int: ConfigType {
    public static func read(_ value: ConfigValue) -> ConfigReading<Int> {
        if case .integer(let i) = value { return .value(i) }
        return .wrongType
    }
    public var configValue: ConfigValue { .integer(self) }
    public static var spelling: String { "an integer (no quotes, no decimal point)" }
    public static var plural: String { "integers (no quotes, no decimal point)" }
    public static var allowedByType: String { "an integer" }
    public static var schemaType: [String: ConfigValue] { ["type": .string("integer")] }
}

extension Double: ConfigType {
    public static func read(_ value: ConfigValue) -> ConfigReading<Double> {
        switch value {
        case .float(let d): .value(d)
        case .integer(let i): .value(Double(i))
        default: .wrongType
        }
    }
    public var configValue: ConfigValue { .float(self) }
    public static var spelling: String { "a number" }
    public static var plural: String { "numbers" }
    public static var allowedByType: String { "a number" }
    public static var schemaType: [String: ConfigValue] { ["type": .string("number")] }
}

extension Bool: ConfigType {
    public static func read(_ value: ConfigValue) -> ConfigReading<Bool> {
        if case .boolean(let b) = value { return .value(b) }
        return .wrongType
    }
    public var configValue: ConfigValue { .boolean(self) }
    public static var spelling: String { "true or false (no quotes)" }
    public static var plural: String { "true or false values (no quotes)" }
    public static var allowedByType: String { "true or false" }
    public static var schemaType: [String: ConfigValue] { ["type": .string("boolean")] }
}

extension String: ConfigType {
    public static func read(_ value: ConfigValue) -> ConfigReading<String> {
        if case .string(let s) = value { return .value(s) }
        return .wrongType
    }
    public var configValue: ConfigValue { .string(self) }
    public static var spelling: String { "a string in quotes" }
    public static var plural: String { "strings in quotes" }
    public static var allowedByType: String { "a string" }
    public static var schemaType: [String: ConfigValue] { ["type": .string("string")] }
}

/// An enumeration whose raw values are what the files hold.
public protocol ConfigChoice: ConfigType, RawRepresentable, CaseIterable where RawValue == String {
    /// The raw values, quoted, comma-separated.
    static var choices: String { get }
}

extension ConfigChoice {
    public static func read(_ value: ConfigValue) -> ConfigReading<Self> {
        guard case .string(let s) = value else { return .wrongType }
        return Self(rawValue: s).map { .value($0) } ?? .outside
    }
    public var configValue: ConfigValue { .string(rawValue) }
    public static var choices: String { allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ") }
    public static var spelling: String { "one of " + choices }
    public static var plural: String { "strings from " + choices }
    public static var allowedByType: String { "one of " + choices }
    public static var schemaType: [String: ConfigValue] {
        ["type": .string("choice"), "values": .array(allCases.map { .string($0.rawValue) })]
    }
}

extension Array: ConfigType where Element: ConfigType {
    public static func read(_ value: ConfigValue) -> ConfigReading<[Element]> {
        guard case .array(let items) = value else { return .wrongType }
        var out: [Element] = []
        for item in items {
            switch Element.read(item) {
            // A list of choices is a set: a repeated one counts once (eval.metrics = ["fvd", "fvd"]).
            case .value(let v) where Element.self is any ConfigChoice.Type && out.contains(v): continue
            case .value(let v): out.append(v)
            case .wrongType: return .wrongType
            case .outside: return .outside
            }
        }
        return .value(out)
    }
    public var configValue: ConfigValue { .array(map(\.configValue)) }
    public static var spelling: String { "an array of \(Element.plural)" }
    public static var plural: String { "arrays of \(Element.plural)" }
    public static var allowedByType: String {
        "an array of " + ((Element.self as? any ConfigChoice.Type)?.choices ?? Element.allowedByType)
    }
    public static var schemaType: [String: ConfigValue] {
        ["type": .string("array"), "items": .table(Element.schemaType)]
    }
}

extension Resolution: ConfigType {
    public static func read(_ value: ConfigValue) -> ConfigReading<Resolution> {
        guard case .string(let s) = value else { return .wrongType }
        return Resolution(parsing: s).map { .value($0) } ?? .outside
    }
    public var configValue: ConfigValue { .string("\(width)x\(height)") }
    public static var spelling: String { "a string like \"1280x720\"" }
    public static var plural: String { "strings like \"1280x720\"" }
    public static var allowedByType: String { "\"WIDTHxHEIGHT\"" }
    public static var schemaType: [String: ConfigValue] { ["type": .string("resolution")] }
}
