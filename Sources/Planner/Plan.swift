import Config
import Foundation

/// How many items the training set has (images are trained as one-frame clips).
public struct DatasetSize: Sendable, Equatable, Codable {
    public var videos: Int
    public var images: Int
    /// Mean caption length in characters (the manifest statistics' figure); the cache's text bytes follow
    /// from it (CacheModel.captionTokens).
    public var meanCaptionCharacters: Double
    public init(
        videos: Int, images: Int, meanCaptionCharacters: Double = CacheModel.archiveMeanCaptionCharacters
    ) {
        self.videos = videos
        self.images = images
        self.meanCaptionCharacters = meanCaptionCharacters
    }
    public var samples: Int { videos + images }

    /// The archive's training split (SPEC §2 / the report's all_train.csv): 80,106 videos and
    /// 90,074 images, 170,180 rows.
    public static let archiveTrainingSplit = DatasetSize(videos: 80_106, images: 90_074)
}

/// A finding of the planner: an error stops `wanlora train`; a warning or note informs.
public struct PlanCheck: Sendable, Equatable, Codable {
    public enum Severity: String, Sendable, Codable, Comparable {
        case error, warning, note
        private var rank: Int { self == .error ? 0 : self == .warning ? 1 : 2 }
        public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
    }

    public var severity: Severity
    /// Stable identifier, e.g. "memory", "bf16", "ulysses-heads".
    public var code: String
    public var message: String
    public var remedy: String
}

/// Everything `wanlora plan` reports.
public struct Plan: Sendable, Codable {
    public struct Setup: Sendable, Equatable, Codable {
        public var preset: String
        public var architecture: String
        public var gpu: String
        public var gpuMemoryGiB: Double
        public var gpusPerNode: Int
        public var nodes: Int
        public var worldSize: Int
        public var ulyssesDegree: Int
        public var dataParallelSize: Int
        public var fsdp: Bool
        public var microBatch: Int
        public var gradAccumulation: Int
        public var effectiveBatch: Int
        public var mixedPrecision: String
        public var weightsDtype: String
        public var optimizer: String
        public var expert: String
        public var t5: String
        public var vae: String
        public var inactiveExpert: String
        public var textLength: Int
        public var epochs: Int
        /// GPU memory the plan places the run in: the card's, or hardware.gpu_memory_limit when smaller, GiB.
        public var gpuMemoryLimitGiB: Double
        /// Where the kept activations wait: "host" (pinned) or "gpu".
        public var activationOffload: String
    }

    public struct ModelSize: Sendable, Equatable, Codable {
        public var expertParameters: Int
        public var experts: Int
        public var transformerParameters: Int
        public var expertBytesBF16: Int
        public var textEncoderParameters: Int
        public var vaeParameters: Int
        public var dim: Int
        public var ffnDim: Int
        public var heads: Int
        public var layers: Int
    }

    public struct Throughput: Sendable, Equatable, Codable {
        /// One training sample on one Ulysses group.
        public var video: SampleTime
        public var image: SampleTime
        public var videoFlops: TrainingFlops
        public var imageFlops: TrainingFlops
        /// Counted FLOPs per second per GPU the model predicts for a video sample.
        public var videoTFLOPsPerGPU: Double
        /// Where the GPU's efficiencies come from.
        public var efficiencySource: String
        public var calibrated: Bool
        /// The bf16 matrix rate is emulated (fp32 without tensor cores) on this GPU.
        public var emulatedBF16: Bool
    }

    public struct Schedule: Sendable, Equatable, Codable {
        public var dataset: DatasetSize
        public var stepsPerEpoch: Int
        public var totalSteps: Int
        /// Mean wall time of one optimizer step (effective batch of the dataset's mix), seconds.
        public var secondsPerStep: Double
        public var epochHours: Double
        public var runHours: Double
        public var gpuHours: Double
        /// Share of the hours spent on videos.
        public var videoShare: Double
        /// Fraction of samples routed to the high-noise expert (timestep sampler and boundary).
        public var highNoiseFraction: Double
    }

