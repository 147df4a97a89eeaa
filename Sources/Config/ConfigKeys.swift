import Foundation

// The registry: every key of the configuration file, one declaration each, in file order.
//
// A declaration is `let swiftName = Key("toml_name", value, rule, a100:, v100:, "summary")`: the
// value of the default preset (h100), where the a100 and v100 presets differ, what is allowed, and
// one line of documentation. Code reads it as `config.section.swiftName`, typed. Adding a key is
// one line here; docs/config.md describes the steps.

public struct RunKeys: KeySet {
    public static let section = "run"
    public static let keys = RunKeys()
    public let name = Key(
        "name", "", .runName,
        "Name of the run folder (empty: the configuration file's name without .toml).")
    public let runsDir = Key("runs_dir", "runs", .path, "Folder that holds one sub-folder per run.")
}

public struct DataKeys: KeySet {
    public static let section = "data"
    public static let keys = DataKeys()
    public let trainManifest = Key(
        "train_manifest", "prepared/train.csv", .path,
        "Prepared training manifest (CSV or JSON Lines).")
    public let valManifest = Key(
        "val_manifest", "prepared/val.csv", .optionalPath,
        "Prepared validation manifest (empty: no validation split).")
    // Empty: one folder per clip shape, so that changing the shape never meets a cache the engine must refuse.
    public let cacheDir = Key(
        "cache_dir", "", .optionalPath,
        "Folder for VAE latents and UMT5 embeddings (empty: cache/WIDTHxHEIGHT-FRAMESf-TOKENSt, "
            + "e.g. cache/1280x720-81f-512t).")
    public let weightColumn = Key(
        "weight_column", "weight", .any,
        "Manifest column with sampling weights (empty: every item weighs 1).")
    public let categoryColumn = Key(
        "category_column", "category", .any,
        "Manifest column with the category, for class-balanced loss weighting (empty: none).")
    public let source = Key(
        "source", TrainingDataSource.cache, .any,
        "Where training reads latents and text embeddings: the cache, or encoded on the fly for "
            + "each drawn item (when the cache would not fit on disk; much slower, the planner says "
            + "by how much).")
}

public struct ModelKeys: KeySet {
    public static let section = "model"
    public static let keys = ModelKeys()
    public let architecture = Key("architecture", ModelArchitecture.wan22T2VA14B, .any, "Model to fine-tune.")
    public let checkpoint = Key(
        "checkpoint", "", .modelSource,
        "The weights: a folder (official or diffusers layout) or a Hugging Face repo id such as "
            + "Wan-AI/Wan2.2-T2V-A14B-Diffusers, found offline in the local hub cache (empty: not given yet; "
            + "`plan` needs none, `cache` and `train` do).")
    public let highNoiseFile = Key(
        "high_noise_file", "", .optionalPath,
        "Single-file checkpoint of the high-noise expert (.safetensors, official/ComfyUI key names, e.g. "
            + "wan2.2_t2v_high_noise_14B_fp16.safetensors); replaces model.checkpoint's (empty: none).")
    public let lowNoiseFile = Key(
        "low_noise_file", "", .optionalPath,
        "Single-file checkpoint of the low-noise expert, as model.high_noise_file (empty: none).")
    public let layout = Key("layout", CheckpointLayout.auto, .any, "Checkpoint folder layout.")
    public let weightsDtype = Key(
        "weights_dtype", WeightsDType.bf16, .any,
        "Frozen base weights: bf16 (exact); fp8: the blocks that stream wait in host memory "
            + "as e4m3 with per-channel scales (half the host RAM and link bytes, not "
            + "exact), bf16 on the GPU.")
    public let boundary = Key(
        "boundary", 0.875,
        .number("a number between 0 and 1 (exclusive), e.g. 0.875") {
            $0 > 0 && $0 < 1
        }, "High-noise expert for t ≥ boundary·1000 (training and sampling).")
    public let numTrainTimesteps = Key(
        "num_train_timesteps", 1000, .range(1...100_000),
        "Timesteps of the training schedule (t = σ·this).")
}

