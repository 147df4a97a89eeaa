import Config

/// The measurements the model is calibrated on (SPEC §7 and §8: one H100 80GB and one H200,
/// random weights, real A14B expert shapes, diffusers 0.42, torch 2.11, bf16, SDPA; and
/// `bench/engine_step.py` on one H100 80GB, 2026-11-25, docs/BENCHMARKS.md), the fit of the
/// model's two free constants for each block implementation, and the model's figures for every
/// measurement.
public enum Calibration {
    public enum Kind: String, Sendable, Codable {
        /// One LoRA training step of one expert, one sample, gradient checkpointing.
        case trainingStep = "training step"
        /// One forward pass of one expert (a denoising step without CFG).
        case inferenceForward = "inference forward"
    }

    public struct Measurement: Sendable, Equatable, Codable {
        public var name: String
        public var kind: Kind
        public var gpu: String
        public var frames: Int
        public var seconds: Double?
        /// Peak `torch.cuda.max_memory_allocated()`, GiB.
        public var peakGiB: Double?
        /// The run ran out of memory.
        public var outOfMemory: Bool
        /// Whether the fit uses it (the others only check the model).
        public var usedForFit: Bool
        /// The layout: GPUs of one node, Ulysses degree, FSDP. `seconds` is one sample on one
        /// Ulysses group (with data parallelism: the step time, each group training its sample).
        public var gpus: Int = 1
        public var ulysses: Int = 1
        public var fsdp: Bool = false
        /// The engine's block implementation it measured.
        public var blocks: BlockImplementation = .diffusers
        /// Largest |model − measured| / measured the tests accept (0.15 unless said).
        public var tolerance: Double = 0.15
        /// Weight streaming (bench/stream_step.py): the GPU memory cap the engine placed the blocks under
        /// (`set_per_process_memory_fraction` and the rule's limit), GiB; nil: uncapped.
        public var limitGiB: Double? = nil
        /// The engine's placement as it reported it (its rule's resident blocks; 40 uncapped).
        public var residentBlocks: Int? = nil
        /// Host memory pinned by the run (streamed blocks + kept activations), GiB.
        public var hostPinnedGiB: Double? = nil
        /// The FFN of a block's recompute + backward in chunks of this many tokens (0: all at once).
        public var ffnChunkTokens: Int = 0
    }

