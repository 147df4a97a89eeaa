import Foundation
import Support

/// `config.resolved.json`: the one file the engine reads, every key filled in.
///
/// It holds every key of the TOML configuration under the TOML's own section and key names
/// (`training.grad_accumulation`, never a second name), with the values resolved: the preset
/// applied, `run.name` filled in, an empty `data.cache_dir` replaced by the folder it stands for,
/// and, after `anchored(at:)`, every path absolute. The few values the engine needs that are no
/// TOML key are in `derived` (docs/engine-contract.md §2). Ranges were checked once, in Swift,
/// before the file was written; the engine checks the schema version, the types and the names.
@dynamicMemberLookup
public struct ResolvedConfig: Sendable, Equatable, Codable {
    /// Bumped whenever a key is renamed, removed or changes meaning; the engine refuses other versions.
    public static let schemaVersion = 2

    /// Every key, resolved.
    public var settings: WanLoRAConfig
    public var derived: Derived

    /// Values the engine needs that are not keys of the TOML file, computed from them.
    public struct Derived: Sendable, Equatable, Codable {
        /// The run folder, `run.runs_dir`/`run.name`: events, checkpoints, LoRA files.
        public var runDir: String
        /// The experts that get a LoRA, from `training.expert` ("both": high, then low).
        public var experts: [Expert]

        enum CodingKeys: String, CodingKey {
            case runDir = "run_dir"
            case experts
        }
    }

    public enum Expert: String, Sendable, Codable, CaseIterable {
        case high, low
    }

    /// `resolved.training.frames` reads `resolved.settings.training.frames`.
    public subscript<T>(dynamicMember path: WritableKeyPath<WanLoRAConfig, T>) -> T {
        get { settings[keyPath: path] }
        set { settings[keyPath: path] = newValue }
    }
}

// MARK: - From the TOML configuration

extension ResolvedConfig {
    /// The engine's configuration for `config`, with paths as the TOML file has them (relative
    /// ones relative to the file's folder; `anchored(at:)` makes them absolute).
    ///
    /// Throws a `ConfigError` naming the TOML key when the configuration asks for something the
    /// engine cannot do (fp16 autocast) or lacks what it needs (the model folder).
    public init(resolving config: WanLoRAConfig, runName: String) throws {
        var problems: [ConfigError] = []
        if config.model.checkpoint.trimmingCharacters(in: .whitespaces).isEmpty {
            problems.append(
                ConfigError(
                    kind: .missingKey, key: "model.checkpoint",
                    problem:
                        "model.checkpoint is empty: `cache` and `train` "
                        + "need the folder of the Wan2.2-T2V-A14B weights.",
                    remedy:
                        "Set model.checkpoint in the [model] section (or "
                        + "--set model.checkpoint=/path/to/Wan2.2-T2V-A14B): "
                        + "the official layout (high_noise_model/, low_noise_model/, …) or the diffusers layout."
                ))
        }
        if config.training.mixedPrecision == .fp16 {
            problems.append(
                ConfigError(
                    kind: .unsupported, key: "training.mixed_precision",
                    problem:
                        "training.mixed_precision = \"fp16\" is a planning option: "
                        + "the engine trains with bf16 autocast "
                        + "or in float32, and fp16 needs loss scaling it does not have.",
                    remedy:
                        "Set training.mixed_precision to \"bf16\" on a GPU with bfloat16, or \"fp32\" (a V100 has no "
                        + "bf16: fp32 there)."
                ))
        }
        problems += config.problems()
        try ConfigErrors.throwIfAny(problems)

        var settings = config
        settings.run.name = runName
        settings.data.cacheDir = config.data.cacheFolder(config.training)
        self.settings = settings
        let experts: [Expert] =
            switch config.training.expert {
            case .high: [.high]
            case .low: [.low]
            case .both: [.high, .low]
            }
        derived = Derived(runDir: PathMath.join(config.run.runsDir, runName), experts: experts)
    }

    /// The run name when the configuration leaves `run.name` empty: the configuration file's
    /// name without its extension, or the preset's name when there is no file.
    public static func defaultRunName(config: WanLoRAConfig, configFile: String?) -> String {
        if !config.run.name.isEmpty { return config.run.name }
        guard let configFile else { return config.preset.rawValue }
        let file = (configFile as NSString).lastPathComponent
        let stem = (file as NSString).deletingPathExtension
        return stem.isEmpty || stem.hasPrefix(".") ? config.preset.rawValue : stem
    }