public struct LoRAKeys: KeySet {
    public static let section = "lora"
    public static let keys = LoRAKeys()
    public let rank = Key("rank", 16, .range(1...1024), a100: 32, "LoRA rank r.")
    public let alpha = Key(
        "alpha", 16.0, .number("a number greater than 0, usually equal to the rank") { $0 > 0 },
        a100: 32, "LoRA alpha; the update is scaled by alpha / rank.")
    public let dropout = Key(
        "dropout", 0.05,
        .number("a number from 0 up to (not including) 1, e.g. 0.05") {
            $0 >= 0 && $0 < 1
        }, "Dropout on the LoRA input.")
    public let targets = Key(
        "targets", ["to_q", "to_k", "to_v", "to_out.0"], .moduleNames,
        "Module names to adapt, matched as peft does (equal, or ending in \".\" + name).")
}

public struct TrainingKeys: KeySet {
    public static let section = "training"
    public static let keys = TrainingKeys()
    public let frames = Key(
        "frames", 81, .frames(1...1025), v100: 49, "Frames per training clip (4n+1: 81, 49, 33, 1 …).")
    public let resolution = Key(
        "resolution", Resolution(width: 1280, height: 720), .videoSize,
        "Training resolution, width x height.")
    public let fps = Key("fps", 16, .range(1...120), "Frame rate of the training clips.")
    public let textLength = Key(
        "text_length", 512, .range(1...512), v100: 256,
        "Caption tokens kept (longer captions are cut); the model reads them padded with "
            + "zeros to 512, as when sampling.")
    public let microBatch = Key("micro_batch", 1, .range(1...1024), "Samples per GPU group per forward pass.")
    public let gradAccumulation = Key(
        "grad_accumulation", 8, .range(1...65536), a100: 4, v100: 16,
        "Micro-batches per optimizer step.")
    public let epochs = Key("epochs", 3, .range(1...10000), "Passes over the training set.")
    public let maxSteps = Key(
        "max_steps", 0, .range(0...100_000_000),
        "Optimizer steps of the whole run; overrides epochs (0 = from epochs).")
    public let learningRate = Key(
        "learning_rate", 1e-4,
        .number("a number greater than 0 and below 1, e.g. 1e-4") {
            $0 > 0 && $0 < 1
        }, "Peak learning rate.")
    public let weightDecay = Key(
        "weight_decay", 0.01, .number("a number from 0 to 1, e.g. 0.01") { $0 >= 0 && $0 <= 1 },
        "AdamW decoupled weight decay.")
    public let warmupSteps = Key("warmup_steps", 100, .range(0...10_000_000), "Optimizer steps of linear warm-up.")
    public let schedule = Key("schedule", LearningRateSchedule.cosine, .any, "Learning-rate schedule after warm-up.")
    public let maxGradNorm = Key(
        "max_grad_norm", 1.0, .number("a number of 0 or more, e.g. 1.0") { $0 >= 0 },
        "Gradient clipping norm (0 disables clipping).")
    public let optimizer = Key(
        "optimizer", Optimizer.adamw, .any, a100: .adamw8bit, v100: .adamw8bit,
        "Optimizer of the LoRA parameters.")
    public let adamBetas = Key("adam_betas", [0.9, 0.999], .betas, "AdamW β1 and β2.")
    public let adamEps = Key("adam_eps", 1e-8, .number("a number greater than 0, e.g. 1e-8") { $0 > 0 }, "AdamW ε.")
    public let mixedPrecision = Key(
        "mixed_precision", MixedPrecision.bf16, .any,
        "Compute dtype of the forward and backward pass (fp16: planning only, the engine "
            + "trains bf16 or fp32).")
    public let gradientCheckpointing = Key(
        "gradient_checkpointing", true, .any,
        "Keep only each block's input and recompute the block in backward.")
    public let residualDtype = Key(
        "residual_dtype", ResidualDType.bf16, .any, "dtype of the residual stream between blocks.")
    public let blocks = Key(
        "blocks", BlockImplementation.fast, .any,
        "Engine block implementation: fast (attention kept, fused, activations in host memory) "
            + "or diffusers.")
    public let attention = Key(
        "attention", AttentionKernel.auto, .any,
        "Attention kernel of the fast blocks (auto: cuDNN where available, SPEC §8 measures ~580 vs "
            + "~350 TFLOP/s for FlashAttention-2 on an H100; fa3: FlashAttention-3, bench/build_fa3.sh).")
    public let keepAttention = Key(
        "keep_attention", true, .any,
        "Fast blocks: keep the self-attention output for backward instead of recomputing "
            + "it (less time, more memory).")
    public let activationOffload = Key(
        "activation_offload", ActivationOffload.auto, .any,
        "Fast blocks: where checkpointed activations wait for backward (auto: host "
            + "memory when the GPU would not hold them).")
    public let ffnChunkTokens = Key(
        "ffn_chunk_tokens", 0, .range(0...100_000_000),
        "Fast blocks: tokens the feed-forward half of a block's recompute and backward "
            + "runs at a time (0 = all at once; less GPU memory, same numbers).")
    public let keepLinearBlocks = Key(
        "keep_linear_blocks", 0, .range(0...1000),
        "Fast blocks: how many of the last blocks keep their six dim x dim linear outputs for "
            + "backward (skipping those products in the recompute; 6 activations a block more).")
    public let compile = Key(
        "compile", true, .any,
        "Fast blocks: fuse norms, modulation and RoPE with torch.compile (GPU only).")
    public let cfgDropout = Key(
        "cfg_dropout", 0.1,
        .number("a number from 0 up to (not including) 1, e.g. 0.1") {
            $0 >= 0 && $0 < 1
        }, "Probability of training a sample with the empty prompt.")
    public let timestepSampling = Key(
        "timestep_sampling", TimestepSampling.uniform, .any,
        "Base draw u of the timestep sampler: uniform, or sigmoid(mean + std·z).")
    // DiffSynth-Studio's Wan2.2 A14B recipe splits the experts at 0.417 of the uniform sampler,
    // which is where shift 5 puts t = 875.
    public let timestepShift = Key(
        "timestep_shift", 5.0,
        .number("a number greater than 0 (1 = no shift), e.g. 5.0") {
            $0 > 0
        }, "Shift s of the timestep sampler σ = s·u/(1+(s−1)·u).")
    public let timestepLogitMean = Key(
        "timestep_logit_mean", 0.0, .number("a number, e.g. 0.0") { _ in true },
        "Mean of the logit-normal draw.")
    public let timestepLogitStd = Key(
        "timestep_logit_std", 1.0, .number("a number greater than 0, e.g. 1.0") { $0 > 0 },
        "Standard deviation of the logit-normal draw.")
    public let seed = Key("seed", 42, .range(0...Int(Int32.max)), "Random seed of sampling, noise and dropout.")
    public let device = Key(
        "device", ComputeDevice.auto, .any, "Where training runs (auto: a CUDA GPU when there is one).")
    public let loggingSteps = Key("logging_steps", 10, .range(1...10_000_000), "Optimizer steps between log lines.")
    public let tensorboard = Key("tensorboard", false, .any, "Also write TensorBoard scalars into the run folder.")
    public let mlflowTrackingUri = Key(
        "mlflow_tracking_uri", "", .any,
        "Also log the metrics to this MLflow tracking store (file:mlruns: a file store in runs_dir; empty: off).")
    public let saveSteps = Key(
        "save_steps", 500, .range(0...10_000_000),
        "Optimizer steps between checkpoints (0 = only at the end and on interrupt).")
    public let evalSteps = Key(
        "eval_steps", 500, .range(0...10_000_000),
        "Optimizer steps between validation-loss measurements (0 = never).")
    public let keepCheckpoints = Key(
        "keep_checkpoints", 2, .range(1...10000),
        "Checkpoints kept on disk (the oldest go first).")
    public let onNonfinite = Key(
        "on_nonfinite", NonFiniteAction.stop, .any,
        "A NaN or infinite loss: stop the run, skip that optimizer step, or roll back to the "
            + "last checkpoint.")
    public let rollbackLrFactor = Key(
        "rollback_lr_factor", 0.5,
        .number("a number greater than 0 and at most 1, e.g. 0.5") { $0 > 0 && $0 <= 1 },
        "on_nonfinite = \"rollback\": each rollback multiplies the learning rate by this factor.")
    // An 81-frame step of the 14B expert and its checkpoint fit in two minutes on an H100.
    public let stopGraceSeconds = Key(
        "stop_grace_seconds", 120, .range(1...86_400),
        "Seconds a stop signal (SIGTERM, SIGUSR1) leaves for the step and its checkpoint "
            + "before the ranks are killed.")
    public let expert = Key("expert", ExpertSelection.both, .any, "Which expert(s) get a LoRA.")
    // One expert per step: the same joint distribution as routing each sample, and the idle expert
    // can wait in host memory instead of being swapped per sample.
    public let expertGrouping = Key(
        "expert_grouping", ExpertGrouping.step, .any,
        "One expert per sample's own timestep, or one expert per optimizer step.")
    public let lossWeighting = Key(
        "loss_weighting", LossWeighting.none, .any,
        "Per-sample loss weights against class imbalance.")
    public let classBalancedBeta = Key(
        "class_balanced_beta", 0.999,
        .number("a number between 0 and 1 (exclusive), e.g. 0.999") { $0 > 0 && $0 < 1 },
        "β of the class-balanced weights (1−β)/(1−β^n).")
    public let focalGamma = Key(
        "focal_gamma", 2.0, .number("a number of 0 or more, e.g. 2.0") { $0 >= 0 },
        "γ of the focal weighting (ℓ/EMA(ℓ))^γ.")
    public let overfitSamples = Key(
        "overfit_samples", 0, .range(0...100_000_000),
        "Overfit test on the first N cached items, reporting whether the loss fell "
            + "(0 = normal training).")
}