    /// What `wanlora cache` writes and how long it takes (CacheModel).
    public struct Cache: Sendable, Equatable, Codable {
        public var latentBytesPerVideo: Int
        public var latentBytesPerImage: Int
        /// Estimated mean UMT5 tokens a caption stores (its own count, at most training.text_length),
        /// from the mean caption length in characters.
        public var textTokensPerCaption: Int
        public var meanCaptionCharacters: Double
        public var textBytesPerCaption: Int
        public var totalBytes: Int
        /// Free space where the cache goes, when known.
        public var diskFreeBytes: Int?
        /// One GPU's seconds per video and per image item: VAE encode + UMT5 encode of its caption.
        public var secondsPerVideo: Double
        public var secondsPerImage: Double
        /// The GPUs `wanlora cache` runs on (hardware.gpus_per_node × hardware.nodes, one process each).
        public var gpus: Int
        /// Hours to build it once on those GPUs, and the GPU-hours that costs.
        public var buildHours: Double
        public var buildGPUHours: Double

        /// Bytes of one video item and one image item: latent + caption embedding.
        public var bytesPerVideo: Int { latentBytesPerVideo + textBytesPerCaption }
        public var bytesPerImage: Int { latentBytesPerImage + textBytesPerCaption }
    }

    public struct Inference: Sendable, Equatable, Codable {
        public var frames: Int
        public var tokens: Int
        /// One forward pass of one expert, one GPU: half of `SampleTimeModel`'s step (guidance's two passes).
        public var forwardSeconds: Double
        /// Denoising one video: steps × step, DiT only (no VAE decode), one GPU (`Plan.sampling[0]` adds the decode).
        public var videoSeconds: Double
    }

    public var setup: Setup
    public var model: ModelSize
    public var video: ClipGeometry
    public var image: ClipGeometry
    public var lora: LoRACount
    public var memory: MemoryBudget
    public var imageMemory: MemoryBudget
    public var throughput: Throughput
    public var schedule: Schedule
    public var cache: Cache
    public var inference: Inference
    public var checks: [PlanCheck]
    public var constants: ModelConstants
    /// Where the engine puts the frozen expert's blocks (its streaming rule), for the largest clip.
    public var placement: WeightPlacement
    /// The link during one micro-step of a video clip and of an image, when blocks stream.
    public var streaming: StreamingTime
    public var imageStreaming: StreamingTime
    /// Host memory of one node.
    public var host: HostMemoryBudget
    /// When the plan does not fit the card or the host: the nearest settings that do.
    public var alternatives: [SettingOption]
    /// `wanlora sample`'s time and memory per GPU on one GPU and on the run's GPUs (issue 20).
    public var sampling: [SampleLayoutEstimate] = []

    public var hasErrors: Bool { checks.contains { $0.severity == .error } }
    /// The plan fits the card (or the limit) by the engine's rule and the planner's peak, and the host's
    /// memory when it is known.
    public var fits: Bool { placement.fitsRule && memory.fits && host.fits }
}

public enum Planner {
    /// Plans `config` on `dataset`. `diskFreeBytes` is the free space of the cache folder's disk
    /// when the caller knows it. Throws only when the configuration cannot be computed at all
    /// (unknown GPU, a LoRA target that matches nothing, a shape the model cannot take); every
    /// other problem is a check in the plan.
    /// `hostMemoryAvailableBytes` is the training host's available memory when known (`train` reads
    /// /proc/meminfo): a placement that needs more is an error. With training.activation_offload = "auto"
    /// the planner places the kept activations in host memory, or on the GPU when only that fits.
    public static func plan(
        _ config: WanLoRAConfig, dataset: DatasetSize = .archiveTrainingSplit,
        diskFreeBytes: Int? = nil, hostMemoryAvailableBytes: Int? = nil,
        constants: ModelConstants? = nil
    ) throws -> Plan {
        try plan(
            config, dataset: dataset, diskFreeBytes: diskFreeBytes, hostMemoryAvailableBytes: hostMemoryAvailableBytes,
            constants: constants, withAlternatives: true)
    }

