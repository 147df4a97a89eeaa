import Foundation

/// One key of the configuration file: its name, what it means, what values it takes, how it
/// is written into a `WanLoRAConfig` and how its current value reads in TOML.
public struct ConfigKey {
    /// Section name, e.g. "training".
    public let section: String
    /// Key name inside the section, e.g. "frames".
    public let name: String
    /// One line saying what the key is (used by `wanlora config init` and docs).
    public let summary: String
    /// What values are allowed, in words.
    public let allowed: String
    let apply: (inout WanLoRAConfig, ConfigValue) throws -> Void
    let read: (WanLoRAConfig) -> String

    /// "section.name".
    public var path: String { "\(section).\(name)" }

    /// The key's value in `config`, spelled as TOML.
    public func tomlValue(in config: WanLoRAConfig) -> String { read(config) }
}

/// The registry of every key the configuration file may hold, in file order.
public enum ConfigKeys {
    /// Section names in the order a file lists them.
    public static let sections = ["data", "model", "lora", "training", "hardware", "sample", "eval"]

    /// Every key, grouped by section in `sections` order.
    public static var all: [ConfigKey] {
        data + model + lora + training + hardware + sample + eval
    }

    /// The key named `path` ("section.name"), if any.
    public static func key(_ path: String) -> ConfigKey? { all.first { $0.path == path } }

    static var data: [ConfigKey] {
        [
            text("data", "train_manifest", \.data.trainManifest, "Prepared training manifest (CSV or JSON Lines)."),
            text("data", "val_manifest", \.data.valManifest, "Prepared validation manifest."),
            text("data", "cache_dir", \.data.cacheDir, "Folder for VAE latents and UMT5 embeddings."),
            text("data", "runs_dir", \.data.runsDir, "Folder that holds one sub-folder per training run."),
        ]
    }

    static var model: [ConfigKey] {
        [
            choice("model", "architecture", \.model.architecture, "Model to fine-tune."),
            text("model", "checkpoint", \.model.checkpoint,
                 "Local folder with the weights (empty: not given yet; `plan` needs none).", allowEmpty: true),
            choice("model", "layout", \.model.layout, "Checkpoint folder layout."),
            choice("model", "weights_dtype", \.model.weightsDtype, "Storage of the frozen base weights on the GPU."),
            real("model", "boundary", \.model.boundary, "High-noise expert for t ≥ boundary·1000 (training and sampling).",
                 allowed: "a number between 0 and 1 (exclusive), e.g. 0.875", valid: { $0 > 0 && $0 < 1 }),
        ]
    }

    static var lora: [ConfigKey] {
        [
            integer("lora", "rank", \.lora.rank, "LoRA rank r.", range: 1...1024),
            real("lora", "alpha", \.lora.alpha, "LoRA alpha; the update is scaled by alpha / rank.",
                 allowed: "a number greater than 0, usually equal to the rank", valid: { $0 > 0 }),
            real("lora", "dropout", \.lora.dropout, "Dropout on the LoRA input.",
                 allowed: "a number from 0 up to (not including) 1, e.g. 0.05", valid: { $0 >= 0 && $0 < 1 }),
            ConfigKey(
                section: "lora", name: "targets",
                summary: "Module names to adapt, matched as peft does (equal, or ending in \".\" + name).",
                allowed: "a non-empty array of distinct module names, e.g. [\"to_q\", \"to_k\", \"to_v\", \"to_out.0\"]",
                apply: { config, value in
                    let names = try stringArray("lora.targets", value)
                    guard !names.isEmpty else {
                        throw ConfigError.invalid("lora.targets", "[]", allowed: "at least one module name, e.g. [\"to_q\", \"to_k\", \"to_v\", \"to_out.0\"]")
                    }
                    if let blank = names.first(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
                        throw ConfigError.invalid("lora.targets", TOMLLiteral.string(blank), allowed: "non-empty module names")
                    }
                    var seen = Set<String>()
                    for name in names where !seen.insert(name).inserted {
                        throw ConfigError.invalid("lora.targets", value.literal, allowed: "each module name once", why: "\"\(name)\" appears twice")
                    }
                    config.lora.targets = names
                },
                read: { TOMLLiteral.stringArray($0.lora.targets) }
            ),
        ]
    }