public struct CacheKeys: KeySet {
    public static let section = "cache"
    public static let keys = CacheKeys()
    public let device = Key(
        "device", ComputeDevice.auto, .any,
        "Where the VAE and UMT5 encode (auto: a CUDA GPU when there is one).")
    public let shardItems = Key(
        "shard_items", 256, .range(1...1_000_000),
        "Items per shard file (a killed run redoes at most one).")
    public let textBatchSize = Key("text_batch_size", 8, .range(1...4096), "Captions per UMT5 forward pass.")
    // Tiling costs little time and keeps the encoder's activations small on every card.
    public let vaeTiling = Key("vae_tiling", true, .any, "Tiled VAE encoding (less GPU memory).")
    public let freeDiskMarginGiB = Key(
        "free_disk_margin_gib", 10.0,
        .number("a number of 0 or more, e.g. 10") { $0 >= 0 && $0 < 1e9 },
        "Free disk the cache must leave, GiB; the stage refuses to start otherwise.")
}

public struct HardwareKeys: KeySet {
    public static let section = "hardware"
    public static let keys = HardwareKeys()
    public let gpu = Key(
        "gpu", "H100", .nonEmpty, a100: "A100-80GB", v100: "V100-32GB",
        "GPU model, a name from `wanlora plan --list-gpus`.")
    public let gpuMemoryLimit = Key(
        "gpu_memory_limit", 0.0,
        .number("a number of GiB, 0 or more, e.g. 60") {
            $0 >= 0 && $0 < 1e6
        },
        "GPU memory each engine process may allocate, GiB (0: what the card has); the expert's blocks that do not "
            + "fit stream from host memory (docs/streaming.md).")
    public let gpusPerNode = Key(
        "gpus_per_node", 8, .range(1...64), v100: 2, "GPUs per node (torchrun --nproc-per-node).")
    public let nodes = Key("nodes", 1, .range(1...4096), "Nodes (torchrun --nnodes).")
    public let ulyssesDegree = Key(
        "ulysses_degree", 2, .range(1...64),
        "GPUs that share one sample's tokens (Ulysses sequence parallelism); 1 = off.")
    public let fsdp = Key("fsdp", true, .any, "Shard the frozen expert weights over all GPUs (FSDP).")
    public let t5 = Key(
        "t5", EncoderPlacement.cached, .any, a100: .offload, v100: .offload,
        "Where the UMT5 text encoder lives during training.")
    public let vae = Key(
        "vae", EncoderPlacement.cached, .any, a100: .offload, v100: .offload,
        "Where the VAE lives during training.")
    public let inactiveExpert = Key(
        "inactive_expert", ExpertPlacement.resident, .any, a100: .offload, v100: .offload,
        "Where the expert the current sample does not use waits (expert = both).")
}