    static func plan(
        _ config: WanLoRAConfig, dataset: DatasetSize, diskFreeBytes: Int?, hostMemoryAvailableBytes: Int?,
        constants: ModelConstants?, withAlternatives: Bool
    ) throws -> Plan {
        let offloadChoices: [Bool]
        if Placement.offloadsActivations(config, choice: .all) {
            switch config.training.activationOffload {
            case .all: offloadChoices = [true]
            case .none: offloadChoices = [false]
            case .auto: offloadChoices = [true, false]
            }
        } else {
            offloadChoices = [false]
        }
        var candidates: [Plan] = []
        for offload in offloadChoices {
            candidates.append(
                try plan(
                    config, dataset: dataset, diskFreeBytes: diskFreeBytes,
                    hostMemoryAvailableBytes: hostMemoryAvailableBytes, constants: constants,
                    activationOffload: offload))
        }
        // The fastest placement that fits; the first (activations in host memory) when none does.
        var plan =
            candidates.filter(\.fits).min { $0.throughput.video.totalSeconds < $1.throughput.video.totalSeconds }
            ?? candidates[0]
        if withAlternatives && !plan.fits {
            plan.alternatives = Alternatives.nearest(
                config, dataset: dataset, hostMemoryAvailableBytes: hostMemoryAvailableBytes)
        }
        let a = Architecture.named(config.model.architecture)
        plan.checks = PlanChecks.run(
            plan: plan, config: config, architecture: a, gpu: try GPU.named(config.hardware.gpu))
        return plan
    }

