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
    public static let sections = ["run", "data", "model", "lora", "training", "cache", "hardware", "sample", "eval"]

    /// Every key, grouped by section in `sections` order.
    public static var all: [ConfigKey] {
        run + data + model + lora + training + cache + hardware + sample + eval
    }

    /// The key named `path` ("section.name"), if any.
    public static func key(_ path: String) -> ConfigKey? { all.first { $0.path == path } }

    static var run: [ConfigKey] {
        [
            text("run", "name", \.run.name,
                 "Name of the run folder (empty: the configuration file's name without .toml).", allowEmpty: true,
                 valid: runName),
            text("run", "runs_dir", \.run.runsDir, "Folder that holds one sub-folder per run."),
        ]
    }

    static var data: [ConfigKey] {
        [
            text("data", "train_manifest", \.data.trainManifest, "Prepared training manifest (CSV or JSON Lines)."),
            text("data", "val_manifest", \.data.valManifest, "Prepared validation manifest (empty: no validation split).",
                 allowEmpty: true),
            text("data", "cache_dir", \.data.cacheDir,
                 "Folder for VAE latents and UMT5 embeddings (empty: cache/WIDTHxHEIGHT-FRAMESf-TOKENSt, e.g. cache/1280x720-81f-512t).", allowEmpty: true),
            text("data", "weight_column", \.data.weightColumn,
                 "Manifest column with sampling weights (empty: every item weighs 1).", allowEmpty: true),
            text("data", "category_column", \.data.categoryColumn,
                 "Manifest column with the category, for class-balanced loss weighting (empty: none).", allowEmpty: true),
            choice("data", "source", \.data.source,
                   "Where training reads latents and text embeddings: the cache, or encoded on the fly for each drawn item (when the cache would not fit on disk; much slower, the planner says by how much)."),
        ]
    }

    static var model: [ConfigKey] {
        [
            choice("model", "architecture", \.model.architecture, "Model to fine-tune."),
            text("model", "checkpoint", \.model.checkpoint,
                 "Local folder with the weights (empty: not given yet; `plan` needs none, `cache` and `train` do).",
                 allowEmpty: true),
            choice("model", "layout", \.model.layout, "Checkpoint folder layout."),
            choice("model", "weights_dtype", \.model.weightsDtype,
                   "Frozen base weights: bf16 (exact); fp8: the blocks that stream wait in host memory as e4m3 with per-channel scales (half the host RAM and link bytes, not exact), bf16 on the GPU."),
            real("model", "boundary", \.model.boundary, "High-noise expert for t ≥ boundary·1000 (training and sampling).",
                 allowed: "a number between 0 and 1 (exclusive), e.g. 0.875", valid: { $0 > 0 && $0 < 1 }),
            integer("model", "num_train_timesteps", \.model.numTrainTimesteps,
                    "Timesteps of the training schedule (t = σ·this).", range: 1...100_000),
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
            integer("training", "text_length", \.training.textLength, "Caption tokens kept (longer captions are cut); the model reads them padded with zeros to 512, as when sampling.", range: 1...512),
            integer("training", "micro_batch", \.training.microBatch, "Samples per GPU group per forward pass.", range: 1...1024),
            integer("training", "grad_accumulation", \.training.gradAccumulation, "Micro-batches per optimizer step.", range: 1...65536),
            integer("training", "epochs", \.training.epochs, "Passes over the training set.", range: 1...10000),
            integer("training", "max_steps", \.training.maxSteps,
                    "Optimizer steps of the whole run; overrides epochs (0 = from epochs).", range: 0...100_000_000),
            real("training", "learning_rate", \.training.learningRate, "Peak learning rate.",
                 allowed: "a number greater than 0 and below 1, e.g. 1e-4", valid: { $0 > 0 && $0 < 1 }),
            real("training", "weight_decay", \.training.weightDecay, "AdamW decoupled weight decay.",
                 allowed: "a number from 0 to 1, e.g. 0.01", valid: { $0 >= 0 && $0 <= 1 }),
            integer("training", "warmup_steps", \.training.warmupSteps, "Optimizer steps of linear warm-up.", range: 0...10_000_000),
            choice("training", "schedule", \.training.schedule, "Learning-rate schedule after warm-up."),
            real("training", "max_grad_norm", \.training.maxGradNorm, "Gradient clipping norm (0 disables clipping).",
                 allowed: "a number of 0 or more, e.g. 1.0", valid: { $0 >= 0 }),
            choice("training", "optimizer", \.training.optimizer, "Optimizer of the LoRA parameters."),
            ConfigKey(
                section: "training", name: "adam_betas", summary: "AdamW β1 and β2.",
                allowed: "two numbers from 0 up to (not including) 1, e.g. [0.9, 0.999]",
                apply: { config, value in
                    let numbers = try numberArray("training.adam_betas", value)
                    guard numbers.count == 2, numbers.allSatisfy({ $0 >= 0 && $0 < 1 }) else {
                        throw ConfigError.invalid("training.adam_betas", value.literal,
                                                  allowed: "two numbers from 0 up to (not including) 1, e.g. [0.9, 0.999]")
                    }
                    config.training.adamBetas = numbers
                },
                read: { "[" + $0.training.adamBetas.map(TOMLLiteral.number).joined(separator: ", ") + "]" }
            ),
            real("training", "adam_eps", \.training.adamEps, "AdamW ε.",
                 allowed: "a number greater than 0, e.g. 1e-8", valid: { $0 > 0 }),
            choice("training", "mixed_precision", \.training.mixedPrecision,
                   "Compute dtype of the forward and backward pass (fp16: planning only, the engine trains bf16 or fp32)."),
            flag("training", "gradient_checkpointing", \.training.gradientCheckpointing,
                 "Keep only each block's input and recompute the block in backward."),
            choice("training", "residual_dtype", \.training.residualDtype, "dtype of the residual stream between blocks."),
            choice("training", "blocks", \.training.blocks,
                   "Engine block implementation: fast (attention kept, fused, activations in host memory) or diffusers."),
            choice("training", "attention", \.training.attention,
                   "Attention kernel of the fast blocks (auto: cuDNN where available; SPEC §8 measures ~580 vs ~350 TFLOP/s for FlashAttention-2 on an H100)."),
            flag("training", "keep_attention", \.training.keepAttention,
                 "Fast blocks: keep the self-attention output for backward instead of recomputing it (less time, more memory)."),
            choice("training", "activation_offload", \.training.activationOffload,
                   "Fast blocks: where checkpointed activations wait for backward (auto: host memory when the GPU would not hold them)."),
            integer("training", "ffn_chunk_tokens", \.training.ffnChunkTokens,
                    "Fast blocks: tokens the feed-forward half of a block's recompute and backward runs at a time (0 = all at once; less GPU memory, same numbers).",
                    range: 0...100_000_000),
            flag("training", "compile", \.training.compile, "Fast blocks: fuse norms, modulation and RoPE with torch.compile (GPU only)."),
            real("training", "cfg_dropout", \.training.cfgDropout, "Probability of training a sample with the empty prompt.",
                 allowed: "a number from 0 up to (not including) 1, e.g. 0.1", valid: { $0 >= 0 && $0 < 1 }),
            choice("training", "timestep_sampling", \.training.timestepSampling,
                   "Base draw u of the timestep sampler: uniform, or sigmoid(mean + std·z)."),
            real("training", "timestep_shift", \.training.timestepShift, "Shift s of the timestep sampler σ = s·u/(1+(s−1)·u).",
                 allowed: "a number greater than 0 (1 = no shift), e.g. 5.0", valid: { $0 > 0 }),
            real("training", "timestep_logit_mean", \.training.timestepLogitMean, "Mean of the logit-normal draw.",
                 allowed: "a number, e.g. 0.0", valid: { _ in true }),
            real("training", "timestep_logit_std", \.training.timestepLogitStd, "Standard deviation of the logit-normal draw.",
                 allowed: "a number greater than 0, e.g. 1.0", valid: { $0 > 0 }),
            integer("training", "seed", \.training.seed, "Random seed of sampling, noise and dropout.", range: 0...Int(Int32.max)),
            choice("training", "device", \.training.device, "Where training runs (auto: a CUDA GPU when there is one)."),
            integer("training", "logging_steps", \.training.loggingSteps, "Optimizer steps between log lines.", range: 1...10_000_000),
            flag("training", "tensorboard", \.training.tensorboard, "Also write TensorBoard scalars into the run folder."),
            integer("training", "save_steps", \.training.saveSteps,
                    "Optimizer steps between checkpoints (0 = only at the end and on interrupt).", range: 0...10_000_000),
            integer("training", "eval_steps", \.training.evalSteps,
                    "Optimizer steps between validation-loss measurements (0 = never).", range: 0...10_000_000),
            integer("training", "keep_checkpoints", \.training.keepCheckpoints, "Checkpoints kept on disk (the oldest go first).", range: 1...10000),
            choice("training", "expert", \.training.expert, "Which expert(s) get a LoRA."),
            choice("training", "expert_grouping", \.training.expertGrouping,
                   "One expert per sample's own timestep, or one expert per optimizer step."),
            choice("training", "loss_weighting", \.training.lossWeighting, "Per-sample loss weights against class imbalance."),
            real("training", "class_balanced_beta", \.training.classBalancedBeta, "β of the class-balanced weights (1−β)/(1−β^n).",
                 allowed: "a number between 0 and 1 (exclusive), e.g. 0.999", valid: { $0 > 0 && $0 < 1 }),
            real("training", "focal_gamma", \.training.focalGamma, "γ of the focal weighting (ℓ/EMA(ℓ))^γ.",
                 allowed: "a number of 0 or more, e.g. 2.0", valid: { $0 >= 0 }),
            integer("training", "overfit_samples", \.training.overfitSamples,
                    "Overfit test on the first N cached items, reporting whether the loss fell (0 = normal training).",
                    range: 0...100_000_000),
        ]
    }

    static var cache: [ConfigKey] {
        [
            choice("cache", "device", \.cache.device, "Where the VAE and UMT5 encode (auto: a CUDA GPU when there is one)."),
            integer("cache", "shard_items", \.cache.shardItems, "Items per shard file (a killed run redoes at most one).",
                    range: 1...1_000_000),
            integer("cache", "text_batch_size", \.cache.textBatchSize, "Captions per UMT5 forward pass.", range: 1...4096),
            flag("cache", "vae_tiling", \.cache.vaeTiling, "Tiled VAE encoding (less GPU memory)."),
            real("cache", "free_disk_margin_gib", \.cache.freeDiskMarginGiB,
                 "Free disk the cache must leave, GiB; the stage refuses to start otherwise.",
                 allowed: "a number of 0 or more, e.g. 10", valid: { $0 >= 0 && $0 < 1e9 }),
        ]
    }

    static var hardware: [ConfigKey] {
        [
            text("hardware", "gpu", \.hardware.gpu, "GPU model, a name from `wanlora plan --list-gpus`."),
            real("hardware", "gpu_memory_limit", \.hardware.gpuMemoryLimitGiB,
                 "GPU memory the run may use, GiB (0 = what the card has); the expert's blocks that do not fit stream from host memory.",
                 allowed: "a number of GiB, 0 (the card's own memory) or more, e.g. 24", valid: { $0 >= 0 && $0 < 1e6 }),
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
            choice("sample", "solver", \.sample.solver, "Solver of the denoising steps (euler, or Wan2.2's unipc)."),
            choice("sample", "schedule", \.sample.schedule,
                   "Timestep grid: Wan2.2's (wan) or diffusers' (diffusers_unipc, diffusers_euler)."),
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
            text("sample", "negative_prompt", \.sample.negativePrompt, "Negative prompt for CFG (default: Wan2.2's own; empty: the empty prompt).", allowEmpty: true),
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
            integer("eval", "val_loss_samples", \.eval.valLossSamples, "Validation items for the validation loss (the first N).",
                    range: 1...100_000_000),
            ConfigKey(
                section: "eval", name: "val_loss_timesteps",
                summary: "Fixed timesteps t of the validation loss, so runs compare.",
                allowed: "a non-empty array of integers from 0 to 999",
                apply: { config, value in
                    guard case .array(let items) = value, !items.isEmpty else {
                        throw typeError("eval.val_loss_timesteps", value, expected: "a non-empty array of integers")
                    }
                    var out: [Int] = []
                    for item in items {
                        guard case .integer(let t) = item else {
                            throw typeError("eval.val_loss_timesteps", item, expected: "integers from 0 to 999 (t, not σ)")
                        }
                        guard (0...999).contains(t) else {
                            throw ConfigError.invalid("eval.val_loss_timesteps", value.literal, allowed: "integers from 0 to 999")
                        }
                        out.append(t)
                    }
                    config.eval.valLossTimesteps = out
                },
                read: { "[" + $0.eval.valLossTimesteps.map(String.init).joined(separator: ", ") + "]" }
            ),
            integer("eval", "seed", \.eval.seed, "Seed of the fixed validation noise.", range: 0...Int(Int32.max)),
            text("eval", "weights_dir", \.eval.weightsDir, "Folder of the metric networks' files under their standard names (docs/evaluate.md)."),
            text("eval", "i3d_weights", \.eval.i3dWeights, "FVD's Kinetics-400 I3D (empty: weights_dir/i3d_pretrained_400.pt).", allowEmpty: true),
            text("eval", "inception_weights", \.eval.inceptionWeights, "Inception-v3 for IS (empty: weights_dir/inception_v3_google-0cc3c7bd.pth).", allowEmpty: true),
            choice("eval", "lpips_net", \.eval.lpipsNet, "LPIPS backbone."),
            text("eval", "lpips_weights", \.eval.lpipsWeights, "LPIPS v0.1 linear layers (empty: weights_dir/lpips/v0.1/<net>.pth).", allowEmpty: true),
            text("eval", "lpips_backbone_weights", \.eval.lpipsBackboneWeights, "LPIPS backbone, torchvision ImageNet weights (empty: the standard file in weights_dir).", allowEmpty: true),
            text("eval", "clip_image_model", \.eval.clipImageModel, "CLIP image encoder folder (empty: weights_dir/clip-vit-base-patch32).", allowEmpty: true),
            text("eval", "clip_text_model", \.eval.clipTextModel, "Multilingual text encoder folder (empty: weights_dir/clip-ViT-B-32-multilingual-v1).", allowEmpty: true),
            integer("eval", "fvd_frames", \.eval.fvdFrames, "Frames per clip fed to I3D for FVD (consecutive).", range: 9...1025),
            integer("eval", "fvd_min_samples", \.eval.fvdMinSamples, "Clips per set below which FVD is flagged as unstable.", range: 2...1_000_000),
            integer("eval", "frames_per_video", \.eval.framesPerVideo, "Frames per video, evenly spaced, for IS, CLIP score and LPIPS.", range: 1...1025),
            integer("eval", "reference_per_category", \.eval.referencePerCategory, "Reference clips per category, a seeded draw (0 = all).", range: 0...10_000_000),
            integer("eval", "is_splits", \.eval.isSplits, "Splits of the Inception Score.", range: 1...1000),
            integer("eval", "lpips_size", \.eval.lpipsSize, "Shortest side of the frames LPIPS compares, pixels.", range: 32...4096),
            integer("eval", "lpips_max_pairs", \.eval.lpipsMaxPairs, "Pairs of generated videos per category for LPIPS diversity.", range: 1...1_000_000),
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
        allowEmpty: Bool = false, valid: (allowed: String, why: (String) -> String?)? = nil
    ) -> ConfigKey {
        let path = "\(section).\(name)"
        let allowed = valid?.allowed ?? (allowEmpty ? "a string" : "a non-empty string")
        return ConfigKey(
            section: section, name: name, summary: summary, allowed: allowed,
            apply: { config, value in
                guard case .string(let s) = value else { throw typeError(path, value, expected: "a string in quotes") }
                if !allowEmpty, s.trimmingCharacters(in: .whitespaces).isEmpty {
                    throw ConfigError.invalid(path, "\"\"", allowed: allowed)
                }
                if let valid, let why = valid.why(s) {
                    throw ConfigError.invalid(path, TOMLLiteral.string(s), allowed: allowed, why: why)
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

    /// A run name becomes a folder name: one path component, no leading dot.
    static var runName: (allowed: String, why: (String) -> String?) { (
        "a folder name (letters, digits, \"-\", \"_\", \".\"; no \"/\"), or \"\" for the configuration file's name",
        { name in
            if name.isEmpty { return nil }
            if name.contains("/") || name.contains("\\") { return "a run name is one folder name, without slashes" }
            if name.hasPrefix(".") { return "a run name cannot start with a dot" }
            if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == " " }) {
                return "a run name cannot contain spaces or control characters"
            }
            return nil
        }
    ) }

    static func numberArray(_ path: String, _ value: ConfigValue) throws -> [Double] {
        guard case .array(let items) = value else { throw typeError(path, value, expected: "an array of numbers") }
        return try items.map { item in
            switch item {
            case .float(let d) where d.isFinite: return d
            case .integer(let i): return Double(i)
            default: throw typeError(path, item, expected: "numbers")
            }
        }
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