public struct SampleKeys: KeySet {
    public static let section = "sample"
    public static let keys = SampleKeys()
    public let solver = Key(
        "solver", SampleSolver.euler, .any,
        "Solver of the denoising steps (euler, or Wan2.2's unipc).")
    public let schedule = Key(
        "schedule", SampleSchedule.wan, .any,
        "Timestep grid: Wan2.2's (wan) or diffusers' (diffusers_unipc, diffusers_euler).")
    public let steps = Key("steps", 40, .range(1...1000), "Denoising steps.")
    public let shift = Key(
        "shift", 12.0, .number("a number greater than 0, e.g. 12.0") { $0 > 0 },
        "Flow-matching timestep shift of the sampler.")
    public let guidanceHigh = Key(
        "guidance_high", 4.0, .number("a number of 1 or more, e.g. 4.0") { $0 >= 1 },
        "CFG scale on the high-noise expert (1 = no guidance).")
    public let guidanceLow = Key(
        "guidance_low", 3.0, .number("a number of 1 or more, e.g. 3.0") { $0 >= 1 },
        "CFG scale on the low-noise expert (1 = no guidance).")
    public let frames = Key("frames", 81, .frames(1...1025), v100: 49, "Frames per generated video (4n+1).")
    public let resolution = Key(
        "resolution", Resolution(width: 1280, height: 720), .videoSize,
        "Resolution of generated videos, width x height.")
    public let fps = Key("fps", 16, .range(1...120), "Frame rate of generated videos.")
    public let seed = Key("seed", 42, .range(0...Int(Int32.max)), "Seed of the initial noise.")
    public let attention = Key(
        "attention", AttentionKernel.auto, .any,
        "Attention kernel of the sampling forward (auto: cuDNN where available; fa3: FlashAttention-3 on "
            + "Hopper, bench/build_fa3.sh). Videos of every kernel equal up to bf16 rounding.")
    public let negativePrompt = Key(
        "negative_prompt", WanLoRAConfig.officialNegativePrompt, .any,
        "Negative prompt for CFG (default: Wan2.2's own; empty: the empty prompt).")
}

