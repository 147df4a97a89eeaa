import Foundation

/// The whole configuration of a wanlora run, one value per key of the TOML file.
///
/// Every command that needs settings (plan, cache, train, sample, evaluate) reads this one
/// type; its defaults live in `Defaults.swift` and nowhere else. The TOML file mirrors these
/// sections key by key (snake_case), and so does `config.resolved.json`.
public struct WanLoRAConfig: Sendable, Equatable, Codable {
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

    public init(
        preset: Preset, run: RunSettings, data: DataSettings, model: ModelSettings, lora: LoRASettings,
        training: TrainingSettings, cache: CacheSettings, hardware: HardwareSettings, sample: SampleSettings,
        eval: EvalSettings
    ) {
        self.preset = preset
        self.run = run
        self.data = data
        self.model = model
        self.lora = lora
        self.training = training
        self.cache = cache
        self.hardware = hardware
        self.sample = sample
        self.eval = eval
    }
}

/// Which run folder a `cache` or `train` writes into: `runs_dir/name`.
public struct RunSettings: Sendable, Equatable, Codable {
    /// Name of the run; empty means the configuration file's name without `.toml` (or the
    /// preset's name when there is no file).
    public var name: String
    /// Folder that holds one sub-folder per run.
    public var runsDir: String
}

/// Where the stages read and write their files. Relative paths are relative to the folder of
/// the configuration file.
public struct DataSettings: Sendable, Equatable, Codable {
    /// Prepared training manifest (output of `wanlora prepare`).
    public var trainManifest: String
    /// Prepared validation manifest; empty means no validation split.
    public var valManifest: String
    /// Folder of the VAE latents and UMT5 embeddings (`wanlora cache`); empty means
    /// `cache/<W>x<H>-<F>f-<L>t`, one folder per clip shape and text length, because the engine
    /// refuses a cache made with other settings.
    public var cacheDir: String
    /// Manifest column with per-item sampling weights (written by `wanlora curate`); empty: all 1.
    public var weightColumn: String
    /// Manifest column with the category (for class-balanced loss weighting); empty: none.
    public var categoryColumn: String
    /// Latents and embeddings from the cache, or encoded on the fly during training.
    public var source: TrainingDataSource = .cache

    /// `cacheDir`, or the folder derived from the clip shape when it is empty.
    public func cacheFolder(_ training: TrainingSettings) -> String {
        cacheDir.isEmpty ? "cache/\(training.width)x\(training.height)-\(training.frames)f-\(training.textLength)t" : cacheDir
    }
}

/// Which model is trained and where its weights are.
public struct ModelSettings: Sendable, Equatable, Codable {
    public var architecture: ModelArchitecture
    /// Local folder with the weights; empty means "not given yet" (fine for `plan`).
    public var checkpoint: String
    public var layout: CheckpointLayout
    /// Storage of the frozen base weights (fp8: the host copies of streamed blocks; the GPU computes in bf16).
    public var weightsDtype: WeightsDType
    /// Timestep ratio at and above which the high-noise expert is used (t ≥ boundary·1000),
    /// in training (routing) and sampling alike.
    public var boundary: Double
    /// Timesteps of the training schedule: t = σ·num_train_timesteps (1000 for Wan).
    public var numTrainTimesteps: Int
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
    /// Caption tokens kept (longer captions are cut); training pads them with zeros to the model's 512.
    public var textLength: Int
    public var microBatch: Int
    public var gradAccumulation: Int
    public var epochs: Int
    /// Optimizer steps of the whole run; 0 means "from `epochs`".
    public var maxSteps: Int
    public var learningRate: Double
    public var weightDecay: Double
    public var warmupSteps: Int
    public var schedule: LearningRateSchedule
    public var maxGradNorm: Double
    public var optimizer: Optimizer
    /// AdamW β1, β2.
    public var adamBetas: [Double]
    /// AdamW ε.
    public var adamEps: Double
    public var mixedPrecision: MixedPrecision
    public var gradientCheckpointing: Bool
    /// dtype of the residual stream between blocks (what gradient checkpointing keeps).
    public var residualDtype: ResidualDType
    /// How the engine runs the transformer blocks (the engine config's `blocks.implementation`).
    public var blocks: BlockImplementation
    /// Attention kernel of the fast blocks (auto: cuDNN on Hopper, then FlashAttention-2, …).
    public var attention: AttentionKernel = .auto
    /// Fast blocks: keep the self-attention output for backward instead of recomputing it.
    public var keepAttention: Bool = true
    /// Fast blocks: where checkpointed activations wait for backward.
    public var activationOffload: ActivationOffload = .auto
    /// Fast blocks: tokens the feed-forward half of a block's recompute + backward runs at a time (0 = all at
    /// once). Memory only: the same products split per token (docs/streaming.md, "The FFN chunk").
    public var ffnChunkTokens: Int = 0
    /// Fast blocks: fuse the elementwise work with torch.compile (GPU only).
    public var compile: Bool = true
    /// Probability of replacing a caption by the empty prompt (teaches the unconditional branch).
    public var cfgDropout: Double
    /// Base draw u of the timestep sampler: uniform, or sigmoid(mean + std·z).
    public var timestepSampling: TimestepSampling
    /// Shift of the training timestep sampler: σ = s·u / (1 + (s−1)·u).
    public var timestepShift: Double
    /// Mean of the logit-normal draw (with timestep_sampling = "logit_normal").
    public var timestepLogitMean: Double
    /// Standard deviation of the logit-normal draw.
    public var timestepLogitStd: Double
    public var seed: Int
    /// Where the training runs: "auto" takes a CUDA GPU when there is one.
    public var device: ComputeDevice
    public var loggingSteps: Int
    /// Also write TensorBoard scalars into the run folder.
    public var tensorboard: Bool
    /// Optimizer steps between checkpoints; 0 = only at the end and on interrupt.
    public var saveSteps: Int
    /// Optimizer steps between validation-loss measurements; 0 = never.
    public var evalSteps: Int
    public var keepCheckpoints: Int
    public var expert: ExpertSelection
    /// How samples meet the experts: each its own (sample), or one expert per optimizer step.
    public var expertGrouping: ExpertGrouping
    /// Per-sample loss weights against class imbalance.
    public var lossWeighting: LossWeighting
    /// β of the class-balanced weights (1−β)/(1−β^n).
    public var classBalancedBeta: Double
    /// γ of the focal weighting (ℓ/EMA(ℓ))^γ.
    public var focalGamma: Double
    /// Overfit test on the first N cached items (SPEC §6 recommends 100); 0 = normal training.
    public var overfitSamples: Int

