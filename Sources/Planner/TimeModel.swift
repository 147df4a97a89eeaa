import Config

/// The two constants of the model that no datasheet gives; `Calibration` fits them to the
/// measured H100 training step (SPEC §7) and checks the rest of the measurements with them.
public struct ModelConstants: Sendable, Equatable, Codable {
    /// Memory traffic of the elementwise work (norms, modulation, RoPE, casts, residual adds,
    /// the LoRA branches' small products) per token, per layer, per hidden unit, per pass, bytes.
    /// Charged at the GPU's memory bandwidth.
    public var elementwiseBytesPerTokenLayerDim: Double
    /// Activation bytes per token per hidden unit of one block in backward, beyond the FFN
    /// intermediate and the LoRA inputs (see `MemoryModel.blockBytesPerToken`).
    public var workingSetBytesPerTokenDim: Double
    /// The fast blocks with the FFN of the recompute + backward in token chunks (training.ffn_chunk_tokens):
    /// the working set per token per hidden unit, and what each token of one chunk adds per FFN unit.
    /// Fitted to the measured chunked steps (`Calibration.fitChunked`); nil: not measured, the unchunked
    /// model with its FFN term over one chunk is used.
    public var chunkedWorkingSetBytesPerTokenDim: Double? = nil
    public var chunkBytesPerTokenFFN: Double? = nil

    public init(
        elementwiseBytesPerTokenLayerDim: Double, workingSetBytesPerTokenDim: Double,
        chunkedWorkingSetBytesPerTokenDim: Double? = nil, chunkBytesPerTokenFFN: Double? = nil
    ) {
        self.elementwiseBytesPerTokenLayerDim = elementwiseBytesPerTokenLayerDim
        self.workingSetBytesPerTokenDim = workingSetBytesPerTokenDim
        self.chunkedWorkingSetBytesPerTokenDim = chunkedWorkingSetBytesPerTokenDim
        self.chunkBytesPerTokenFFN = chunkBytesPerTokenFFN
    }
}

/// Seconds one GPU group (the Ulysses group) spends on one sample, term by term.
public struct SampleTime: Sendable, Equatable, Codable {
    /// Linear layers (and LoRA) at the GEMM rate.
    public var gemmSeconds: Double
    /// Attention at the attention kernel's rate.
    public var attentionSeconds: Double
    /// Memory-bound elementwise work.
    public var elementwiseSeconds: Double
    /// Ulysses all-to-all exchanges (on the critical path).
    public var ulyssesSeconds: Double
    /// FSDP all-gathers that computation cannot hide.
    public var fsdpExposedSeconds: Double
    /// Encoding (UMT5, VAE), moving offloaded weights onto the GPU, and activation copies to and
    /// from host memory that the compute does not hide.
    public var encodeAndOffloadSeconds: Double
    /// Copies of streamed expert blocks from host memory that the compute does not hide.
    public var weightStreamingSeconds: Double = 0

    public var computeSeconds: Double { gemmSeconds + attentionSeconds + elementwiseSeconds }
    public var totalSeconds: Double {
        computeSeconds + ulyssesSeconds + fsdpExposedSeconds + encodeAndOffloadSeconds + weightStreamingSeconds
    }
}

public enum TimeModel {
    /// Per-GPU bandwidth between nodes, GB/s (400 Gb/s InfiniBand NDR per GPU, achieved).
    public static let interNodeGBs = 40.0

    /// Elementwise passes over the activations: forward 1, recompute 1, backward 2 (the
    /// gradient of an elementwise op reads the saved input and the incoming gradient and
    /// writes one: about twice the forward's traffic).
    public static func elementwisePasses(training: Bool, checkpointing: Bool) -> Double {
        training ? (checkpointing ? 4 : 3) : 1
    }

    static func elementwiseSeconds(
        architecture a: Architecture, tokensPerGPU: Double, passes: Double,
        gpu: GPU, constants: ModelConstants
    ) -> Double {
        passes * tokensPerGPU * Double(a.layers) * constants.elementwiseBytesPerTokenLayerDim * Double(a.dim)
            / (gpu.memoryBandwidthGBs * 1e9)
    }