    static func plan(
        _ config: WanLoRAConfig, dataset: DatasetSize, diskFreeBytes: Int?, hostMemoryAvailableBytes: Int?,
        constants: ModelConstants?, activationOffload: Bool
    ) throws -> Plan {
        let constants = constants ?? Calibration.constants(for: config.training.blocks)
        let a = Architecture.named(config.model.architecture)
        let gpu = try GPU.named(config.hardware.gpu)
        let hw = config.hardware
        let tr = config.training
        let trainedExperts: Int = {
            guard a.experts > 1 else { return 1 }
            return tr.expert == .both ? a.experts : 1
        }()
        let lora = try LoRACount.count(
            architecture: a, targets: config.lora.targets, rank: config.lora.rank, experts: trainedExperts)
        let video = try ClipGeometry(frames: tr.frames, width: tr.width, height: tr.height, architecture: a)
        let image = try ClipGeometry(frames: 1, width: tr.width, height: tr.height, architecture: a)

        // The engine places the blocks once, for the largest clip; images run with the same placement.
        let placement = Placement.weights(
            config: config, architecture: a, gpu: gpu, geometry: video, lora: lora,
            constants: constants, activationOffload: activationOffload)
        let memory = MemoryModel.budget(
            config: config, architecture: a, gpu: gpu, geometry: video, lora: lora,
            constants: constants, placement: placement)
        let imageMemory = MemoryModel.budget(
            config: config, architecture: a, gpu: gpu, geometry: image, lora: lora,
            constants: constants, placement: placement)
        let (videoTime, videoFlops, videoStreaming) = TimeModel.trainingSample(
            config: config, architecture: a, gpu: gpu, geometry: video, lora: lora, constants: constants,
            placement: placement)
        let (imageTime, imageFlops, imageStreaming) = TimeModel.trainingSample(
            config: config, architecture: a, gpu: gpu, geometry: image, lora: lora, constants: constants,
            placement: placement)
        let host = Placement.hostMemory(
            config: config, architecture: a, geometry: video, lora: lora, placement: placement,
            availableBytes: hostMemoryAvailableBytes)

        // Schedule: each Ulysses group trains its own samples; a step is effective-batch samples.
        let dp = hw.dataParallelSize
        let effectiveBatch = tr.microBatch * tr.gradAccumulation * dp
        let stepsPerEpoch = (dataset.samples + effectiveBatch - 1) / effectiveBatch
        // training.max_steps, when set, is the run's length whatever the epochs say (as in the engine).
        let totalSteps = tr.maxSteps > 0 ? tr.maxSteps : stepsPerEpoch * tr.epochs
        let videoSeconds = Double(dataset.videos) * videoTime.totalSeconds
        let imageSeconds = Double(dataset.images) * imageTime.totalSeconds
        let epochSeconds = (videoSeconds + imageSeconds) / Double(dp)
        let epochsRun = tr.maxSteps > 0 ? Double(totalSteps) / Double(max(stepsPerEpoch, 1)) : Double(tr.epochs)
        let runSeconds = epochSeconds * epochsRun
        let meanSample = dataset.samples > 0 ? (videoSeconds + imageSeconds) / Double(dataset.samples) : 0
        let highFraction =
            a.experts > 1 ? TimeModel.highNoiseFraction(boundary: config.model.boundary, shift: tr.timestepShift) : 0
        let schedule = Plan.Schedule(
            dataset: dataset, stepsPerEpoch: stepsPerEpoch, totalSteps: totalSteps,
            secondsPerStep: meanSample * Double(tr.microBatch * tr.gradAccumulation),
            epochHours: epochSeconds / 3600, runHours: runSeconds / 3600,
            gpuHours: runSeconds / 3600 * Double(hw.worldSize),
            videoShare: videoSeconds + imageSeconds > 0 ? videoSeconds / (videoSeconds + imageSeconds) : 0,
            highNoiseFraction: highFraction
        )

        let cache = CacheModel.cache(
            config: config, architecture: a, gpu: gpu, video: video, image: image, dataset: dataset,
            diskFreeBytes: diskFreeBytes)

        let sampleGeometry =
            (try? ClipGeometry(
                frames: config.sample.frames, width: config.sample.width, height: config.sample.height,
                architecture: a)) ?? video
        let sampling = SampleTimeModel.layouts(
            architecture: a, gpu: gpu, geometry: sampleGeometry, steps: config.sample.steps,
            textLength: a.textEncoder.maxTokens, worldSize: hw.worldSize, constants: Calibration.fittedFast)
        let inference = Plan.Inference(
            frames: sampleGeometry.frames, tokens: sampleGeometry.tokens,
            forwardSeconds: sampling[0].secondsPerStep / 2, videoSeconds: sampling[0].denoiseSeconds)

        let perGPUFlops = videoFlops.total.total / Double(hw.ulyssesDegree)
        let throughput = Plan.Throughput(
            video: videoTime, image: imageTime, videoFlops: videoFlops, imageFlops: imageFlops,
            videoTFLOPsPerGPU: perGPUFlops / videoTime.totalSeconds / 1e12,
            efficiencySource: gpu.efficiencySource, calibrated: gpu.calibrated,
            emulatedBF16: !gpu.matrixTFLOPs(for: tr.mixedPrecision).native
        )
        let setup = Plan.Setup(
            preset: config.preset.rawValue, architecture: a.name, gpu: gpu.name, gpuMemoryGiB: gpu.memoryGiB,
            gpusPerNode: hw.gpusPerNode, nodes: hw.nodes, worldSize: hw.worldSize, ulyssesDegree: hw.ulyssesDegree,
            dataParallelSize: dp, fsdp: hw.fsdp, microBatch: tr.microBatch, gradAccumulation: tr.gradAccumulation,
            effectiveBatch: effectiveBatch, mixedPrecision: tr.mixedPrecision.rawValue,
            weightsDtype: config.model.weightsDtype.rawValue,
            optimizer: tr.optimizer.rawValue, expert: tr.expert.rawValue, t5: hw.t5.rawValue, vae: hw.vae.rawValue,
            inactiveExpert: hw.inactiveExpert.rawValue, textLength: tr.textLength, epochs: tr.epochs,
            gpuMemoryLimitGiB: Double(Placement.capacityBytes(config: config, gpu: gpu)) / Double(1 << 30),
            activationOffload: activationOffload ? "host" : "gpu"
        )
        let model = Plan.ModelSize(
            expertParameters: a.expertParameters, experts: a.experts, transformerParameters: a.transformerParameters,
            expertBytesBF16: a.expertParameters * 2, textEncoderParameters: a.textEncoder.parameters,
            vaeParameters: a.vae.parameters, dim: a.dim, ffnDim: a.ffnDim, heads: a.heads, layers: a.layers
        )
        return Plan(
            setup: setup, model: model, video: video, image: image, lora: lora, memory: memory,
            imageMemory: imageMemory,
            throughput: throughput, schedule: schedule, cache: cache, inference: inference, checks: [],
            constants: constants,
            placement: placement, streaming: videoStreaming, imageStreaming: imageStreaming, host: host,
            alternatives: [],
            sampling: sampling
        )
    }
}

extension Plan {
    /// The plan as one JSON document: snake_case keys, sorted, a final newline.
    public func jsonData() throws -> Data { try planJSON(self) }
}

extension ReportComparison {
    public func jsonData() throws -> Data { try planJSON(self) }
}

func planJSON<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    var data = try encoder.encode(value)
    data.append(0x0A)
    return data
}
