import Foundation

/// The whole configuration of a wanlora run, one value per key of the TOML file.
///
/// Every command that needs settings (plan, cache, train, sample, evaluate) reads this one
/// type. Its keys, their defaults and rules are declared once, in the registry (ConfigKeys.swift);
/// each section reads them as typed properties (`config.training.frames`). The TOML file and
/// `config.resolved.json` use the same section and key names.
public struct WanLoRAConfig: Sendable, Equatable {
    /// The preset this configuration started from (`a100`, `v100`, `h100`).
    public var preset: Preset
    public var run: RunSettings
    public var data: DataSettings
    public var model: ModelSettings
    public var lora: LoRASettings
    public var training: TrainingSettings
    public var cache: CacheSettings
    public var hardware: HardwareSettings
    public var sample: SampleSettings
    public var eval: EvalSettings
    public var analyze: AnalyzeSettings

    /// Every key as `preset` sets it.
    public init(preset: Preset) {
        self.preset = preset
        run = .init(preset: preset)
        data = .init(preset: preset)
        model = .init(preset: preset)
        lora = .init(preset: preset)
        training = .init(preset: preset)
        cache = .init(preset: preset)
        hardware = .init(preset: preset)
        sample = .init(preset: preset)
        eval = .init(preset: preset)
        analyze = .init(preset: preset)
    }

    /// The values of the section named `section` (one of `ConfigKeys.sections`), by TOML key name.
    subscript(section section: String) -> [String: ConfigValue] {
        get {
            switch section {
            case RunKeys.section: run.values
            case DataKeys.section: data.values
            case ModelKeys.section: model.values
            case LoRAKeys.section: lora.values
            case TrainingKeys.section: training.values
            case CacheKeys.section: cache.values
            case HardwareKeys.section: hardware.values
            case SampleKeys.section: sample.values
            case EvalKeys.section: eval.values
            case AnalyzeKeys.section: analyze.values
            default: preconditionFailure("no section \(section)")
            }
        }
        set {
            switch section {
            case RunKeys.section: run.values = newValue
            case DataKeys.section: data.values = newValue
            case ModelKeys.section: model.values = newValue
            case LoRAKeys.section: lora.values = newValue
            case TrainingKeys.section: training.values = newValue
            case CacheKeys.section: cache.values = newValue
            case HardwareKeys.section: hardware.values = newValue
            case SampleKeys.section: sample.values = newValue
            case EvalKeys.section: eval.values = newValue
            case AnalyzeKeys.section: analyze.values = newValue
            default: preconditionFailure("no section \(section)")
            }
        }
    }
}

/// Which run folder a `cache` or `train` writes into: `runs_dir/name`.
public typealias RunSettings = ConfigSection<RunKeys>
/// Where the stages read and write their files (relative paths: from the configuration file's folder).
public typealias DataSettings = ConfigSection<DataKeys>
/// Which model is trained and where its weights are.
public typealias ModelSettings = ConfigSection<ModelKeys>
/// The LoRA adapters.
public typealias LoRASettings = ConfigSection<LoRAKeys>
/// The optimisation itself.
public typealias TrainingSettings = ConfigSection<TrainingKeys>
/// How `wanlora cache` encodes (VAE latents and UMT5 embeddings).
public typealias CacheSettings = ConfigSection<CacheKeys>
/// The machines the run uses.
public typealias HardwareSettings = ConfigSection<HardwareKeys>
/// Inference settings (the Wan2.2 A14B model card values).
public typealias SampleSettings = ConfigSection<SampleKeys>
/// Evaluation settings (docs/evaluate.md).
public typealias EvalSettings = ConfigSection<EvalKeys>
/// `wanlora analyze`'s Korean morpheme analysis.
public typealias AnalyzeSettings = ConfigSection<AnalyzeKeys>

extension ConfigSection where Keys == DataKeys {
    /// `cache_dir`, or the folder derived from the clip shape when it is empty
    /// (`cache/<W>x<H>-<F>f-<L>t`: the engine refuses a cache made with other settings).
    public func cacheFolder(_ training: TrainingSettings) -> String {
        self.cacheDir.isEmpty
            ? "cache/\(training.width)x\(training.height)-\(training.frames)f-\(training.textLength)t" : self.cacheDir
    }
}

extension ConfigSection where Keys == TrainingKeys {
    public var width: Int {
        get { self.resolution.width }
        set { self.resolution.width = newValue }
    }
    public var height: Int {
        get { self.resolution.height }
        set { self.resolution.height = newValue }
    }
}