    public static let measurements: [Measurement] = [
        Measurement(
            name: "train 49 frames, H100", kind: .trainingStep, gpu: "H100", frames: 49,
            seconds: 24.2, peakGiB: 61.3, outOfMemory: false, usedForFit: true),
        Measurement(
            name: "train 81 frames, H100", kind: .trainingStep, gpu: "H100", frames: 81,
            seconds: nil, peakGiB: nil, outOfMemory: true, usedForFit: false),
        Measurement(
            name: "train 81 frames, H200", kind: .trainingStep, gpu: "H200", frames: 81,
            seconds: 53.1, peakGiB: 82.4, outOfMemory: false, usedForFit: false),
        Measurement(
            name: "forward 49 frames, H100", kind: .inferenceForward, gpu: "H100", frames: 49,
            seconds: 5.8, peakGiB: nil, outOfMemory: false, usedForFit: false),
        Measurement(
            name: "forward 81 frames, H100", kind: .inferenceForward, gpu: "H100", frames: 81,
            seconds: 12.5, peakGiB: nil, outOfMemory: false, usedForFit: false),
        // Issue 13, 2 × H100 80GB (one host, NVLink), the engine started by `wanlora train`, 8-bit AdamW,
        // 2026-11-25: bench/dist_train.py, bench/results/dist_train-2026-11-25-2xH100.json (diffusers blocks).
        Measurement(
            name: "train 49 frames, H100, engine", kind: .trainingStep, gpu: "H100", frames: 49,
            seconds: 24.69, peakGiB: 60.13, outOfMemory: false, usedForFit: false),
        Measurement(
            name: "train 49 frames, 2 × H100, FSDP", kind: .trainingStep, gpu: "H100", frames: 49,
            seconds: 25.49, peakGiB: 48.87, outOfMemory: false, usedForFit: false, gpus: 2, fsdp: true),
        Measurement(
            name: "train 49 frames, 2 × H100, Ulysses 2", kind: .trainingStep, gpu: "H100", frames: 49,
            seconds: 13.25, peakGiB: 43.7, outOfMemory: false, usedForFit: false, gpus: 2, ulysses: 2),
        Measurement(
            name: "train 81 frames, 2 × H100, Ulysses 2", kind: .trainingStep, gpu: "H100", frames: 81,
            seconds: 29.11, peakGiB: 53.8, outOfMemory: false, usedForFit: false, gpus: 2, ulysses: 2),
        // Issue 13 again with the fast blocks (Ulysses inside them), same machine and lease, 2026-11-25:
        // bench/results/dist_train-2026-11-25-2xH100-fast.json. Each case warmed up on an 81-frame step, so
        // the run's peak (max_memory_allocated) is the 81-frame one; the 49-frame rows carry time only.
        Measurement(
            name: "train 49 frames, H100, fast, 2-GPU host", kind: .trainingStep, gpu: "H100", frames: 49,
            seconds: 18.76, peakGiB: nil, outOfMemory: false, usedForFit: false, blocks: .fast),
        Measurement(
            name: "train 81 frames, H100, fast, 2-GPU host", kind: .trainingStep, gpu: "H100", frames: 81,
            seconds: 41.63, peakGiB: 49.49, outOfMemory: false, usedForFit: false, blocks: .fast),
        Measurement(
            name: "train 49 frames, 2 × H100, fast, FSDP", kind: .trainingStep, gpu: "H100", frames: 49,
            seconds: 19.13, peakGiB: nil, outOfMemory: false, usedForFit: false, gpus: 2, fsdp: true, blocks: .fast),
        Measurement(
            name: "train 81 frames, 2 × H100, fast, FSDP", kind: .trainingStep, gpu: "H100", frames: 81,
            seconds: 42.44, peakGiB: 37.95, outOfMemory: false, usedForFit: false, gpus: 2, fsdp: true, blocks: .fast),
        Measurement(
            name: "train 49 frames, 2 × H100, fast, Ulysses 2", kind: .trainingStep, gpu: "H100", frames: 49,
            seconds: 10.27, peakGiB: nil, outOfMemory: false, usedForFit: false, gpus: 2, ulysses: 2, blocks: .fast),
        Measurement(
            name: "train 81 frames, 2 × H100, fast, Ulysses 2", kind: .trainingStep, gpu: "H100", frames: 81,
            seconds: 22.14, peakGiB: 38.72, outOfMemory: false, usedForFit: false, gpus: 2, ulysses: 2, blocks: .fast),
        Measurement(
            name: "train 49 frames, 2 × H100, fast, FSDP + Ulysses 2", kind: .trainingStep, gpu: "H100",
            frames: 49, seconds: 10.30, peakGiB: nil, outOfMemory: false, usedForFit: false, gpus: 2,
            ulysses: 2, fsdp: true, blocks: .fast),
        Measurement(
            name: "train 81 frames, 2 × H100, fast, FSDP + Ulysses 2", kind: .trainingStep, gpu: "H100",
            frames: 81, seconds: 22.14, peakGiB: 27.19, outOfMemory: false, usedForFit: false, gpus: 2,
            ulysses: 2, fsdp: true, blocks: .fast),
        // bench/engine_step.py, one H100 80GB HBM3, torch 2.11, 2026-11-25 (docs/BENCHMARKS.md);
        // peaks are max_memory_allocated in GiB (44,172,721,152 B = 41.14 GiB).
        Measurement(
            name: "bench: train 49 frames, H100, diffusers", kind: .trainingStep, gpu: "H100", frames: 49,
            seconds: 24.62, peakGiB: 60.19, outOfMemory: false, usedForFit: false),
        Measurement(
            name: "bench: train 81 frames, H100, diffusers", kind: .trainingStep, gpu: "H100", frames: 81,
            seconds: nil, peakGiB: nil, outOfMemory: true, usedForFit: false),
        Measurement(
            name: "bench: train 49 frames, H100, fast", kind: .trainingStep, gpu: "H100", frames: 49,
            seconds: 18.24, peakGiB: 41.14, outOfMemory: false, usedForFit: true, blocks: .fast),
        Measurement(
            name: "bench: train 81 frames, H100, fast", kind: .trainingStep, gpu: "H100", frames: 81,
            seconds: 40.68, peakGiB: 49.62, outOfMemory: false, usedForFit: false, blocks: .fast),
        // An image: per-step costs outside the blocks (optimizer, embedders, launches) weigh more
        // at 3,600 tokens than the model's per-token terms say.
        Measurement(
            name: "bench: train image, H100, fast", kind: .trainingStep, gpu: "H100", frames: 1,
            seconds: 0.77, peakGiB: 28.39, outOfMemory: false, usedForFit: false, blocks: .fast,
            tolerance: 0.3),
        Measurement(
            name: "bench: train image, H100, diffusers", kind: .trainingStep, gpu: "H100", frames: 1,
            seconds: 0.95, peakGiB: 29.71, outOfMemory: false, usedForFit: false, tolerance: 0.3),
        // Weight streaming (issue 18): bench/stream_step.py on one H100 80GB HBM3, torch 2.11, 2026-12-07 02:46 UTC
        // (docs/BENCHMARKS.md "Weight streaming", bench/results/2026-12-07-h100-streaming/stream-table.json): fast
        // blocks, the FFN backward in 16,384-token chunks, activations in pinned host memory, caps emulated with
        // set_per_process_memory_fraction and given to the engine's rule; dropout 0, 8-bit AdamW, the high-noise
        // expert only (`referenceConfig`). The two uncapped steps fit the chunked working set; the capped ones are
        // predictions at the planner's own placement. Host: pinned weights + activations. The same cases again at
        // 08:30 UTC (bench/results/2026-12-07-h100-musubi/cap-40.json, 2026-12-07-h100-streaming/ours-24-uncapped-
        // keep.json) gave the same placements, peaks and pinned bytes, and times within 1% (18.43 s, 18.47 s).
        Measurement(
            name: "stream: train 49 frames, H100, FFN chunks", kind: .trainingStep, gpu: "H100", frames: 49,
            seconds: 18.32, peakGiB: 38.06, outOfMemory: false, usedForFit: true, blocks: .fast, tolerance: 0.1,
            residentBlocks: 40, hostPinnedGiB: 35.08, ffnChunkTokens: 16_384),
        Measurement(
            name: "stream: train 81 frames, H100, FFN chunks", kind: .trainingStep, gpu: "H100", frames: 81,
            seconds: 40.75, peakGiB: 44.65, outOfMemory: false, usedForFit: true, blocks: .fast, tolerance: 0.1,
            residentBlocks: 40, hostPinnedGiB: 56.68, ffnChunkTokens: 16_384),
        Measurement(
            name: "stream: train 49 frames within 24 GiB, H100", kind: .trainingStep, gpu: "H100", frames: 49,
            seconds: 18.32, peakGiB: 21.04, outOfMemory: false, usedForFit: false, blocks: .fast, tolerance: 0.1,
            limitGiB: 24, residentBlocks: 12, hostPinnedGiB: 18.33 + 35.08, ffnChunkTokens: 16_384),
        Measurement(
            name: "stream: train 49 frames within 40 GiB, H100", kind: .trainingStep, gpu: "H100", frames: 49,
            seconds: 18.29, peakGiB: 37.41, outOfMemory: false, usedForFit: false, blocks: .fast, tolerance: 0.1,
            limitGiB: 40, residentBlocks: 37, hostPinnedGiB: 1.96 + 35.08, ffnChunkTokens: 16_384),
        Measurement(
            name: "stream: train 81 frames within 24 GiB, H100", kind: .trainingStep, gpu: "H100", frames: 81,
            seconds: 40.88, peakGiB: 20.43, outOfMemory: false, usedForFit: false, blocks: .fast, tolerance: 0.1,
            limitGiB: 24, residentBlocks: 1, hostPinnedGiB: 25.53 + 56.68, ffnChunkTokens: 16_384),
    ]