public struct EvalKeys: KeySet {
    public static let section = "eval"
    public static let keys = EvalKeys()
    public let metrics = Key(
        "metrics", [EvalMetric.fvd, .is, .lpips, .clip, .temporal], .any,
        "Metrics `wanlora evaluate` computes.")
    public let samplesPerCategory = Key("samples_per_category", 4, .range(0...10000), "Videos generated per category.")
    // 64 items × 6 timesteps is already 384 forward passes of a 14B expert per evaluation (about
    // 1.3 h at 81 frames on one H100): enough to compare runs.
    public let valLossSamples = Key(
        "val_loss_samples", 64, .range(1...100_000_000),
        "Validation items for the validation loss (the first N).")
    // Two of them (900, 950) lie in the high-noise expert's range t ≥ 875.
    public let valLossTimesteps = Key(
        "val_loss_timesteps", [100, 300, 500, 700, 900, 950], .timesteps,
        "Fixed timesteps t of the validation loss, so runs compare.")
    public let seed = Key("seed", 1234, .range(0...Int(Int32.max)), "Seed of the fixed validation noise.")
    public let weightsDir = Key(
        "weights_dir", "weights", .path,
        "Folder of the metric networks' files under their standard names (docs/evaluate.md).")
    public let i3dWeights = Key(
        "i3d_weights", "", .optionalPath,
        "FVD's Kinetics-400 I3D (empty: weights_dir/i3d_pretrained_400.pt).")
    public let inceptionWeights = Key(
        "inception_weights", "", .optionalPath,
        "Inception-v3 for IS (empty: weights_dir/inception_v3_google-0cc3c7bd.pth).")
    public let lpipsNet = Key("lpips_net", LPIPSNet.alex, .any, "LPIPS backbone.")
    public let lpipsWeights = Key(
        "lpips_weights", "", .optionalPath,
        "LPIPS v0.1 linear layers (empty: weights_dir/lpips/v0.1/<net>.pth).")
    public let lpipsBackboneWeights = Key(
        "lpips_backbone_weights", "", .optionalPath,
        "LPIPS backbone, torchvision ImageNet weights (empty: the standard file in "
            + "weights_dir).")
    public let clipImageModel = Key(
        "clip_image_model", "", .optionalPath,
        "CLIP image encoder folder (empty: weights_dir/clip-vit-base-patch32).")
    public let clipTextModel = Key(
        "clip_text_model", "", .optionalPath,
        "Multilingual text encoder folder (empty: weights_dir/clip-ViT-B-32-multilingual-v1).")
    public let fvdFrames = Key("fvd_frames", 16, .range(9...1025), "Frames per clip fed to I3D for FVD (consecutive).")
    public let fvdMinSamples = Key(
        "fvd_min_samples", 256, .range(2...1_000_000),
        "Clips per set below which FVD is flagged as unstable.")
    public let framesPerVideo = Key(
        "frames_per_video", 8, .range(1...1025),
        "Frames per video, evenly spaced, for IS, CLIP score and LPIPS.")
    public let referencePerCategory = Key(
        "reference_per_category", 256, .range(0...10_000_000),
        "Reference clips per category, a seeded draw (0 = all).")
    public let isSplits = Key("is_splits", 10, .range(1...1000), "Splits of the Inception Score.")
    public let lpipsSize = Key(
        "lpips_size", 256, .range(32...4096), "Shortest side of the frames LPIPS compares, pixels.")
    public let lpipsMaxPairs = Key(
        "lpips_max_pairs", 64, .range(1...1_000_000),
        "Pairs of generated videos per category for LPIPS diversity.")
}