    /// The same configuration with every path key that is set, and the run folder, made absolute
    /// against `baseDir` (the folder of the TOML file), so that the file can live in the run folder.
    public func anchored(at baseDir: String, hubCache: String = ModelSource.hubCache()) -> ResolvedConfig {
        var copy = self
        func absolute(_ path: String) -> String { PathMath.absolute(path, base: baseDir) }
        for entry in ConfigKeys.all where entry.isPath || entry.isModelSource {
            guard case .string(let path) = entry.value(in: settings), !path.isEmpty else { continue }
            copy.settings[section: entry.section][entry.name] = .string(
                entry.isModelSource ? ModelSource.anchored(path, base: baseDir, hubCache: hubCache) : absolute(path))
        }
        copy.derived.runDir = absolute(derived.runDir)
        return copy
    }
}

// MARK: - JSON

/// A JSON object key spelled at run time (the registry's section and key names).
struct NameKey: CodingKey, Hashable {
    let stringValue: String
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}

extension ResolvedConfig {
    static let topLevel = ["schema_version", "preset"] + ConfigKeys.sections + ["derived"]

    public func encode(to encoder: Encoder) throws {
        var top = encoder.container(keyedBy: NameKey.self)
        try top.encode(Self.schemaVersion, forKey: NameKey("schema_version"))
        try top.encode(settings.preset.rawValue, forKey: NameKey("preset"))
        for section in ConfigKeys.sections {
            var keys = top.nestedContainer(keyedBy: NameKey.self, forKey: NameKey(section))
            for entry in ConfigKeys.all where entry.section == section {
                try keys.encode(entry.value(in: settings), forKey: NameKey(entry.name))
            }
        }
        try top.encode(derived, forKey: NameKey("derived"))
    }

    /// Reads a config.resolved.json: the schema version, every key present with its type, no
    /// unknown key. Value ranges are not checked again (they were, before the file was written).
    public init(from decoder: Decoder) throws {
        let top = try decoder.container(keyedBy: NameKey.self)
        try Self.refuseUnknown(top.allKeys, allowed: Self.topLevel, in: nil)
        let version = try? top.decode(Int.self, forKey: NameKey("schema_version"))
        guard version == Self.schemaVersion else {
            throw ConfigError(
                kind: .invalidValue, key: "schema_version",
                problem:
                    "config.resolved.json has schema_version "
                    + "\(version.map(String.init) ?? "that is missing or no integer"); "
                    + "this wanlora reads version \(Self.schemaVersion).",
                remedy:
                    "Resolve the TOML configuration again with this "
                    + "wanlora (`wanlora config show --config FILE --json`)."
            )
        }
        let presetKey = Key("preset", Preset.h100, .any, "")
        var settings = WanLoRAConfig.preset(.h100)
        let presetValue = try Self.value(top, "preset", path: "preset")
        guard presetKey.typed(presetValue) != nil, case .value(let preset) = Preset.read(presetValue) else {
            throw Self.wrongType("preset", presetValue, Preset.spelling)
        }
        settings.preset = preset
        for section in ConfigKeys.sections {
            let entries = ConfigKeys.all.filter { $0.section == section }
            let keys: KeyedDecodingContainer<NameKey>
            do {
                keys = try top.nestedContainer(keyedBy: NameKey.self, forKey: NameKey(section))
            } catch {
                throw ConfigError(
                    kind: top.contains(NameKey(section)) ? .wrongType : .missingKey, key: section,
                    problem: "config.resolved.json: '\(section)' is missing or not an object.",
                    remedy: "Resolve the TOML configuration again (docs/engine-contract.md §2).")
            }
            try Self.refuseUnknown(keys.allKeys, allowed: entries.map(\.name), in: section)
            for entry in entries {
                let value = try Self.value(keys, entry.name, path: entry.path)
                guard let typed = entry.key.typed(value) else {
                    throw Self.wrongType(entry.path, value, entry.key.spelling)
                }
                settings[section: section][entry.name] = typed
            }
        }
        self.settings = settings
        let derivedKeys = try top.nestedContainer(keyedBy: NameKey.self, forKey: NameKey("derived"))
        try Self.refuseUnknown(derivedKeys.allKeys, allowed: ["run_dir", "experts"], in: "derived")
        let runDir = try Self.value(derivedKeys, "run_dir", path: "derived.run_dir")
        let expertsValue = try Self.value(derivedKeys, "experts", path: "derived.experts")
        guard case .string(let dir) = runDir else { throw Self.wrongType("derived.run_dir", runDir, "a path") }
        guard case .value(let names) = [String].read(expertsValue), !names.isEmpty,
            Set(names).count == names.count
        else {
            throw Self.wrongType("derived.experts", expertsValue, "\"high\", \"low\" or both, each once")
        }
        let experts = names.compactMap(Expert.init(rawValue:))
        guard experts.count == names.count else {
            throw Self.wrongType("derived.experts", expertsValue, "\"high\", \"low\" or both, each once")
        }
        derived = Derived(runDir: dir, experts: experts)
    }

