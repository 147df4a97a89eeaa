import Foundation
import Support

/// `config.resolved.json`: the one file the engine reads, every key filled in.
///
/// Its format is the engine contract's (docs/engine-contract.md §2): sections `run`, `model`,
/// `data`, `cache`, `lora`, `train`, `logging`, `eval`, `checkpoint`, every key required, no
/// unknown keys. `init(resolving:runName:)` builds it from the TOML configuration (presets and
/// defaults applied); `anchored(at:)` makes its paths absolute so that it can live in the run
/// folder; `init(json:)` reads one back as strictly as the engine does. The fixtures in
/// engine/tests/fixtures/ are checked from both sides.
public struct ResolvedConfig: Sendable, Equatable {
    /// Bumped whenever a key is renamed, removed or changes meaning; the engine refuses other versions.
    public static let schemaVersion = 1

    public var run: Run
    public var model: Model
    public var data: DataSection
    public var cache: Cache
    public var lora: LoRA
    public var train: Train
    public var logging: Logging
    public var eval: Eval
    public var checkpoint: Checkpoint
    public var blocks: Blocks

    public struct Run: Sendable, Equatable {
        public var name: String
        /// The run folder: events, checkpoints, LoRA files.
        public var dir: String
    }

    public struct Model: Sendable, Equatable {
        public var path: String
        public var layout: CheckpointLayout
        public var dtype: EngineDType
        public var boundary: Double
        public var numTrainTimesteps: Int
        public var inactiveExpertDevice: InactiveExpertDevice
        /// How blocks that stream from host memory wait there (model.weights_dtype = "fp8": float8_e4m3fn
        /// with a float32 scale per output channel, dequantized into bf16 on the GPU; else the exact bf16).
        public var hostWeightsDtype: HostWeightsDType
    }

    public struct DataSection: Sendable, Equatable {
        public var trainManifest: String
        public var valManifest: String?
        public var cacheDir: String
        public var width: Int
        public var height: Int
        public var frames: Int
        public var fps: Int
        public var textLength: Int
        public var weightColumn: String?
        public var categoryColumn: String?
        public var source: TrainingDataSource
    }

    public struct Cache: Sendable, Equatable {
        public var device: ComputeDevice
        public var shardItems: Int
        public var textBatchSize: Int
        public var vaeTiling: Bool
        public var freeDiskMarginBytes: Int
    }

    public struct LoRA: Sendable, Equatable {
        public var rank: Int
        public var alpha: Double
        public var dropout: Double
        public var targets: [String]
        public var experts: [Expert]
    }

    public struct Train: Sendable, Equatable {
        public var device: ComputeDevice
        public var epochs: Int
        public var maxSteps: Int?
        public var microBatch: Int
        public var gradAccum: Int
        public var mixedPrecision: EngineMixedPrecision
        public var gradientCheckpointing: Bool
        public var cfgDropout: Double
        public var seed: Int
        public var expertGrouping: ExpertGrouping
        public var lossWeighting: LossWeighting
        public var classBalancedBeta: Double
        public var focalGamma: Double
        public var overfitSamples: Int?
        public var optimizer: OptimizerSection
        public var timesteps: Timesteps
    }

    public struct OptimizerSection: Sendable, Equatable {
        public var name: Optimizer
        public var lr: Double
        public var betas: [Double]
        public var eps: Double
        public var weightDecay: Double
        public var warmupSteps: Int
        public var schedule: LearningRateSchedule
        public var maxGradNorm: Double
    }

    public struct Timesteps: Sendable, Equatable {
        public var sampling: TimestepSampling
        public var shift: Double
        public var logitMean: Double
        public var logitStd: Double
    }

    public struct Logging: Sendable, Equatable {
        public var everySteps: Int
        public var tensorboard: Bool
    }

    public struct Eval: Sendable, Equatable {
        public var everySteps: Int
        public var timesteps: [Int]
        public var maxSamples: Int
        public var seed: Int
    }

    public struct Checkpoint: Sendable, Equatable {
        public var everySteps: Int
        public var keepLast: Int
    }