    /// The peak resident memory of the process in the 24 GiB, 81-frame run (its largest pinned set, 82.21 GiB):
    /// what the host-memory model must cover besides the pinned buffers.
    public static let streamingProcessPeakRSSGiB = 85.1

    /// The setting of the measurements: diffusers defaults for a LoRA on one A14B expert —
    /// attention targets at rank 16 (peft's default dropout 0), AdamW 8-bit, bf16 weights and
    /// residual, gradient checkpointing, one GPU, inputs already encoded, 1280×720, 512 tokens.
    public static func referenceConfig(
        gpu: String, frames: Int, gpus: Int = 1, ulysses: Int = 1,
        fsdp: Bool = false, blocks: BlockImplementation = .diffusers
    ) -> WanLoRAConfig {
        var c = WanLoRAConfig.preset(.h100)
        c.hardware.gpu = gpu
        c.hardware.gpusPerNode = gpus
        c.hardware.nodes = 1
        c.hardware.ulyssesDegree = ulysses
        c.hardware.fsdp = fsdp
        c.hardware.t5 = .cached
        c.hardware.vae = .cached
        c.training.expert = .high
        c.training.frames = frames
        c.training.width = 1280
        c.training.height = 720
        c.training.textLength = 512
        c.training.microBatch = 1
        c.training.optimizer = .adamw8bit
        c.training.mixedPrecision = .bf16
        c.training.gradientCheckpointing = true
        c.training.residualDtype = .bf16
        c.training.blocks = blocks
        c.lora.rank = 16
        c.lora.alpha = 16
        c.lora.dropout = 0
        c.lora.targets = ["to_q", "to_k", "to_v", "to_out.0"]
        return c
    }