    static var training: [ConfigKey] {
        [
            integer("training", "frames", \.training.frames, "Frames per training clip (4n+1: 81, 49, 33, 1 …).",
                    range: 1...1025, extra: fourNPlusOne),
            resolution("training", \.training.width, \.training.height, "Training resolution, width x height."),
            integer("training", "fps", \.training.fps, "Frame rate of the training clips.", range: 1...120),
            integer("training", "text_length", \.training.textLength, "Caption tokens fed to UMT5 (padded/truncated).", range: 1...512),
            integer("training", "micro_batch", \.training.microBatch, "Samples per GPU group per forward pass.", range: 1...1024),
            integer("training", "grad_accumulation", \.training.gradAccumulation, "Micro-batches per optimizer step.", range: 1...65536),
            integer("training", "epochs", \.training.epochs, "Passes over the training set.", range: 1...10000),
            real("training", "learning_rate", \.training.learningRate, "Peak learning rate.",
                 allowed: "a number greater than 0 and below 1, e.g. 1e-4", valid: { $0 > 0 && $0 < 1 }),
            real("training", "weight_decay", \.training.weightDecay, "AdamW decoupled weight decay.",
                 allowed: "a number from 0 to 1, e.g. 0.01", valid: { $0 >= 0 && $0 <= 1 }),
            integer("training", "warmup_steps", \.training.warmupSteps, "Optimizer steps of linear warm-up.", range: 0...10_000_000),
            choice("training", "schedule", \.training.schedule, "Learning-rate schedule after warm-up."),
            real("training", "max_grad_norm", \.training.maxGradNorm, "Gradient clipping norm (0 disables clipping).",
                 allowed: "a number of 0 or more, e.g. 1.0", valid: { $0 >= 0 }),
            choice("training", "optimizer", \.training.optimizer, "Optimizer of the LoRA parameters."),
            choice("training", "mixed_precision", \.training.mixedPrecision, "Compute dtype of the forward and backward pass."),
            flag("training", "gradient_checkpointing", \.training.gradientCheckpointing,
                 "Keep only each block's input and recompute the block in backward."),
            choice("training", "residual_dtype", \.training.residualDtype, "dtype of the residual stream between blocks."),
            choice("training", "blocks", \.training.blocks,
                   "Engine block implementation: fast (attention kept, fused, activations in host memory) or diffusers."),
            real("training", "cfg_dropout", \.training.cfgDropout, "Probability of training a sample with the empty prompt.",
                 allowed: "a number from 0 up to (not including) 1, e.g. 0.1", valid: { $0 >= 0 && $0 < 1 }),
            real("training", "timestep_shift", \.training.timestepShift, "Shift s of the timestep sampler σ = s·u/(1+(s−1)·u).",
                 allowed: "a number greater than 0 (1 = uniform), e.g. 5.0", valid: { $0 > 0 }),
            integer("training", "seed", \.training.seed, "Random seed of sampling, noise and dropout.", range: 0...Int(Int32.max)),
            integer("training", "logging_steps", \.training.loggingSteps, "Optimizer steps between log lines.", range: 1...10_000_000),
            integer("training", "save_steps", \.training.saveSteps, "Optimizer steps between checkpoints.", range: 1...10_000_000),
            integer("training", "eval_steps", \.training.evalSteps, "Optimizer steps between validation-loss measurements.", range: 1...10_000_000),
            integer("training", "keep_checkpoints", \.training.keepCheckpoints, "Checkpoints kept on disk (the oldest go first).", range: 1...10000),
            choice("training", "expert", \.training.expert, "Which expert(s) get a LoRA."),
        ]
    }