extension ConfigSection where Keys == SampleKeys {
    public var width: Int {
        get { self.resolution.width }
        set { self.resolution.width = newValue }
    }
    public var height: Int {
        get { self.resolution.height }
        set { self.resolution.height = newValue }
    }
}

extension ConfigSection where Keys == HardwareKeys {
    /// All GPUs of the run.
    public var worldSize: Int { self.gpusPerNode * self.nodes }
    /// Independent samples processed at once: the world divided into Ulysses groups.
    public var dataParallelSize: Int { worldSize / max(self.ulyssesDegree, 1) }
}

/// Backbone of the LPIPS metric.
/// What Kiwi analyses at once: each distinct space-separated word alone (fast, without context across words),
/// or each caption whole (exact).
public enum MorphemeUnit: String, Sendable, Codable, CaseIterable, ConfigChoice {
    case word
    case caption
}

public enum LPIPSNet: String, Sendable, Codable, CaseIterable, ConfigChoice {
    case alex
    case vgg
}

/// A width × height pair, written "1280x720" (or with ×).
public struct Resolution: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var width: Int
    public var height: Int
    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    /// Parses "1280x720", "1280X720" or "1280×720"; nil for anything else.
    public init?(parsing text: String) {
        let separators: Set<Character> = ["x", "X", "×"]
        let parts = text.trimmingCharacters(in: .whitespaces).split(whereSeparator: { separators.contains($0) })
        guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]) else { return nil }
        self.init(width: w, height: h)
    }

    public var description: String { "\(width)x\(height)" }
}

// MARK: - Enumerations (the raw value is what the TOML and JSON files hold)

/// A starting configuration: every key's value in the registry, `a100:`/`v100:` where those differ.
public enum Preset: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// SPEC §6, the report's A100 setting: 8 GPUs, rank 32, 81 frames, 512 tokens.
    case a100
    /// SPEC §6, the report's V100 setting: 2 GPUs, rank 16, 49 frames, 256 tokens.
    case v100
    /// wanlora's own and the default. 8 × H100 80GB: FSDP shards both experts (7.1 GB a GPU, so both
    /// stay resident), Ulysses 2 halves each GPU's share of the 75,600 tokens of 81 frames so they
    /// fit, the encoders' outputs are cached once instead of swapped in per step, and 4 data-parallel
    /// groups × 8 accumulation steps keep the report's batch of 32. AdamW in fp32: 0.8 GB for both
    /// LoRAs is nothing here, and it needs no bitsandbytes.
    case h100
}

public enum ModelArchitecture: String, Sendable, Codable, CaseIterable, ConfigChoice {
    case wan22T2VA14B = "Wan2.2-T2V-A14B"
    case wan22TI2V5B = "Wan2.2-TI2V-5B"
    case wan21T2V14B = "Wan2.1-T2V-14B"
    case wan21T2V1_3B = "Wan2.1-T2V-1.3B"
}

public enum CheckpointLayout: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// Detect from the folder's contents.
    case auto
    /// high_noise_model/, low_noise_model/, models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth.
    case official
    /// transformer/, transformer_2/, vae/, text_encoder/, tokenizer/.
    case diffusers
}

public enum WeightsDType: String, Sendable, Codable, CaseIterable, ConfigChoice {
    case bf16
    case fp16
    /// float32: 4 bytes a weight (CPU runs always use it).
    case fp32
    /// The blocks that stream from host memory (docs/streaming.md) wait there in float8 e4m3 with one
    /// float32 scale per output channel and are dequantized into bf16 on the GPU: half the host memory and
    /// link bytes of bf16, not exact (docs/BENCHMARKS.md measures the error). Resident blocks stay bf16.
    case fp8

    /// Bytes per stored weight.
    public var bytes: Int {
        switch self {
        case .fp8: 1
        case .bf16, .fp16: 2
        case .fp32: 4
        }
    }
}

public enum LearningRateSchedule: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// Linear warm-up, then cosine from the peak to 0 at the last step.
    case cosine
    /// Linear warm-up, then constant.
    case constant
}

public enum Optimizer: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// AdamW with fp32 moment estimates (8 bytes per trained parameter).
    case adamw
    /// bitsandbytes 8-bit AdamW (2 bytes per trained parameter).
    case adamw8bit
}

public enum MixedPrecision: String, Sendable, Codable, CaseIterable, ConfigChoice {
    case bf16
    /// fp16 autocast: the planner models it (V100s have no bf16); the engine does not train
    /// with it (it needs loss scaling).
    case fp16
    /// No mixed precision: float32 everywhere.
    case fp32
}