    /// How the engine runs the transformer blocks (docs/engine-contract.md §2.10).
    public struct Blocks: Sendable, Equatable {
        public var implementation: BlockImplementation
        public var attention: AttentionKernel
        public var keepAttention: Bool
        public var activationOffload: ActivationOffload
        public var compile: Bool
    }

    public enum EngineDType: String, Sendable, CaseIterable {
        case bfloat16, float16, float32
    }

    public enum HostWeightsDType: String, Sendable, CaseIterable {
        case bfloat16
        case float8E4M3FN = "float8_e4m3fn"
    }

    public enum InactiveExpertDevice: String, Sendable, CaseIterable {
        /// Both experts stay where training runs.
        case same
        /// The expert the current step does not use waits in host memory.
        case cpu
    }

    public enum Expert: String, Sendable, CaseIterable {
        case high, low
    }

    public enum EngineMixedPrecision: String, Sendable, CaseIterable {
        case bf16
        case no
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
        let tr = config.training
        guard !config.model.checkpoint.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ConfigError(
                kind: .missingKey, key: "model.checkpoint",
                problem: "model.checkpoint is empty: `cache` and `train` need the folder of the Wan2.2-T2V-A14B weights.",
                remedy: "Set model.checkpoint in the [model] section (or --set model.checkpoint=/path/to/Wan2.2-T2V-A14B): the official layout (high_noise_model/, low_noise_model/, …) or the diffusers layout."
            )
        }
        let dtype: EngineDType
        switch config.model.weightsDtype {
        case .bf16: dtype = .bfloat16
        case .fp16: dtype = .float16
        case .fp32: dtype = .float32
        // fp8 is the host format of the blocks that stream; the GPU computes on bf16 weights.
        case .fp8: dtype = .bfloat16
        }
        let precision: EngineMixedPrecision
        switch tr.mixedPrecision {
        case .bf16: precision = .bf16
        case .fp32: precision = .no
        case .fp16:
            throw ConfigError(
                kind: .unsupported, key: "training.mixed_precision",
                problem: "training.mixed_precision = \"fp16\" is a planning option: the engine trains with bf16 autocast or in float32, and fp16 needs loss scaling it does not have.",
                remedy: "Set training.mixed_precision to \"bf16\" on a GPU with bfloat16, or \"fp32\" (a V100 has no bf16: fp32 there)."
            )
        }
        let experts: [Expert] = switch tr.expert {
        case .high: [.high]
        case .low: [.low]
        case .both: [.high, .low]
        }
        func orNil(_ text: String) -> String? { text.isEmpty ? nil : text }
        run = Run(name: runName, dir: Self.join(config.run.runsDir, runName))
        model = Model(
            path: config.model.checkpoint, layout: config.model.layout, dtype: dtype, boundary: config.model.boundary,
            numTrainTimesteps: config.model.numTrainTimesteps,
            inactiveExpertDevice: config.hardware.inactiveExpert == .offload ? .cpu : .same,
            hostWeightsDtype: config.model.weightsDtype == .fp8 ? .float8E4M3FN : .bfloat16
        )
        data = DataSection(
            trainManifest: config.data.trainManifest, valManifest: orNil(config.data.valManifest),
            cacheDir: config.data.cacheFolder(tr), width: tr.width, height: tr.height, frames: tr.frames, fps: tr.fps,
            textLength: tr.textLength, weightColumn: orNil(config.data.weightColumn),
            categoryColumn: orNil(config.data.categoryColumn), source: config.data.source
        )
        cache = Cache(
            device: config.cache.device, shardItems: config.cache.shardItems, textBatchSize: config.cache.textBatchSize,
            vaeTiling: config.cache.vaeTiling,
            freeDiskMarginBytes: Int((config.cache.freeDiskMarginGiB * 1_073_741_824).rounded())
        )
        lora = LoRA(rank: config.lora.rank, alpha: config.lora.alpha, dropout: config.lora.dropout,
                    targets: config.lora.targets, experts: experts)
        train = Train(
            device: tr.device, epochs: tr.epochs, maxSteps: tr.maxSteps > 0 ? tr.maxSteps : nil,
            microBatch: tr.microBatch, gradAccum: tr.gradAccumulation, mixedPrecision: precision,
            gradientCheckpointing: tr.gradientCheckpointing, cfgDropout: tr.cfgDropout, seed: tr.seed,
            expertGrouping: tr.expertGrouping, lossWeighting: tr.lossWeighting, classBalancedBeta: tr.classBalancedBeta,
            focalGamma: tr.focalGamma, overfitSamples: tr.overfitSamples > 0 ? tr.overfitSamples : nil,
            optimizer: OptimizerSection(
                name: tr.optimizer, lr: tr.learningRate, betas: tr.adamBetas, eps: tr.adamEps,
                weightDecay: tr.weightDecay, warmupSteps: tr.warmupSteps, schedule: tr.schedule, maxGradNorm: tr.maxGradNorm
            ),
            timesteps: Timesteps(sampling: tr.timestepSampling, shift: tr.timestepShift,
                                 logitMean: tr.timestepLogitMean, logitStd: tr.timestepLogitStd)
        )
        logging = Logging(everySteps: tr.loggingSteps, tensorboard: tr.tensorboard)
        eval = Eval(everySteps: tr.evalSteps, timesteps: config.eval.valLossTimesteps,
                    maxSamples: config.eval.valLossSamples, seed: config.eval.seed)
        checkpoint = Checkpoint(everySteps: tr.saveSteps, keepLast: tr.keepCheckpoints)
        blocks = Blocks(implementation: tr.blocks, attention: tr.attention, keepAttention: tr.keepAttention,
                        activationOffload: tr.activationOffload, compile: tr.compile)
        try validate()
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