    public var resolution: Resolution { Resolution(width: width, height: height) }
}

/// How `wanlora cache` encodes (VAE latents and UMT5 embeddings).
public struct CacheSettings: Sendable, Equatable, Codable {
    /// Where the VAE and UMT5 run.
    public var device: ComputeDevice
    /// Items per shard file: a killed cache run redoes at most one shard.
    public var shardItems: Int
    /// Captions per UMT5 forward pass.
    public var textBatchSize: Int
    /// Tiled VAE encoding (less GPU memory for large clips).
    public var vaeTiling: Bool
    /// Free disk the cache must leave, GiB; the stage refuses to start otherwise.
    public var freeDiskMarginGiB: Double
}

/// The machines the run uses.
public struct HardwareSettings: Sendable, Equatable, Codable {
    /// GPU model, a name from the planner's GPU catalog (e.g. "H100", "A100-80GB", "V100-32GB").
    public var gpu: String
    /// GPU memory the run may use, GiB; 0 = what the card has. Under it the frozen expert's blocks that do
    /// not fit stream from pinned host memory (docs/streaming.md).
    public var gpuMemoryLimitGiB: Double = 0
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
    /// How each denoising step moves the latents.
    public var solver: SampleSolver
    /// Which implementation's timestep grid the steps follow (they differ in where the experts switch).
    public var schedule: SampleSchedule
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
    /// Negative prompt of classifier-free guidance (default: Wan2.2's own, `officialNegativePrompt`).
    public var negativePrompt: String
}

/// Evaluation defaults.
public struct EvalSettings: Sendable, Equatable, Codable {
    /// Metrics `wanlora evaluate` computes.
    public var metrics: [EvalMetric]
    /// Videos generated per category for per-category metrics and review.
    public var samplesPerCategory: Int
    /// Validation items used for the validation loss (the first N of the val split).
    public var valLossSamples: Int
    /// Timesteps t (0…999) at which the validation loss is measured, each on the expert it
    /// belongs to; fixed, with fixed noise, so runs compare.
    public var valLossTimesteps: [Int]
    /// Seed of the fixed validation noise.
    public var seed: Int

