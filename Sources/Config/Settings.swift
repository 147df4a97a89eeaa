import Foundation

/// The whole configuration of a wanlora run, one value per key of the TOML file.
///
/// Every command that needs settings (plan, cache, train, sample, evaluate) reads this one
/// type; its defaults live in `Defaults.swift` and nowhere else. The TOML file mirrors these
/// sections key by key (snake_case), and so does `config.resolved.json`.
public struct WanLoRAConfig: Sendable, Equatable, Codable {
    /// The preset this configuration started from (`a100`, `v100`, `h100`).
    public var preset: Preset
    public var data: DataSettings
    public var model: ModelSettings
    public var lora: LoRASettings
    public var training: TrainingSettings
    public var hardware: HardwareSettings
    public var sample: SampleSettings
    public var eval: EvalSettings

    public init(
        preset: Preset, data: DataSettings, model: ModelSettings, lora: LoRASettings,
        training: TrainingSettings, hardware: HardwareSettings, sample: SampleSettings, eval: EvalSettings
    ) {
        self.preset = preset
        self.data = data
        self.model = model
        self.lora = lora
        self.training = training
        self.hardware = hardware
        self.sample = sample
        self.eval = eval
    }
}

/// Where the stages read and write their files. Relative paths are relative to the folder of
/// the configuration file (the resolved JSON holds them as written and the folder separately).
public struct DataSettings: Sendable, Equatable, Codable {
    /// Prepared training manifest (output of `wanlora prepare`).
    public var trainManifest: String
    /// Prepared validation manifest.
    public var valManifest: String
    /// Folder of the VAE latents and UMT5 embeddings (`wanlora cache`).
    public var cacheDir: String
    /// Folder that holds one sub-folder per training run.
    public var runsDir: String
}

/// Which model is trained and where its weights are.
public struct ModelSettings: Sendable, Equatable, Codable {
    public var architecture: ModelArchitecture
    /// Local folder with the weights; empty means "not given yet" (fine for `plan`).
    public var checkpoint: String
    public var layout: CheckpointLayout
    /// Storage of the frozen base weights on the GPU.
    public var weightsDtype: WeightsDType
    /// Timestep ratio at and above which the high-noise expert is used (t ≥ boundary·1000),
    /// in training (routing) and sampling alike.
    public var boundary: Double
}

/// The LoRA adapters.
public struct LoRASettings: Sendable, Equatable, Codable {
    public var rank: Int
    public var alpha: Double
    public var dropout: Double
    /// Module names as peft matches them: a module is adapted when its full name equals a
    /// target or ends with "." + target.
    public var targets: [String]
}

/// The optimisation itself.
public struct TrainingSettings: Sendable, Equatable, Codable {
    public var frames: Int
    public var width: Int
    public var height: Int
    public var fps: Int
    /// Caption tokens fed to UMT5 (padded/truncated to this length).
    public var textLength: Int
    public var microBatch: Int
    public var gradAccumulation: Int
    public var epochs: Int
    public var learningRate: Double
    public var weightDecay: Double
    public var warmupSteps: Int
    public var schedule: LearningRateSchedule
    public var maxGradNorm: Double
    public var optimizer: Optimizer
    public var mixedPrecision: MixedPrecision
    public var gradientCheckpointing: Bool
    /// dtype of the residual stream between blocks (what gradient checkpointing keeps).
    public var residualDtype: ResidualDType
    /// How the engine runs the transformer blocks (the engine config's `blocks.implementation`).
    public var blocks: BlockImplementation
    /// Probability of replacing a caption by the empty prompt (teaches the unconditional branch).
    public var cfgDropout: Double
    /// Shift of the training timestep sampler: σ = s·u / (1 + (s−1)·u), u uniform in (0, 1).
    public var timestepShift: Double
    public var seed: Int
    public var loggingSteps: Int
    public var saveSteps: Int
    public var evalSteps: Int
    public var keepCheckpoints: Int
    public var expert: ExpertSelection

    public var resolution: Resolution { Resolution(width: width, height: height) }
}

/// The machines the run uses.
public struct HardwareSettings: Sendable, Equatable, Codable {
    /// GPU model, a name from the planner's GPU catalog (e.g. "H100", "A100-80GB", "V100-32GB").
    public var gpu: String
    /// GPUs per node (torchrun --nproc-per-node).
    public var gpusPerNode: Int
    public var nodes: Int
    /// Ulysses sequence-parallel group size: that many GPUs share one sample's tokens.
    public var ulyssesDegree: Int
    /// Shard the frozen expert weights over all GPUs with FSDP.
    public var fsdp: Bool
    /// Where the UMT5 text encoder lives during training.
    public var t5: EncoderPlacement
    /// Where the VAE lives during training.
    public var vae: EncoderPlacement
    /// Where the expert that the current sample does not use waits (only with expert = both).
    public var inactiveExpert: ExpertPlacement