    /// The same configuration with every relative path made absolute against `baseDir` (the
    /// folder of the TOML file), so that the file can be written into the run folder.
    public func anchored(at baseDir: String) -> ResolvedConfig {
        var copy = self
        func absolute(_ path: String) -> String {
            let expanded = (path as NSString).expandingTildeInPath
            return expanded.hasPrefix("/") ? Self.normalise(expanded) : Self.normalise(Self.join(baseDir, expanded))
        }
        copy.run.dir = absolute(run.dir)
        copy.model.path = absolute(model.path)
        copy.data.trainManifest = absolute(data.trainManifest)
        copy.data.valManifest = data.valManifest.map(absolute)
        copy.data.cacheDir = absolute(data.cacheDir)
        return copy
    }

    static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    /// Removes "." components, resolves ".." lexically and repeated slashes (no symlinks followed).
    public static func normalise(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." { parts.removeLast(); continue }
            if part == ".." && path.hasPrefix("/") { continue }
            parts.append(part)
        }
        return (path.hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
    }
}

// MARK: - The engine's rules

extension ResolvedConfig {
    /// The engine's checks of every value (wanlora_engine/config.py), so that Swift never writes
    /// a file the engine would refuse. Throws the first violation, naming the JSON key.
    public func validate() throws {
        func fail(_ key: String, _ value: String, _ rule: String) -> ConfigError {
            ConfigError(kind: .invalidValue, key: key,
                        problem: "config.resolved.json: \(key) = \(value) is not allowed: it must be \(rule).",
                        remedy: "Change the TOML key behind \(key) (docs/engine-contract.md §2 names it) and resolve again.")
        }
        func check(_ ok: Bool, _ key: String, _ value: @autoclosure () -> String, _ rule: String) throws {
            if !ok { throw fail(key, value(), rule) }
        }
        func number(_ d: Double) -> String { String(d) }
        for (key, path) in [("run.name", run.name), ("run.dir", run.dir), ("model.path", model.path),
                            ("data.train_manifest", data.trainManifest), ("data.cache_dir", data.cacheDir)] {
            try check(!path.isEmpty, key, "\"\"", "a non-empty string")
        }
        if let val = data.valManifest { try check(!val.isEmpty, "data.val_manifest", "\"\"", "a non-empty path or null") }
        try check(model.boundary > 0 && model.boundary < 1, "model.boundary", number(model.boundary), "in (0, 1)")
        try check(model.numTrainTimesteps > 0, "model.num_train_timesteps", String(model.numTrainTimesteps), "> 0")
        try check(data.width > 0 && data.width % 16 == 0, "data.width", String(data.width), "a positive multiple of 16 (VAE 8x, patch 2x)")
        try check(data.height > 0 && data.height % 16 == 0, "data.height", String(data.height), "a positive multiple of 16 (VAE 8x, patch 2x)")
        try check(data.frames >= 1 && (data.frames - 1) % 4 == 0, "data.frames", String(data.frames),
                  "4n+1 (1, 5, ..., 49, 81): the VAE compresses time 4x")
        try check(data.fps > 0, "data.fps", String(data.fps), "> 0")
        try check(data.textLength > 0, "data.text_length", String(data.textLength), "> 0")
        try check(cache.shardItems > 0, "cache.shard_items", String(cache.shardItems), "> 0")
        try check(cache.textBatchSize > 0, "cache.text_batch_size", String(cache.textBatchSize), "> 0")
        try check(cache.freeDiskMarginBytes >= 0, "cache.free_disk_margin_bytes", String(cache.freeDiskMarginBytes), ">= 0")
        try check(lora.rank > 0, "lora.rank", String(lora.rank), "> 0")
        try check(lora.alpha > 0 && lora.alpha.isFinite, "lora.alpha", number(lora.alpha), "> 0")
        try check(lora.dropout >= 0 && lora.dropout < 1, "lora.dropout", number(lora.dropout), "in [0, 1)")
        try check(!lora.targets.isEmpty, "lora.targets", "[]", "a non-empty array")
        try check(!lora.experts.isEmpty && Set(lora.experts).count == lora.experts.count, "lora.experts",
                  "[" + lora.experts.map { "\"\($0.rawValue)\"" }.joined(separator: ", ") + "]",
                  "\"high\", \"low\" or both, each once")
        try check(train.epochs > 0, "train.epochs", String(train.epochs), "> 0")
        if let steps = train.maxSteps { try check(steps > 0, "train.max_steps", String(steps), "> 0 or null") }
        try check(train.microBatch > 0, "train.micro_batch", String(train.microBatch), "> 0")
        try check(train.gradAccum > 0, "train.grad_accum", String(train.gradAccum), "> 0")
        try check(train.cfgDropout >= 0 && train.cfgDropout < 1, "train.cfg_dropout", number(train.cfgDropout), "in [0, 1)")
        try check(train.seed >= 0, "train.seed", String(train.seed), ">= 0")
        try check(train.classBalancedBeta > 0 && train.classBalancedBeta < 1, "train.class_balanced_beta",
                  number(train.classBalancedBeta), "in (0, 1)")
        try check(train.focalGamma >= 0, "train.focal_gamma", number(train.focalGamma), ">= 0")
        if let n = train.overfitSamples { try check(n > 0, "train.overfit_samples", String(n), "> 0 or null") }
        let o = train.optimizer
        try check(o.lr > 0, "train.optimizer.lr", number(o.lr), "> 0")
        try check(o.betas.count == 2 && o.betas.allSatisfy { $0 >= 0 && $0 < 1 }, "train.optimizer.betas",
                  "[" + o.betas.map(number).joined(separator: ", ") + "]", "two numbers in [0, 1)")
        try check(o.eps > 0, "train.optimizer.eps", number(o.eps), "> 0")
        try check(o.weightDecay >= 0, "train.optimizer.weight_decay", number(o.weightDecay), ">= 0")
        try check(o.warmupSteps >= 0, "train.optimizer.warmup_steps", String(o.warmupSteps), ">= 0")
        try check(o.maxGradNorm >= 0, "train.optimizer.max_grad_norm", number(o.maxGradNorm), ">= 0")
        try check(train.timesteps.shift > 0, "train.timesteps.shift", number(train.timesteps.shift), "> 0")
        try check(train.timesteps.logitStd > 0, "train.timesteps.logit_std", number(train.timesteps.logitStd), "> 0")
        try check(logging.everySteps > 0, "logging.every_steps", String(logging.everySteps), "> 0")
        try check(eval.everySteps >= 0, "eval.every_steps", String(eval.everySteps), ">= 0")
        try check(!eval.timesteps.isEmpty && eval.timesteps.allSatisfy { (0...999).contains($0) }, "eval.timesteps",
                  "[" + eval.timesteps.map(String.init).joined(separator: ", ") + "]", "a non-empty array of integers in [0, 999]")
        try check(eval.maxSamples > 0, "eval.max_samples", String(eval.maxSamples), "> 0")
        try check(eval.seed >= 0, "eval.seed", String(eval.seed), ">= 0")
        try check(checkpoint.everySteps >= 0, "checkpoint.every_steps", String(checkpoint.everySteps), ">= 0")
        try check(checkpoint.keepLast > 0, "checkpoint.keep_last", String(checkpoint.keepLast), "> 0")
    }
}