    static var hardware: [ConfigKey] {
        [
            text("hardware", "gpu", \.hardware.gpu, "GPU model, a name from `wanlora plan --list-gpus`."),
            integer("hardware", "gpus_per_node", \.hardware.gpusPerNode, "GPUs per node (torchrun --nproc-per-node).", range: 1...64),
            integer("hardware", "nodes", \.hardware.nodes, "Nodes (torchrun --nnodes).", range: 1...4096),
            integer("hardware", "ulysses_degree", \.hardware.ulyssesDegree,
                    "GPUs that share one sample's tokens (Ulysses sequence parallelism); 1 = off.", range: 1...64),
            flag("hardware", "fsdp", \.hardware.fsdp, "Shard the frozen expert weights over all GPUs (FSDP)."),
            choice("hardware", "t5", \.hardware.t5, "Where the UMT5 text encoder lives during training."),
            choice("hardware", "vae", \.hardware.vae, "Where the VAE lives during training."),
            choice("hardware", "inactive_expert", \.hardware.inactiveExpert,
                   "Where the expert the current sample does not use waits (expert = both)."),
        ]
    }

    static var sample: [ConfigKey] {
        [
            integer("sample", "steps", \.sample.steps, "Denoising steps.", range: 1...1000),
            real("sample", "shift", \.sample.shift, "Flow-matching timestep shift of the sampler.",
                 allowed: "a number greater than 0, e.g. 12.0", valid: { $0 > 0 }),
            real("sample", "guidance_high", \.sample.guidanceHigh, "CFG scale on the high-noise expert (1 = no guidance).",
                 allowed: "a number of 1 or more, e.g. 4.0", valid: { $0 >= 1 }),
            real("sample", "guidance_low", \.sample.guidanceLow, "CFG scale on the low-noise expert (1 = no guidance).",
                 allowed: "a number of 1 or more, e.g. 3.0", valid: { $0 >= 1 }),
            integer("sample", "frames", \.sample.frames, "Frames per generated video (4n+1).", range: 1...1025, extra: fourNPlusOne),
            resolution("sample", \.sample.width, \.sample.height, "Resolution of generated videos, width x height."),
            integer("sample", "fps", \.sample.fps, "Frame rate of generated videos.", range: 1...120),
            integer("sample", "seed", \.sample.seed, "Seed of the initial noise.", range: 0...Int(Int32.max)),
            text("sample", "negative_prompt", \.sample.negativePrompt, "Negative prompt for CFG (empty: the empty prompt).", allowEmpty: true),
        ]
    }