    /// One denoising forward pass of one expert on one GPU (no LoRA, no Ulysses).
    public static func inferenceForward(
        architecture a: Architecture, gpu: GPU, precision: MixedPrecision,
        tokens: Int, textTokens: Int, constants: ModelConstants
    ) -> SampleTime {
        let f = FlopModel.forward(architecture: a, tokens: tokens, textTokens: textTokens, lora: nil)
        let rate = gpu.matrixTFLOPs(for: precision).rate * 1e12
        return SampleTime(
            gemmSeconds: f.gemm / (rate * gpu.gemmEfficiency),
            attentionSeconds: f.attention / (rate * gpu.attentionEfficiency),
            elementwiseSeconds: elementwiseSeconds(
                architecture: a, tokensPerGPU: Double(tokens), passes: 1, gpu: gpu, constants: constants),
            ulyssesSeconds: 0, fsdpExposedSeconds: 0, encodeAndOffloadSeconds: 0
        )
    }

    /// Fraction of training samples routed to the high-noise expert: P(σ ≥ boundary) when
    /// σ = s·u/(1 + (s−1)·u) with u uniform, i.e. 1 − u* with u* = b / (s − (s−1)·b).
    public static func highNoiseFraction(boundary b: Double, shift s: Double) -> Double {
        1 - b / (s - (s - 1) * b)
    }