// MARK: - JSON

extension ResolvedConfig {
    /// The document, keys in the contract's order.
    public func json() -> JSONValue {
        func object(_ members: [(String, JSONValue)]) -> JSONValue { .object(members.map { JSONMember($0.0, $0.1) }) }
        func text(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
        func int(_ i: Int?) -> JSONValue { i.map { .int($0) } ?? .null }
        return object([
            ("schema_version", .int(Self.schemaVersion)),
            ("run", object([("name", .string(run.name)), ("dir", .string(run.dir))])),
            ("model", object([
                ("path", .string(model.path)), ("layout", .string(model.layout.rawValue)),
                ("dtype", .string(model.dtype.rawValue)), ("boundary", .double(model.boundary)),
                ("num_train_timesteps", .int(model.numTrainTimesteps)),
                ("inactive_expert_device", .string(model.inactiveExpertDevice.rawValue)),
                ("host_weights_dtype", .string(model.hostWeightsDtype.rawValue)),
            ])),
            ("data", object([
                ("train_manifest", .string(data.trainManifest)), ("val_manifest", text(data.valManifest)),
                ("cache_dir", .string(data.cacheDir)), ("width", .int(data.width)), ("height", .int(data.height)),
                ("frames", .int(data.frames)), ("fps", .int(data.fps)), ("text_length", .int(data.textLength)),
                ("weight_column", text(data.weightColumn)), ("category_column", text(data.categoryColumn)),
                ("source", .string(data.source.rawValue)),
            ])),
            ("cache", object([
                ("device", .string(cache.device.rawValue)), ("shard_items", .int(cache.shardItems)),
                ("text_batch_size", .int(cache.textBatchSize)), ("vae_tiling", .bool(cache.vaeTiling)),
                ("free_disk_margin_bytes", .int(cache.freeDiskMarginBytes)),
            ])),
            ("lora", object([
                ("rank", .int(lora.rank)), ("alpha", .double(lora.alpha)), ("dropout", .double(lora.dropout)),
                ("targets", .array(lora.targets.map { .string($0) })),
                ("experts", .array(lora.experts.map { .string($0.rawValue) })),
            ])),
            ("train", object([
                ("device", .string(train.device.rawValue)), ("epochs", .int(train.epochs)), ("max_steps", int(train.maxSteps)),
                ("micro_batch", .int(train.microBatch)), ("grad_accum", .int(train.gradAccum)),
                ("mixed_precision", .string(train.mixedPrecision.rawValue)),
                ("gradient_checkpointing", .bool(train.gradientCheckpointing)), ("cfg_dropout", .double(train.cfgDropout)),
                ("seed", .int(train.seed)), ("expert_grouping", .string(train.expertGrouping.rawValue)),
                ("loss_weighting", .string(train.lossWeighting.rawValue)),
                ("class_balanced_beta", .double(train.classBalancedBeta)), ("focal_gamma", .double(train.focalGamma)),
                ("overfit_samples", int(train.overfitSamples)),
                ("optimizer", object([
                    ("name", .string(train.optimizer.name.rawValue)), ("lr", .double(train.optimizer.lr)),
                    ("betas", .array(train.optimizer.betas.map { .double($0) })), ("eps", .double(train.optimizer.eps)),
                    ("weight_decay", .double(train.optimizer.weightDecay)), ("warmup_steps", .int(train.optimizer.warmupSteps)),
                    ("schedule", .string(train.optimizer.schedule.rawValue)),
                    ("max_grad_norm", .double(train.optimizer.maxGradNorm)),
                ])),
                ("timesteps", object([
                    ("sampling", .string(train.timesteps.sampling.rawValue)), ("shift", .double(train.timesteps.shift)),
                    ("logit_mean", .double(train.timesteps.logitMean)), ("logit_std", .double(train.timesteps.logitStd)),
                ])),
            ])),
            ("logging", object([("every_steps", .int(logging.everySteps)), ("tensorboard", .bool(logging.tensorboard))])),
            ("eval", object([
                ("every_steps", .int(eval.everySteps)), ("timesteps", .array(eval.timesteps.map { .int($0) })),
                ("max_samples", .int(eval.maxSamples)), ("seed", .int(eval.seed)),
            ])),
            ("checkpoint", object([("every_steps", .int(checkpoint.everySteps)), ("keep_last", .int(checkpoint.keepLast))])),
            ("blocks", object([
                ("implementation", .string(blocks.implementation.rawValue)), ("attention", .string(blocks.attention.rawValue)),
                ("keep_attention", .bool(blocks.keepAttention)), ("activation_offload", .string(blocks.activationOffload.rawValue)),
                ("compile", .bool(blocks.compile)),
            ])),
        ])
    }

    /// The file's text: two-space indentation, the contract's key order, a final newline.
    public func formatted() -> String { json().formatted() }

    /// Reads a `config.resolved.json` as strictly as the engine: every key required, unknown
    /// keys refused, integers where integers belong (`true` is not 1), then `validate()`.
    public init(json value: JSONValue, source: String = "config.resolved.json") throws {
        let top = try StrictObject(value, path: "", source: source, keys: [
            "schema_version", "run", "model", "data", "cache", "lora", "train", "logging", "eval", "checkpoint", "blocks",
        ])
        let version = try top.value("schema_version")
        guard case .int(Self.schemaVersion) = version else {
            throw ConfigError(
                kind: .invalidValue, key: "schema_version",
                problem: "\(source) has schema_version \(version.compact()); this wanlora reads version \(Self.schemaVersion).",
                remedy: "Resolve the TOML configuration again with this wanlora (`wanlora config show --config FILE --json`)."
            )
        }
        let r = try top.object("run", keys: ["name", "dir"])
        run = Run(name: try r.string("name"), dir: try r.path("dir"))
        let m = try top.object("model", keys: ["path", "layout", "dtype", "boundary", "num_train_timesteps", "inactive_expert_device",
                                                "host_weights_dtype"])
        model = Model(path: try m.path("path"), layout: try m.choice("layout"), dtype: try m.choice("dtype"),
                      boundary: try m.number("boundary"), numTrainTimesteps: try m.int("num_train_timesteps"),
                      inactiveExpertDevice: try m.choice("inactive_expert_device"),
                      hostWeightsDtype: try m.choice("host_weights_dtype"))
        let d = try top.object("data", keys: ["train_manifest", "val_manifest", "cache_dir", "width", "height", "frames", "fps",
                                              "text_length", "weight_column", "category_column", "source"])
        data = DataSection(
            trainManifest: try d.path("train_manifest"), valManifest: try d.optional("val_manifest") { try d.path($0) },
            cacheDir: try d.path("cache_dir"), width: try d.int("width"), height: try d.int("height"),
            frames: try d.int("frames"), fps: try d.int("fps"), textLength: try d.int("text_length"),
            weightColumn: try d.optional("weight_column") { try d.string($0) },
            categoryColumn: try d.optional("category_column") { try d.string($0) },
            source: try d.choice("source")
        )
        let c = try top.object("cache", keys: ["device", "shard_items", "text_batch_size", "vae_tiling", "free_disk_margin_bytes"])
        cache = Cache(device: try c.choice("device"), shardItems: try c.int("shard_items"), textBatchSize: try c.int("text_batch_size"),
                      vaeTiling: try c.bool("vae_tiling"), freeDiskMarginBytes: try c.int("free_disk_margin_bytes"))
        let l = try top.object("lora", keys: ["rank", "alpha", "dropout", "targets", "experts"])
        lora = LoRA(rank: try l.int("rank"), alpha: try l.number("alpha"), dropout: try l.number("dropout"),
                    targets: try l.array("targets") { try l.stringItem($0, $1) },
                    experts: try l.array("experts") { try l.choiceItem($0, $1) })
        let t = try top.object("train", keys: [
            "device", "epochs", "max_steps", "micro_batch", "grad_accum", "mixed_precision", "gradient_checkpointing",
            "cfg_dropout", "seed", "expert_grouping", "loss_weighting", "class_balanced_beta", "focal_gamma",
            "overfit_samples", "optimizer", "timesteps",
        ])
        let device: ComputeDevice = try t.choice("device")
        let epochs = try t.int("epochs")
        let maxSteps = try t.optional("max_steps") { try t.int($0) }
        let microBatch = try t.int("micro_batch"), gradAccum = try t.int("grad_accum")
        let precision: EngineMixedPrecision = try t.choice("mixed_precision")
        let checkpointing = try t.bool("gradient_checkpointing")
        let cfgDropout = try t.number("cfg_dropout"), seed = try t.int("seed")
        let grouping: ExpertGrouping = try t.choice("expert_grouping")
        let weighting: LossWeighting = try t.choice("loss_weighting")
        let beta = try t.number("class_balanced_beta"), gamma = try t.number("focal_gamma")
        let overfit = try t.optional("overfit_samples") { try t.int($0) }
        let o = try t.object("optimizer", keys: ["name", "lr", "betas", "eps", "weight_decay", "warmup_steps", "schedule", "max_grad_norm"])
        let optimizer = OptimizerSection(
            name: try o.choice("name"), lr: try o.number("lr"), betas: try o.array("betas") { try o.numberItem($0, $1) },
            eps: try o.number("eps"), weightDecay: try o.number("weight_decay"), warmupSteps: try o.int("warmup_steps"),
            schedule: try o.choice("schedule"), maxGradNorm: try o.number("max_grad_norm")
        )
        let s = try t.object("timesteps", keys: ["sampling", "shift", "logit_mean", "logit_std"])
        let timesteps = Timesteps(sampling: try s.choice("sampling"), shift: try s.number("shift"),
                                  logitMean: try s.number("logit_mean"), logitStd: try s.number("logit_std"))
        train = Train(
            device: device, epochs: epochs, maxSteps: maxSteps, microBatch: microBatch, gradAccum: gradAccum,
            mixedPrecision: precision, gradientCheckpointing: checkpointing, cfgDropout: cfgDropout, seed: seed,
            expertGrouping: grouping, lossWeighting: weighting, classBalancedBeta: beta, focalGamma: gamma,
            overfitSamples: overfit, optimizer: optimizer, timesteps: timesteps
        )
        let g = try top.object("logging", keys: ["every_steps", "tensorboard"])
        logging = Logging(everySteps: try g.int("every_steps"), tensorboard: try g.bool("tensorboard"))
        let e = try top.object("eval", keys: ["every_steps", "timesteps", "max_samples", "seed"])
        eval = Eval(everySteps: try e.int("every_steps"), timesteps: try e.array("timesteps") { try e.intItem($0, $1) },
                    maxSamples: try e.int("max_samples"), seed: try e.int("seed"))
        let k = try top.object("checkpoint", keys: ["every_steps", "keep_last"])
        checkpoint = Checkpoint(everySteps: try k.int("every_steps"), keepLast: try k.int("keep_last"))
        let b = try top.object("blocks", keys: ["implementation", "attention", "keep_attention", "activation_offload", "compile"])
        blocks = Blocks(implementation: try b.choice("implementation"), attention: try b.choice("attention"),
                        keepAttention: try b.bool("keep_attention"), activationOffload: try b.choice("activation_offload"),
                        compile: try b.bool("compile"))
        try validate()
    }

    /// Reads and checks the file at `path`.
    public static func read(file path: String) throws -> ResolvedConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(kind: .unreadable, key: nil, problem: "\(path) does not exist or cannot be read.",
                              remedy: "Pass the config.resolved.json that `wanlora train` wrote into the run folder.")
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(String(decoding: data, as: UTF8.self))
        } catch {
            throw ConfigError(kind: .syntax, key: nil, problem: "\(path) is not valid JSON: \(error).",
                              remedy: "Write it again with `wanlora config show --config FILE --json`, or fix the JSON there.")
        }
        return try ResolvedConfig(json: value, source: path)
    }
}