    /// All GPUs of the run.
    public var worldSize: Int { gpusPerNode * nodes }
    /// Independent samples processed at once: the world divided into Ulysses groups.
    public var dataParallelSize: Int { worldSize / max(ulyssesDegree, 1) }
}

/// Inference defaults (the Wan2.2 A14B model card values).
public struct SampleSettings: Sendable, Equatable, Codable {
    public var steps: Int
    public var shift: Double
    /// Classifier-free guidance scale on the high-noise expert.
    public var guidanceHigh: Double
    /// Classifier-free guidance scale on the low-noise expert.
    public var guidanceLow: Double
    public var frames: Int
    public var width: Int
    public var height: Int
    public var fps: Int
    public var seed: Int
    public var negativePrompt: String
}

/// Evaluation defaults.
public struct EvalSettings: Sendable, Equatable, Codable {
    /// Metrics `wanlora evaluate` computes.
    public var metrics: [EvalMetric]
    /// Videos generated per category for per-category metrics and review.
    public var samplesPerCategory: Int
    /// Validation clips used for the validation loss; 0 means all of them.
    public var valLossSamples: Int
    /// Timestep ratios at which the validation loss is measured (fixed, so runs compare).
    public var valLossTimesteps: [Double]
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

public enum Preset: String, Sendable, Codable, CaseIterable {
    /// SPEC §6, the report's A100 setting: 8 GPUs, rank 32, 81 frames, 512 tokens.
    case a100
    /// SPEC §6, the report's V100 setting: 2 GPUs, rank 16, 49 frames, 256 tokens.
    case v100
    /// wanlora's own: 8 × H100 80GB, rank 16, 81 frames with Ulysses 2, cached encoders.
    case h100
}

public enum ModelArchitecture: String, Sendable, Codable, CaseIterable {
    case wan22T2VA14B = "Wan2.2-T2V-A14B"
    case wan22TI2V5B = "Wan2.2-TI2V-5B"
    case wan21T2V14B = "Wan2.1-T2V-14B"
    case wan21T2V1_3B = "Wan2.1-T2V-1.3B"
}

public enum CheckpointLayout: String, Sendable, Codable, CaseIterable {
    /// Detect from the folder's contents.
    case auto
    /// high_noise_model/, low_noise_model/, models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth.
    case official
    /// transformer/, transformer_2/, vae/, text_encoder/, tokenizer/.
    case diffusers
}

public enum WeightsDType: String, Sendable, Codable, CaseIterable {
    case bf16
    /// Frozen weights stored in float8 (e4m3) with per-tensor scales; halves their memory.
    case fp8
}

public enum LearningRateSchedule: String, Sendable, Codable, CaseIterable {
    /// Linear warm-up, then cosine from the peak to 0 at the last step.
    case cosine
    /// Linear warm-up, then linear to 0.
    case linear
    /// Linear warm-up, then constant.
    case constant
}

public enum Optimizer: String, Sendable, Codable, CaseIterable {
    /// AdamW with fp32 moment estimates (8 bytes per trained parameter).
    case adamw
    /// bitsandbytes 8-bit AdamW (2 bytes per trained parameter).
    case adamw8bit
}

public enum MixedPrecision: String, Sendable, Codable, CaseIterable {
    case bf16
    case fp16
    /// No mixed precision: float32 everywhere.
    case fp32
}

public enum ResidualDType: String, Sendable, Codable, CaseIterable {
    case bf16
    case fp32

    public var bytes: Int { self == .bf16 ? 2 : 4 }
}

/// The engine's transformer block implementation (docs/BENCHMARKS.md measures both).
public enum BlockImplementation: String, Sendable, Codable, CaseIterable {
    /// wanlora's fused blocks: self-attention kept instead of recomputed in backward, norms,
    /// modulation and RoPE fused, the checkpointed activations waiting in host memory.
    case fast
    /// diffusers' WanTransformerBlock with its own gradient checkpointing (the reference).
    case diffusers
}

public enum ExpertSelection: String, Sendable, Codable, CaseIterable {
    /// Only the high-noise expert (timesteps t ≥ boundary).
    case high
    /// Only the low-noise expert (t < boundary).
    case low
    /// Both, each sample training the expert its timestep belongs to.
    case both
}

public enum EncoderPlacement: String, Sendable, Codable, CaseIterable {
    /// On the GPU for the whole run.
    case resident
    /// In host memory, moved onto the GPU for each encode.
    case offload
    /// Not loaded: the embeddings/latents come from `wanlora cache`.
    case cached
}

public enum ExpertPlacement: String, Sendable, Codable, CaseIterable {
    /// Both experts stay on the GPU(s) (sharded with FSDP when fsdp = true).
    case resident
    /// The unused expert waits in host memory and is swapped in when a sample needs it.
    case offload
}

public enum EvalMetric: String, Sendable, Codable, CaseIterable {
    case fvd, `is`, lpips, clip, temporal
}