/// `wanlora analyze --config FILE` (and curate's template flag): the Korean morpheme analysis. The other
/// commands ignore this section.
public struct AnalyzeKeys: KeySet {
    public static let section = "analyze"
    public static let keys = AnalyzeKeys()
    public let morphemes = Key(
        "morphemes", false, .any, "Korean morpheme statistics with Kiwi beside the space-split ones (`--morphemes`).")
    // Measured on the demo captions (docs/BENCHMARKS.md): word is about twice as fast, caption exact.
    public let morphemeUnit = Key(
        "morpheme_unit", MorphemeUnit.word, .any,
        "word: each distinct word analysed alone (faster, approximate: no context across words); caption: "
            + "each caption whole (exact).")
    public let templateWords = Key(
        "template_words", 5, .range(1...1000), "A caption's template key: the set of its first N content words.")
    public let templateThreshold = Key(
        "template_threshold", 10, .range(1...100_000_000),
        "Captions whose key more than this many captions of the dataset share are template captions.")
    public let topWords = Key("top_words", 20, .range(0...100_000), "How many of the most frequent words to list.")
}

// MARK: - Rules of the array keys

extension Rule where Value == [String] {
    static var moduleNames: Rule {
        Rule("a non-empty array of distinct module names, e.g. [\"to_q\", \"to_k\", \"to_v\", \"to_out.0\"]") { names in
            if names.isEmpty { return "at least one module name is needed" }
            if let blank = names.first(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
                return "\(TOMLLiteral.string(blank)) is not a module name"
            }
            var seen = Set<String>()
            for name in names where !seen.insert(name).inserted { return "\"\(name)\" appears twice" }
            return nil
        }
    }
}