    /// One training sample (one expert, forward + recompute + backward) on one Ulysses group. `placement` is
    /// where the engine puts the frozen blocks (nil: all on the GPU, activations offloaded as the fast blocks
    /// default to); `streaming` receives the link's figures when blocks stream.
    public static func trainingSample(
        config: WanLoRAConfig, architecture a: Architecture, gpu: GPU, geometry: ClipGeometry,
        lora: LoRACount, constants: ModelConstants, placement: WeightPlacement? = nil
    ) -> (time: SampleTime, flops: TrainingFlops, streaming: StreamingTime) {
        let hw = config.hardware
        let tr = config.training
        let u = Double(hw.ulyssesDegree)
        let fast = tr.blocks == .fast
        // The transformer reads the text padded to the encoder's full length (512), whatever training.text_length cuts.
        let flops = FlopModel.training(
            architecture: a, tokens: geometry.tokens, textTokens: a.textEncoder.maxTokens,
            lora: lora, checkpointing: tr.gradientCheckpointing, keepsAttention: fast,
            skipsLastFFNProduct: fast && !FlopModel.adaptsLastFFNProduct(targets: config.lora.targets),
            keptLinearBlocks: fast && tr.gradientCheckpointing ? tr.keepLinearBlocks : 0)
        let total = flops.total
        let rate = gpu.matrixTFLOPs(for: tr.mixedPrecision).rate * 1e12
        let gemm = total.gemm / u / (rate * gpu.gemmEfficiency)
        let attention = total.attention / u / (rate * gpu.attentionEfficiency)
        let tokensPerGPU = Double(geometry.tokens) / u
        let elementwise = elementwiseSeconds(
            architecture: a, tokensPerGPU: tokensPerGPU,
            passes: elementwisePasses(training: true, checkpointing: tr.gradientCheckpointing), gpu: gpu,
            constants: constants
        )
        let compute = gemm + attention + elementwise

        let crossesNodes = { (group: Int) in group > hw.gpusPerNode }
        // Ulysses: per layer and pass, q, k, v go out and the attention output comes back
        // (4 tensors of S/U × d, bf16), each GPU sending (U−1)/U of its share.
        var ulysses = 0.0
        if hw.ulyssesDegree > 1 {
            let passes = tr.gradientCheckpointing ? 3.0 : 2.0
            let bytes = passes * Double(a.layers) * 4 * tokensPerGPU * Double(a.dim) * 2 * (u - 1) / u
            let bandwidth = crossesNodes(hw.ulyssesDegree) ? interNodeGBs : gpu.interconnectGBs
            ulysses = bytes / (bandwidth * 1e9)
        }
        // FSDP: each micro-step gathers the expert twice (forward; backward with its recompute),
        // receiving (shards−1)/shards of it. Overlapped with compute; only the excess shows.
        var fsdpExposed = 0.0
        let shards = hw.fsdp ? hw.worldSize : 1
        if shards > 1 {
            let weightBytes = Double(a.expertParameters * MemoryModel.gpuBytesPerWeight(config.model.weightsDtype))
            let bytes = 2 * weightBytes * Double(shards - 1) / Double(shards) / Double(tr.microBatch)
            let bandwidth = crossesNodes(shards) ? interNodeGBs : gpu.interconnectGBs
            fsdpExposed = max(0, bytes / (bandwidth * 1e9) - compute)
        }
        // Encoders and offloaded weights, per sample.
        var encode = 0.0
        let host = gpu.hostLinkGBs * 1e9
        // The encoders' seconds are the cache stage's (CacheModel: measured on the H100, scaled).
        if hw.t5 != .cached {
            encode += CacheModel.umt5Seconds(textLength: tr.textLength, gpu: gpu, precision: tr.mixedPrecision)
            if hw.t5 == .offload { encode += Double(a.textEncoder.parameters * 2) / host / Double(tr.microBatch) }
        }
        if hw.vae != .cached {
            encode += CacheModel.vaeSeconds(
                a.vae, frames: geometry.frames, width: geometry.width, height: geometry.height, gpu: gpu,
                precision: tr.mixedPrecision)
            if hw.vae == .offload { encode += Double(a.vae.encoderParameters * 2) / host / Double(tr.microBatch) }
        }
        if lora.experts > 1, hw.inactiveExpert == .offload {
            // Consecutive samples use different experts with probability 2p(1−p); a switch brings
            // this GPU's shard of the other expert in (the frozen one going out needs no copy).
            let p = highNoiseFraction(boundary: config.model.boundary, shift: tr.timestepShift)
            let shardBytes =
                Double(a.expertParameters * MemoryModel.gpuBytesPerWeight(config.model.weightsDtype)) / Double(shards)
            encode += 2 * p * (1 - p) * shardBytes / host
        }
        // Fast blocks keep each block's input and attention output in host memory: copied out
        // during the forward (about a quarter of the compute) and back during the backward, on a
        // side stream; only what the copies take beyond the compute they overlap shows.
        if fast && tr.gradientCheckpointing && placement?.activationOffload ?? true {
            let linears =
                MemoryModel.keptLinearBytesPerBlock(config: config, architecture: a, tokensPerGPU: tokensPerGPU)
                * Double(max(0, MemoryModel.keptLinearBlocks(config: config, architecture: a) - 1))
            let oneWay =
                (MemoryModel.fastKeptBytesPerBlock(config: config, architecture: a, tokensPerGPU: tokensPerGPU)
                    * Double(a.layers - 1) + linears) / host
            encode += max(0, oneWay - 0.25 * compute) + max(0, oneWay - 0.75 * compute)
        }
        // Streamed blocks: what of their copies the compute does not hide, per micro-step, shared by its samples.
        var streaming = StreamingTime.none
        if let placement, placement.streams {
            streaming = Placement.streamingTime(
                config: config, architecture: a, gpu: gpu, geometry: geometry, flops: flops,
                elementwiseSeconds: elementwise, placement: placement)
        }
        let time = SampleTime(
            gemmSeconds: gemm, attentionSeconds: attention, elementwiseSeconds: elementwise,
            ulyssesSeconds: ulysses, fsdpExposedSeconds: fsdpExposed, encodeAndOffloadSeconds: encode,
            weightStreamingSeconds: streaming.exposedSeconds / Double(tr.microBatch))
        return (time, flops, streaming)
    }
}