    static var eval: [ConfigKey] {
        [
            ConfigKey(
                section: "eval", name: "metrics", summary: "Metrics `wanlora evaluate` computes.",
                allowed: "an array of " + EvalMetric.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "),
                apply: { config, value in
                    let names = try stringArray("eval.metrics", value)
                    var metrics: [EvalMetric] = []
                    for name in names {
                        guard let metric = EvalMetric(rawValue: name) else {
                            throw ConfigError.invalid("eval.metrics", TOMLLiteral.string(name),
                                                      allowed: "metric names from " + EvalMetric.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))
                        }
                        if !metrics.contains(metric) { metrics.append(metric) }
                    }
                    config.eval.metrics = metrics
                },
                read: { TOMLLiteral.stringArray($0.eval.metrics.map(\.rawValue)) }
            ),
            integer("eval", "samples_per_category", \.eval.samplesPerCategory, "Videos generated per category.", range: 0...10000),
            integer("eval", "val_loss_samples", \.eval.valLossSamples, "Validation clips for the validation loss (0 = all).", range: 0...100_000_000),
            ConfigKey(
                section: "eval", name: "val_loss_timesteps",
                summary: "Fixed timestep ratios of the validation loss, so runs compare.",
                allowed: "a non-empty array of numbers between 0 and 1 (exclusive)",
                apply: { config, value in
                    guard case .array(let items) = value, !items.isEmpty else {
                        throw typeError("eval.val_loss_timesteps", value, expected: "a non-empty array of numbers")
                    }
                    var out: [Double] = []
                    for item in items {
                        let t: Double
                        switch item {
                        case .float(let d): t = d
                        case .integer(let i): t = Double(i)
                        default: throw typeError("eval.val_loss_timesteps", item, expected: "numbers")
                        }
                        guard t > 0, t < 1 else {
                            throw ConfigError.invalid("eval.val_loss_timesteps", value.literal, allowed: "numbers between 0 and 1 (exclusive)")
                        }
                        out.append(t)
                    }
                    config.eval.valLossTimesteps = out
                },
                read: { "[" + $0.eval.valLossTimesteps.map(TOMLLiteral.number).joined(separator: ", ") + "]" }
            ),
        ]
    }

    // MARK: - Key builders

    static func integer(
        _ section: String, _ name: String, _ keyPath: WritableKeyPath<WanLoRAConfig, Int>, _ summary: String,
        range: ClosedRange<Int>, extra: ((Int) -> String?)? = nil
    ) -> ConfigKey {
        let path = "\(section).\(name)"
        let allowed = extra == nil ? "an integer from \(range.lowerBound) to \(range.upperBound)"
            : "an integer from \(range.lowerBound) to \(range.upperBound) of the form 4n+1 (1, 5, …, 49, …, 81)"
        return ConfigKey(
            section: section, name: name, summary: summary, allowed: allowed,
            apply: { config, value in
                guard case .integer(let i) = value else {
                    throw typeError(path, value, expected: "an integer (no quotes, no decimal point)")
                }
                guard range.contains(i) else { throw ConfigError.invalid(path, String(i), allowed: allowed) }
                if let extra, let why = extra(i) { throw ConfigError.invalid(path, String(i), allowed: allowed, why: why) }
                config[keyPath: keyPath] = i
            },
            read: { String($0[keyPath: keyPath]) }
        )
    }

    static func real(
        _ section: String, _ name: String, _ keyPath: WritableKeyPath<WanLoRAConfig, Double>, _ summary: String,
        allowed: String, valid: @escaping (Double) -> Bool
    ) -> ConfigKey {
        let path = "\(section).\(name)"
        return ConfigKey(
            section: section, name: name, summary: summary, allowed: allowed,
            apply: { config, value in
                let d: Double
                switch value {
                case .float(let f): d = f
                case .integer(let i): d = Double(i)
                default: throw typeError(path, value, expected: "a number")
                }
                guard d.isFinite, valid(d) else { throw ConfigError.invalid(path, value.literal, allowed: allowed) }
                config[keyPath: keyPath] = d
            },
            read: { TOMLLiteral.number($0[keyPath: keyPath]) }
        )
    }

    static func flag(
        _ section: String, _ name: String, _ keyPath: WritableKeyPath<WanLoRAConfig, Bool>, _ summary: String
    ) -> ConfigKey {
        let path = "\(section).\(name)"
        return ConfigKey(
            section: section, name: name, summary: summary, allowed: "true or false",
            apply: { config, value in
                guard case .boolean(let b) = value else { throw typeError(path, value, expected: "true or false (no quotes)") }
                config[keyPath: keyPath] = b
            },
            read: { $0[keyPath: keyPath] ? "true" : "false" }
        )
    }

    static func text(
        _ section: String, _ name: String, _ keyPath: WritableKeyPath<WanLoRAConfig, String>, _ summary: String,
        allowEmpty: Bool = false
    ) -> ConfigKey {
        let path = "\(section).\(name)"
        let allowed = allowEmpty ? "a string" : "a non-empty string"
        return ConfigKey(
            section: section, name: name, summary: summary, allowed: allowed,
            apply: { config, value in
                guard case .string(let s) = value else { throw typeError(path, value, expected: "a string in quotes") }
                if !allowEmpty, s.trimmingCharacters(in: .whitespaces).isEmpty {
                    throw ConfigError.invalid(path, "\"\"", allowed: allowed)
                }
                config[keyPath: keyPath] = s
            },
            read: { TOMLLiteral.string($0[keyPath: keyPath]) }
        )
    }

    static func choice<E: RawRepresentable & CaseIterable>(
        _ section: String, _ name: String, _ keyPath: WritableKeyPath<WanLoRAConfig, E>, _ summary: String
    ) -> ConfigKey where E.RawValue == String {
        let path = "\(section).\(name)"
        let allowed = "one of " + E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        return ConfigKey(
            section: section, name: name, summary: summary, allowed: allowed,
            apply: { config, value in
                guard case .string(let s) = value else { throw typeError(path, value, expected: allowed) }
                guard let e = E(rawValue: s) else { throw ConfigError.invalid(path, "\"\(s)\"", allowed: allowed) }
                config[keyPath: keyPath] = e
            },
            read: { TOMLLiteral.string($0[keyPath: keyPath].rawValue) }
        )
    }

    static func resolution(
        _ section: String, _ width: WritableKeyPath<WanLoRAConfig, Int>, _ height: WritableKeyPath<WanLoRAConfig, Int>,
        _ summary: String
    ) -> ConfigKey {
        let path = "\(section).resolution"
        let allowed = "\"WIDTHxHEIGHT\" with both sides multiples of 16 from 16 to 4096, e.g. \"1280x720\" or \"832x480\""
        return ConfigKey(
            section: section, name: "resolution", summary: summary, allowed: allowed,
            apply: { config, value in
                guard case .string(let s) = value else { throw typeError(path, value, expected: "a string like \"1280x720\"") }
                guard let r = Resolution(parsing: s) else { throw ConfigError.invalid(path, "\"\(s)\"", allowed: allowed) }
                for (side, v) in [("width", r.width), ("height", r.height)] {
                    guard (16...4096).contains(v) else {
                        throw ConfigError.invalid(path, "\"\(s)\"", allowed: allowed, why: "the \(side) \(v) is outside 16…4096")
                    }
                    // VAE stride 8 × patch 2: a side that is not a multiple of 16 has no whole patch grid.
                    guard v % 16 == 0 else {
                        throw ConfigError.invalid(path, "\"\(s)\"", allowed: allowed,
                                                  why: "the \(side) \(v) is not a multiple of 16 (VAE stride 8 × patch 2); nearest: \(v / 16 * 16) or \(v / 16 * 16 + 16)")
                    }
                }
                config[keyPath: width] = r.width
                config[keyPath: height] = r.height
            },
            read: { TOMLLiteral.string("\($0[keyPath: width])x\($0[keyPath: height])") }
        )
    }

    static func fourNPlusOne(_ frames: Int) -> String? {
        guard (frames - 1) % 4 != 0 else { return nil }
        let below = (frames - 1) / 4 * 4 + 1
        return "the VAE compresses time 4:1 after the first frame, so clips have 4n+1 frames; nearest: \(below) or \(below + 4)"
    }

    static func stringArray(_ path: String, _ value: ConfigValue) throws -> [String] {
        guard case .array(let items) = value else { throw typeError(path, value, expected: "an array of strings") }
        return try items.map { item in
            guard case .string(let s) = item else { throw typeError(path, item, expected: "strings in quotes") }
            return s
        }
    }

    static func typeError(_ path: String, _ value: ConfigValue, expected: String) -> ConfigError {
        ConfigError(
            kind: .wrongType, key: path,
            problem: "\(path) = \(value.literal) is \(value.typeName).",
            remedy: "Write \(path) as \(expected)."
        )
    }
}