    /// The two constants, fitted to the 49-frame H100 training step: the elementwise traffic
    /// to its time (24.2 s) and the block working set to its peak (61.3 GiB). Everything else
    /// in the model comes from dimensions, datasheets and the kernel benchmarks.
    public static let fitted: ModelConstants = fit(measurements[0])

    /// The same two constants for the engine's fast blocks, fitted to their 49-frame H100 step
    /// (18.24 s, 41.14 GiB). The time constant also absorbs what the attention and GEMM kernels
    /// fall short of the kernel benchmarks inside the step (docs/BENCHMARKS.md splits it). With the FFN in
    /// chunks, the working set's two constants come from the chunked 49- and 81-frame steps (`fitChunked`).
    public static let fittedFast: ModelConstants = fitChunked(
        fit(measurements.first { $0.usedForFit && $0.blocks == .fast && $0.ffnChunkTokens == 0 }!),
        measurements.filter { $0.usedForFit && $0.ffnChunkTokens > 0 })

    /// The chunked working set from two uncapped peaks at different clip lengths: what is left of each peak
    /// beyond the rest of the budget is tokens × w·d + chunk × q·ffn; two clips give w and q.
    static func fitChunked(_ constants: ModelConstants, _ points: [Measurement]) -> ModelConstants {
        guard points.count == 2 else { return constants }
        let a = Architecture.wan22T2VA14B
        var zero = constants
        zero.chunkedWorkingSetBytesPerTokenDim = 0
        zero.chunkBytesPerTokenFFN = 0
        let rest = points.map { point -> (tokens: Double, bytes: Double, chunk: Double) in
            var config = referenceConfig(gpu: point.gpu, frames: point.frames, blocks: .fast)
            config.training.ffnChunkTokens = point.ffnChunkTokens
            let geometry = try! ClipGeometry(frames: point.frames, width: 1280, height: 720, architecture: a)
            let lora = try! LoRACount.count(
                architecture: a, targets: config.lora.targets, rank: config.lora.rank, experts: 1)
            let budget = MemoryModel.budget(
                config: config, architecture: a, gpu: try! GPU.named(point.gpu), geometry: geometry,
                lora: lora, constants: zero)
            return (
                Double(geometry.tokens), point.peakGiB! * Double(1 << 30) - Double(budget.peakBytes),
                Double(min(geometry.tokens, point.ffnChunkTokens))
            )
        }
        let perToken = (rest[1].bytes - rest[0].bytes) / (rest[1].tokens - rest[0].tokens)
        var fitted = constants
        fitted.chunkedWorkingSetBytesPerTokenDim = perToken / Double(a.dim)
        fitted.chunkBytesPerTokenFFN = (rest[0].bytes - rest[0].tokens * perToken) / (rest[0].chunk * Double(a.ffnDim))
        return fitted
    }

    /// The constants of a block implementation.
    public static func constants(for blocks: BlockImplementation) -> ModelConstants {
        blocks == .fast ? fittedFast : fitted
    }

    static func fit(_ point: Measurement) -> ModelConstants {
        let config = referenceConfig(gpu: point.gpu, frames: point.frames, blocks: point.blocks)
        let a = Architecture.wan22T2VA14B
        let gpu = try! GPU.named(point.gpu)
        let geometry = try! ClipGeometry(frames: point.frames, width: 1280, height: 720, architecture: a)
        let lora = try! LoRACount.count(
            architecture: a, targets: config.lora.targets, rank: config.lora.rank, experts: 1)
        let zero = ModelConstants(elementwiseBytesPerTokenLayerDim: 0, workingSetBytesPerTokenDim: 0)

        let time0 = TimeModel.trainingSample(
            config: config, architecture: a, gpu: gpu, geometry: geometry, lora: lora, constants: zero
        ).time
        let passes = TimeModel.elementwisePasses(training: true, checkpointing: true)
        let elementwise =
            (point.seconds! - time0.totalSeconds) * gpu.memoryBandwidthGBs * 1e9
            / (passes * Double(geometry.tokens) * Double(a.layers) * Double(a.dim))

        let memory0 = MemoryModel.budget(
            config: config, architecture: a, gpu: gpu, geometry: geometry, lora: lora, constants: zero)
        let peak = point.peakGiB! * Double(1 << 30)
        let workingSet = (peak - Double(memory0.trainingPhaseBytes)) / (Double(geometry.tokens) * Double(a.dim))
        return ModelConstants(elementwiseBytesPerTokenLayerDim: elementwise, workingSetBytesPerTokenDim: workingSet)
    }