/// Where `train` gets its latents and text embeddings from.
public enum TrainingDataSource: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// The cache written by `wanlora cache` (fast; needs the disk for it).
    case cache
    /// Each drawn item is decoded and encoded during training (for caches that do not fit on disk; slower).
    case onTheFly = "on_the_fly"
}

public enum ComputeDevice: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// A CUDA GPU when there is one, else the CPU.
    case auto
    case cpu
    case cuda
}

public enum TimestepSampling: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// u uniform in (0, 1).
    case uniform
    /// u = sigmoid(mean + std·z), z standard normal.
    case logitNormal = "logit_normal"
}

public enum ExpertGrouping: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// Each sample trains the expert of its own timestep.
    case sample
    /// One expert per optimizer step, drawn with the probability of its timestep range (the same
    /// distribution; lets the idle expert wait in host memory).
    case step
}

/// What training does when a step's loss or gradient norm is not finite (NaN or infinite).
public enum NonFiniteAction: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// Stop the run with an error; the last checkpoint stays.
    case stop
    /// Skip that optimizer step (no update) and count it.
    case skip
    /// Reload the last checkpoint and continue with the learning rate scaled by rollback_lr_factor.
    case rollback
}

public enum LossWeighting: String, Sendable, Codable, CaseIterable, ConfigChoice {
    case none
    /// (1−β)/(1−β^n_c) per category c, normalised to mean 1.
    case classBalanced = "class_balanced"
    /// (ℓ/EMA(ℓ))^γ, capped at 10.
    case focal
}

public enum ResidualDType: String, Sendable, Codable, CaseIterable, ConfigChoice {
    case bf16
    case fp32

    public var bytes: Int { self == .bf16 ? 2 : 4 }
}

/// The engine's transformer block implementation (docs/BENCHMARKS.md measures both).
public enum BlockImplementation: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// wanlora's fused blocks: self-attention kept instead of recomputed in backward, norms,
    /// modulation and RoPE fused, the checkpointed activations waiting in host memory.
    case fast
    /// diffusers' WanTransformerBlock with its own gradient checkpointing (the reference).
    case diffusers
}

/// Scaled-dot-product attention backend of the fast blocks (docs/BENCHMARKS.md compares them).
/// `fa3` is FlashAttention-3 (Hopper GPUs, installed separately: bench/build_fa3.sh).
public enum AttentionKernel: String, Sendable, Codable, CaseIterable, ConfigChoice {
    case auto, cudnn, fa3, flash, efficient, math
}

/// Where the fast blocks keep checkpointed activations between forward and backward.
public enum ActivationOffload: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// Host memory when the GPU would not hold them, else the GPU.
    case auto
    /// Always on the GPU.
    case none
    /// Always in pinned host memory.
    case all
}

public enum ExpertSelection: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// Only the high-noise expert (timesteps t ≥ boundary).
    case high
    /// Only the low-noise expert (t < boundary).
    case low
    /// Both, each sample training the expert its timestep belongs to.
    case both
}

public enum EncoderPlacement: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// On the GPU for the whole run.
    case resident
    /// In host memory, moved onto the GPU for each encode.
    case offload
    /// Not loaded: the embeddings/latents come from `wanlora cache`.
    case cached
}

public enum ExpertPlacement: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// Both experts stay on the GPU(s) (sharded with FSDP when fsdp = true).
    case resident
    /// The unused expert waits in host memory and is swapped in when a sample needs it.
    case offload
}

public enum SampleSolver: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// First order along the predicted velocity (diffusers' FlowMatchEulerDiscreteScheduler).
    case euler
    /// UniPC multistep, order 2 with corrector (Wan2.2's default solver).
    case unipc
}

public enum SampleSchedule: String, Sendable, Codable, CaseIterable, ConfigChoice {
    /// Wan2.2's generate.py: σ = shift(0.999·(1 − i/N)), integer timesteps.
    case wan
    /// diffusers' UniPCMultistepScheduler with flow sigmas: σ = shift(1 − 0.999·i/N).
    case diffusersUnipc = "diffusers_unipc"
    /// diffusers' FlowMatchEulerDiscreteScheduler: N points from 1 to shift(1/1000), shifted again.
    case diffusersEuler = "diffusers_euler"
}

public enum EvalMetric: String, Sendable, Codable, CaseIterable, ConfigChoice {
    case fvd, `is`, lpips, clip, temporal
}