    // `wanlora evaluate` (docs/evaluate.md). Weight paths left empty mean "the standard file name inside
    // weightsDir" (EvalWeightFiles); relative paths are relative to the configuration file's folder.
    /// Folder holding the metric networks' files under their standard names.
    public var weightsDir: String = "weights"
    /// Kinetics-400 I3D of the FVD reference code (empty: weightsDir/i3d_pretrained_400.pt).
    public var i3dWeights: String = ""
    /// torchvision Inception-v3 ImageNet weights (empty: weightsDir/inception_v3_google-0cc3c7bd.pth).
    public var inceptionWeights: String = ""
    /// LPIPS backbone network.
    public var lpipsNet: LPIPSNet = .alex
    /// LPIPS v0.1 linear layers (empty: weightsDir/lpips/v0.1/alex.pth or vgg.pth).
    public var lpipsWeights: String = ""
    /// torchvision ImageNet backbone of LPIPS (empty: weightsDir/alexnet-owt-7be5be79.pth or vgg16-397923af.pth).
    public var lpipsBackboneWeights: String = ""
    /// CLIP image encoder folder (empty: weightsDir/clip-vit-base-patch32).
    public var clipImageModel: String = ""
    /// Multilingual text encoder folder (empty: weightsDir/clip-ViT-B-32-multilingual-v1).
    public var clipTextModel: String = ""
    /// Frames per clip fed to I3D for FVD (consecutive, from the first).
    public var fvdFrames: Int = 16
    /// Clips per set below which FVD is flagged as unstable.
    public var fvdMinSamples: Int = 256
    /// Frames per video, evenly spaced, for IS, CLIP score and LPIPS.
    public var framesPerVideo: Int = 8
    /// Reference clips per category (a seeded draw; 0 = all).
    public var referencePerCategory: Int = 256
    /// Splits of the Inception Score.
    public var isSplits: Int = 10
    /// Shortest side, in pixels, of the frames LPIPS compares.
    public var lpipsSize: Int = 256
    /// Pairs of generated videos per category for LPIPS diversity.
    public var lpipsMaxPairs: Int = 64
}

/// Backbone of the LPIPS metric.
public enum LPIPSNet: String, Sendable, Codable, CaseIterable {
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

public enum LearningRateSchedule: String, Sendable, Codable, CaseIterable {
    /// Linear warm-up, then cosine from the peak to 0 at the last step.
    case cosine
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
    /// fp16 autocast: the planner models it (V100s have no bf16); the engine does not train
    /// with it (it needs loss scaling).
    case fp16
    /// No mixed precision: float32 everywhere.
    case fp32
}

/// Where `train` gets its latents and text embeddings from.
public enum TrainingDataSource: String, Sendable, Codable, CaseIterable {
    /// The cache written by `wanlora cache` (fast; needs the disk for it).
    case cache
    /// Each drawn item is decoded and encoded during training (for caches that do not fit on disk; slower).
    case onTheFly = "on_the_fly"
}

public enum ComputeDevice: String, Sendable, Codable, CaseIterable {
    /// A CUDA GPU when there is one, else the CPU.
    case auto
    case cpu
    case cuda
}

public enum TimestepSampling: String, Sendable, Codable, CaseIterable {
    /// u uniform in (0, 1).
    case uniform
    /// u = sigmoid(mean + std·z), z standard normal.
    case logitNormal = "logit_normal"
}

public enum ExpertGrouping: String, Sendable, Codable, CaseIterable {
    /// Each sample trains the expert of its own timestep.
    case sample
    /// One expert per optimizer step, drawn with the probability of its timestep range (the same
    /// distribution; lets the idle expert wait in host memory).
    case step
}

public enum LossWeighting: String, Sendable, Codable, CaseIterable {
    case none
    /// (1−β)/(1−β^n_c) per category c, normalised to mean 1.
    case classBalanced = "class_balanced"
    /// (ℓ/EMA(ℓ))^γ, capped at 10.
    case focal
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

/// Scaled-dot-product attention backend of the fast blocks (docs/BENCHMARKS.md compares them).
public enum AttentionKernel: String, Sendable, Codable, CaseIterable {
    case auto, cudnn, flash, efficient, math
}

/// Where the fast blocks keep checkpointed activations between forward and backward.
public enum ActivationOffload: String, Sendable, Codable, CaseIterable {
    /// Host memory when the GPU would not hold them, else the GPU.
    case auto
    /// Always on the GPU.
    case none
    /// Always in pinned host memory.
    case all
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

public enum SampleSolver: String, Sendable, Codable, CaseIterable {
    /// First order along the predicted velocity (diffusers' FlowMatchEulerDiscreteScheduler).
    case euler
    /// UniPC multistep, order 2 with corrector (Wan2.2's default solver).
    case unipc
}

public enum SampleSchedule: String, Sendable, Codable, CaseIterable {
    /// Wan2.2's generate.py: σ = shift(0.999·(1 − i/N)), integer timesteps.
    case wan
    /// diffusers' UniPCMultistepScheduler with flow sigmas: σ = shift(1 − 0.999·i/N).
    case diffusersUnipc = "diffusers_unipc"
    /// diffusers' FlowMatchEulerDiscreteScheduler: N points from 1 to shift(1/1000), shifted again.
    case diffusersEuler = "diffusers_euler"
}

public enum EvalMetric: String, Sendable, Codable, CaseIterable {
    case fvd, `is`, lpips, clip, temporal
}