    /// The model's figures for one measurement.
    public struct Check: Sendable, Equatable, Codable {
        public var measurement: Measurement
        public var modelSeconds: Double
        public var modelPeakGiB: Double?
        public var modelFits: Bool?
        /// (model − measured) / measured, when both exist.
        public var secondsError: Double?
        public var peakError: Double?
        /// Streaming runs: the planner's resident blocks, its pinned host memory at that placement, and the
        /// host memory's error.
        public var modelResidentBlocks: Int? = nil
        public var modelHostPinnedGiB: Double? = nil
        public var hostError: Double? = nil
    }

    /// A streaming measurement's placement as the planner makes it (the engine's rule under the cap, checked
    /// against the planner's peak), activations offloaded (the bench's setting), bf16 host weights: the checks
    /// compare the planner's own choice, not the engine's reported one, with what was measured.
    static func plannedPlacement(
        _ m: Measurement, config: WanLoRAConfig, architecture a: Architecture, gpu: GPU,
        geometry: ClipGeometry, lora: LoRACount, constants: ModelConstants
    ) -> WeightPlacement? {
        guard m.residentBlocks != nil else { return nil }
        return Placement.weights(
            config: config, architecture: a, gpu: gpu, geometry: geometry, lora: lora,
            constants: constants, activationOffload: true)
    }

    public static func check(_ m: Measurement, constants: ModelConstants? = nil) -> Check {
        let constants = constants ?? Self.constants(for: m.blocks)
        let a = Architecture.wan22T2VA14B
        let gpu = try! GPU.named(m.gpu)
        let geometry = try! ClipGeometry(frames: m.frames, width: 1280, height: 720, architecture: a)
        switch m.kind {
        case .inferenceForward:
            let t = TimeModel.inferenceForward(
                architecture: a, gpu: gpu, precision: .bf16, tokens: geometry.tokens,
                textTokens: 512, constants: constants
            ).totalSeconds
            return Check(
                measurement: m, modelSeconds: t, modelPeakGiB: nil, modelFits: nil,
                secondsError: m.seconds.map { (t - $0) / $0 }, peakError: nil)
        case .trainingStep:
            var config = referenceConfig(
                gpu: m.gpu, frames: m.frames, gpus: m.gpus, ulysses: m.ulysses,
                fsdp: m.fsdp, blocks: m.blocks)
            config.training.ffnChunkTokens = m.ffnChunkTokens
            if let limit = m.limitGiB { config.hardware.gpuMemoryLimit = limit }
            let lora = try! LoRACount.count(
                architecture: a, targets: config.lora.targets, rank: config.lora.rank, experts: 1)
            let placement = plannedPlacement(
                m, config: config, architecture: a, gpu: gpu, geometry: geometry, lora: lora,
                constants: constants)
            let t = TimeModel.trainingSample(
                config: config, architecture: a, gpu: gpu, geometry: geometry, lora: lora,
                constants: constants, placement: placement
            ).time.totalSeconds
            let budget = MemoryModel.budget(
                config: config, architecture: a, gpu: gpu, geometry: geometry, lora: lora,
                constants: constants, placement: placement)
            let peak = Double(budget.peakBytes) / Double(1 << 30)
            var check = Check(
                measurement: m, modelSeconds: t, modelPeakGiB: peak, modelFits: budget.fits,
                secondsError: m.seconds.map { (t - $0) / $0 }, peakError: m.peakGiB.map { (peak - $0) / $0 })
            if let placement, let measured = m.hostPinnedGiB {
                let host = Placement.hostMemory(
                    config: config, architecture: a, geometry: geometry, lora: lora,
                    placement: placement, availableBytes: nil)
                let pinned = host.items.filter { $0.name.hasSuffix("(pinned)") }.map(\.bytes).reduce(0, +)
                check.modelResidentBlocks = placement.residentBlocks
                check.modelHostPinnedGiB = Double(pinned) / Double(1 << 30)
                check.hostError = (check.modelHostPinnedGiB! - measured) / measured
            }
            return check
        }
    }

    public static var checks: [Check] { measurements.map { check($0) } }
}