extension Rule where Value == [Double] {
    static var betas: Rule {
        .when("two numbers from 0 up to (not including) 1, e.g. [0.9, 0.999]") { b in
            b.count == 2 && b.allSatisfy { $0.isFinite && $0 >= 0 && $0 < 1 }
        }
    }
}

extension Rule where Value == [Int] {
    static var timesteps: Rule {
        .when("a non-empty array of integers from 0 to 999") { t in
            !t.isEmpty && t.allSatisfy { (0...999).contains($0) }
        }
    }
}

// MARK: - The whole registry

/// One key of the registry with its section, for the code that walks every key.
public struct ConfigKeyEntry: Sendable {
    public let section: String
    public let key: any AnyConfigKey
    public var name: String { key.name }
    /// "section.name", as the TOML file, config.resolved.json and every message spell it.
    public var path: String { "\(section).\(key.name)" }
    public var summary: String { key.summary }
    public var allowed: String { key.allowed }
    /// True for keys that name a file or folder (made absolute in config.resolved.json).
    public var isPath: Bool { key.schemaType["type"] == .string("path") }
    /// True for keys that name a folder or a Hugging Face repo id (a repo id stays as written).
    public var isModelSource: Bool { key.schemaType["type"] == .string("model_source") }

    /// The key's value in `config`.
    public func value(in config: WanLoRAConfig) -> ConfigValue { config[section: section][key.name]! }

    /// The key's value in `config`, spelled as TOML.
    public func tomlValue(in config: WanLoRAConfig) -> String { value(in: config).literal }
}

/// The registry of every key the configuration file may hold, in file order.
public enum ConfigKeys {
    /// Section names in the order a file lists them.
    public static let sections = [
        RunKeys.section, DataKeys.section, ModelKeys.section, LoRAKeys.section, TrainingKeys.section,
        CacheKeys.section, HardwareKeys.section, SampleKeys.section, EvalKeys.section, AnalyzeKeys.section,
    ]

    /// Every key, grouped by section in `sections` order.
    public static let all: [ConfigKeyEntry] = {
        let lists: [(String, [any AnyConfigKey])] = [
            (RunKeys.section, RunKeys.list), (DataKeys.section, DataKeys.list), (ModelKeys.section, ModelKeys.list),
            (LoRAKeys.section, LoRAKeys.list), (TrainingKeys.section, TrainingKeys.list),
            (CacheKeys.section, CacheKeys.list), (HardwareKeys.section, HardwareKeys.list),
            (SampleKeys.section, SampleKeys.list), (EvalKeys.section, EvalKeys.list),
            (AnalyzeKeys.section, AnalyzeKeys.list),
        ]
        return lists.flatMap { section, keys in keys.map { ConfigKeyEntry(section: section, key: $0) } }
    }()

    /// The key named `path` ("section.name"), if any.
    public static func key(_ path: String) -> ConfigKeyEntry? { all.first { $0.path == path } }
}
