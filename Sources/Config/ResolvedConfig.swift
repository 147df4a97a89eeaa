import Foundation

/// The configuration exactly as a run uses it: every key filled in (presets and defaults
/// applied), plus the values derived from them. Swift writes it as `config.resolved.json` into
/// the run folder; the engine reads only that file. docs/config.md documents the format.
public struct ResolvedConfig: Sendable, Equatable, Codable {
    /// Bumped whenever a key is renamed or its meaning changes; the engine refuses other versions.
    public static let currentSchemaVersion = 1

    public var schemaVersion: Int
    /// Where the settings came from: the configuration file's path, or "preset NAME".
    public var source: String
    /// Folder that relative paths in `data` and `model.checkpoint` are relative to (absolute).
    public var baseDir: String
    public var preset: Preset
    public var data: DataSettings
    public var model: ModelSettings
    public var lora: LoRASettings
    public var training: TrainingSettings
    public var hardware: HardwareSettings
    public var sample: SampleSettings
    public var eval: EvalSettings
    public var derived: Derived

    /// Values computed from the settings, written out so that no side recomputes them differently.
    public struct Derived: Sendable, Equatable, Codable {
        /// All GPUs: gpus_per_node × nodes.
        public var worldSize: Int
        /// Ulysses groups, each working on its own samples: world_size / ulysses_degree.
        public var dataParallelSize: Int
        /// Samples per optimizer step: micro_batch × grad_accumulation × data_parallel_size.
        public var effectiveBatch: Int
        /// Factor on the LoRA update: alpha / rank.
        public var loraScale: Double
    }

    public init(_ config: WanLoRAConfig, source: String, baseDir: String) {
        schemaVersion = Self.currentSchemaVersion
        self.source = source
        self.baseDir = baseDir
        preset = config.preset
        data = config.data
        model = config.model
        lora = config.lora
        training = config.training
        hardware = config.hardware
        sample = config.sample
        eval = config.eval
        derived = Derived(
            worldSize: config.hardware.worldSize,
            dataParallelSize: config.hardware.dataParallelSize,
            effectiveBatch: config.training.microBatch * config.training.gradAccumulation * config.hardware.dataParallelSize,
            loraScale: config.lora.alpha / Double(config.lora.rank)
        )
    }

    /// The settings part, as a `WanLoRAConfig`.
    public var config: WanLoRAConfig {
        WanLoRAConfig(preset: preset, data: data, model: model, lora: lora, training: training,
                      hardware: hardware, sample: sample, eval: eval)
    }

    /// JSON with snake_case keys in sorted order, two-space indentation, a final newline.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        var data = try encoder.encode(self)
        data.append(0x0A)
        return data
    }

    /// Reads a `config.resolved.json`; refuses another schema version.
    public static func decode(_ data: Data, source: String = "config.resolved.json") throws -> ResolvedConfig {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let resolved: ResolvedConfig
        do {
            resolved = try decoder.decode(ResolvedConfig.self, from: data)
        } catch {
            throw ConfigError(
                kind: .syntax, key: nil,
                problem: "\(source) is not a resolved configuration of schema \(currentSchemaVersion): \(error).",
                remedy: "Write it again with this wanlora version (`wanlora train` writes it into the run folder)."
            )
        }
        guard resolved.schemaVersion == currentSchemaVersion else {
            throw ConfigError(
                kind: .invalidValue, key: "schema_version",
                problem: "\(source) has schema_version \(resolved.schemaVersion); this wanlora reads \(currentSchemaVersion).",
                remedy: "Resolve the TOML configuration again with this wanlora version."
            )
        }
        return resolved
    }
}