    private static func value(_ container: KeyedDecodingContainer<NameKey>, _ name: String, path: String) throws
        -> ConfigValue
    {
        guard container.contains(NameKey(name)) else {
            throw ConfigError(
                kind: .missingKey, key: path, problem: "config.resolved.json lacks the key '\(path)'.",
                remedy: "Every key is required (config.resolved.json has no defaults): resolve the TOML "
                    + "configuration again (docs/engine-contract.md §2).")
        }
        do {
            return try container.decode(ConfigValue.self, forKey: NameKey(name))
        } catch {
            throw ConfigError(
                kind: .wrongType, key: path, problem: "config.resolved.json: '\(path)' is null or not a value.",
                remedy: "Write '\(path)' as docs/config.md describes it.")
        }
    }

    private static func wrongType(_ path: String, _ value: ConfigValue, _ expected: String) -> ConfigError {
        ConfigError(
            kind: .wrongType, key: path,
            problem: "config.resolved.json: '\(path)' is \(value.literal) (\(value.typeName)), expected \(expected).",
            remedy: "Write '\(path)' as \(expected) (docs/config.md).")
    }

    private static func refuseUnknown(_ keys: [NameKey], allowed: [String], in section: String?) throws {
        guard let unknown = keys.map(\.stringValue).filter({ !allowed.contains($0) }).sorted().first else { return }
        let full = section.map { "\($0).\(unknown)" } ?? unknown
        throw ConfigError(
            kind: .unknownKey, key: full,
            problem: "config.resolved.json has the unknown key '\(full)'.",
            remedy: "Remove it or correct its spelling; the keys of '\(section ?? "the top level")' are: "
                + allowed.sorted().joined(separator: ", ") + ".")
    }

    /// The file's text: two-space indentation, keys sorted, a final newline; the same input gives
    /// the same bytes.
    public func formatted() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding a value of plain strings, numbers and arrays cannot fail.
        let data = try! encoder.encode(self)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// The document as a JSON value (for comparing two of them key by key).
    public func json() -> JSONValue {
        // The text `formatted()` writes is JSON by construction.
        try! JSONValue.parse(formatted())
    }

    /// Reads and checks the file at `path`.
    public static func read(file path: String) throws -> ResolvedConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(
                kind: .unreadable, key: nil, problem: "\(path) does not exist or cannot be read.",
                remedy: "Pass the config.resolved.json that `wanlora train` wrote into the run folder.")
        }
        do {
            return try JSONDecoder().decode(ResolvedConfig.self, from: data)
        } catch let error as ConfigError {
            throw ConfigError(
                kind: error.kind, key: error.key,
                problem: error.problem.replacingOccurrences(of: "config.resolved.json", with: path),
                remedy: error.remedy)
        } catch {
            throw ConfigError(
                kind: .syntax, key: nil, problem: "\(path) is not valid JSON: \(error).",
                remedy: "Write it again with `wanlora config show --config FILE --json`, or fix the JSON there.")
        }
    }
}

extension ConfigValue: Codable {
    public func encode(to encoder: Encoder) throws {
        var single = encoder.singleValueContainer()
        switch self {
        case .string(let s), .dateOrTime(let s): try single.encode(s)
        case .integer(let i): try single.encode(i)
        case .float(let d): try single.encode(d)
        case .boolean(let b): try single.encode(b)
        case .array(let items): try single.encode(items)
        case .table(let table): try single.encode(table)
        }
    }

    public init(from decoder: Decoder) throws {
        let single = try decoder.singleValueContainer()
        if let b = try? single.decode(Bool.self) {
            self = .boolean(b)
        } else if let i = try? single.decode(Int.self) {
            self = .integer(i)
        } else if let d = try? single.decode(Double.self) {
            self = .float(d)
        } else if let s = try? single.decode(String.self) {
            self = .string(s)
        } else if let items = try? single.decode([ConfigValue].self) {
            self = .array(items)
        } else {
            self = .table(try single.decode([String: ConfigValue].self))
        }
    }
}