/// One JSON object of the resolved config, read key by key with the engine's strictness.
private struct StrictObject {
    let path: String
    let source: String
    let members: [JSONMember]

    init(_ value: JSONValue, path: String, source: String, keys: [String]) throws {
        self.path = path
        self.source = source
        guard case .object(let members) = value else {
            throw ConfigError(kind: .wrongType, key: path.isEmpty ? nil : path,
                              problem: "\(source): \(path.isEmpty ? "the file" : "'\(path)'") is \(value.typeName), expected an object.",
                              remedy: "Write it as a JSON object; docs/engine-contract.md §2 lists its keys.")
        }
        self.members = members
        // Unknown keys first, as the engine does: a typo never falls back to a default.
        if let unknown = members.map(\.key).filter({ !keys.contains($0) }).sorted().first {
            let full = path.isEmpty ? unknown : "\(path).\(unknown)"
            throw ConfigError(kind: .unknownKey, key: full,
                              problem: "\(source) has the unknown key '\(full)'.",
                              remedy: "Remove it or correct its spelling; the keys of '\(path.isEmpty ? "the top level" : path)' are: \(keys.sorted().joined(separator: ", ")).")
        }
    }

    func key(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    func value(_ name: String) throws -> JSONValue {
        guard let member = members.first(where: { $0.key == name }) else {
            throw ConfigError(kind: .missingKey, key: key(name),
                              problem: "\(source) lacks the key '\(key(name))'.",
                              remedy: "Every key is required (config.resolved.json has no defaults): resolve the TOML configuration again, or add it (docs/engine-contract.md §2).")
        }
        return member.value
    }

    func wrong(_ name: String, _ value: JSONValue, _ expected: String) -> ConfigError {
        ConfigError(kind: .wrongType, key: name,
                    problem: "\(source): '\(name)' is \(value.compact()) (\(value.typeName)), expected \(expected).",
                    remedy: "Write '\(name)' as \(expected) (docs/engine-contract.md §2).")
    }

    func object(_ name: String, keys: [String]) throws -> StrictObject {
        try StrictObject(try value(name), path: key(name), source: source, keys: keys)
    }

    func int(_ name: String) throws -> Int { try intItem(key(name), try value(name)) }
    func number(_ name: String) throws -> Double { try numberItem(key(name), try value(name)) }
    func string(_ name: String) throws -> String { try stringItem(key(name), try value(name)) }

    func bool(_ name: String) throws -> Bool {
        let v = try value(name)
        guard case .bool(let b) = v else { throw wrong(key(name), v, "true or false") }
        return b
    }

    func path(_ name: String) throws -> String {
        let s = try string(name)
        guard !s.isEmpty else { throw wrong(key(name), .string(s), "a non-empty path") }
        return s
    }

    func choice<E: RawRepresentable & CaseIterable>(_ name: String) throws -> E where E.RawValue == String {
        try choiceItem(key(name), try value(name))
    }

    func optional<T>(_ name: String, _ read: (String) throws -> T) throws -> T? {
        if case .null = try value(name) { return nil }
        return try read(name)
    }

    func array<T>(_ name: String, _ item: (String, JSONValue) throws -> T) throws -> [T] {
        let v = try value(name)
        guard case .array(let items) = v else { throw wrong(key(name), v, "an array") }
        return try items.enumerated().map { try item("\(key(name))[\($0.offset)]", $0.element) }
    }

    func intItem(_ name: String, _ v: JSONValue) throws -> Int {
        guard case .int(let i) = v else { throw wrong(name, v, "an integer") }
        return i
    }

    func numberItem(_ name: String, _ v: JSONValue) throws -> Double {
        switch v {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: throw wrong(name, v, "a number")
        }
    }

    func stringItem(_ name: String, _ v: JSONValue) throws -> String {
        guard case .string(let s) = v else { throw wrong(name, v, "a string") }
        return s
    }

    func choiceItem<E: RawRepresentable & CaseIterable>(_ name: String, _ v: JSONValue) throws -> E where E.RawValue == String {
        let allowed = "one of " + E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        guard case .string(let s) = v, let e = E(rawValue: s) else { throw wrong(name, v, allowed) }
        return e
    }
}
