import Config

/// Sampling time and memory per GPU of one layout (`wanlora sample --gpus N --ulysses U [--fsdp]`).
///
/// Each of the `gpus / ulysses` data-parallel groups makes its own videos; the `ulysses` GPUs of a
/// group share each video's tokens; with FSDP every GPU holds 1/`gpus` of both experts.
public struct SampleLayoutEstimate: Sendable, Equatable, Codable {
    public var gpus: Int
    public var ulysses: Int
    public var fsdp: Bool
    /// Classifier-free guidance's two passes as one batch of two (when the memory has room).
    public var cfgBatch: Bool
    /// One denoising step of one video on its Ulysses group: compute, all-to-alls, exposed gathers.
    public var secondsPerStep: Double
    public var ulyssesSecondsPerStep: Double
    public var fsdpExposedSecondsPerStep: Double
    /// steps × secondsPerStep.
    public var denoiseSeconds: Double
    /// The VAE decode of one video, on the group's first GPU.
    public var decodeSeconds: Double
    public var videoSeconds: Double { denoiseSeconds + decodeSeconds }
    /// Videos of all groups per hour.
    public var videosPerHour: Double { Double(dataParallelGroups) * 3600 / videoSeconds }
    public var dataParallelGroups: Int { gpus / ulysses }
    /// Peak memory of one GPU (the largest phase: denoising or decoding).
    public var peakBytesPerGPU: Int
    public var fits: Bool

    /// "8 GPUs: Ulysses 2 × 4 groups, FSDP".
    public var label: String {
        var text = gpus == 1 ? "1 GPU" : "\(gpus) GPUs: "
        if gpus > 1 {
            text +=
                ulysses > 1
                ? "Ulysses \(ulysses) × \(dataParallelGroups) group\(dataParallelGroups == 1 ? "" : "s")"
                : "\(gpus) data-parallel groups"
        }
        return text + (fsdp ? ", FSDP" : "")
    }
}

/// The sampling time model: FLOPs at the GPU's kernel rates (`TimeModel.inferenceForward`), scaled by
/// the measured ratio of the engine's sampling step to that prediction, plus the layouts' exchanges.
public enum SampleTimeModel {
    /// Measured seconds of one 81-frame 1280×720 denoising step (two forwards, the fast inference blocks,
    /// guidance in one batch of two, both experts resident) and of the tiled VAE decode, on `measuredGPU`:
    /// bench/sample_step.py, 2026-12-07 06:02 UTC (docs/BENCHMARKS.md, issue 20). diffusers' blocks took
    /// 24.40 s a step in the same run.
    public static let measuredStepSeconds = 23.22
    public static let measuredDecodeSeconds = 15.49
    /// The card of the measurement (the H100 was not lent that hour; the H200 has the H100's compute).
    public static let measuredGPU = GPU.h200
    /// The measured step's geometry: 81 frames at 1280×720, 512 text tokens.
    public static let measuredTokens = 75_600
    public static let measuredPixelFrames = 81 * 1280 * 720

    /// Measured step / predicted step on `measuredGPU`: what the kernel rates do not capture (launch gaps,
    /// the model's own embedding and output layers, cross-attention's short keys). Applied to every GPU and size.
    public static func calibration(architecture a: Architecture, constants: ModelConstants) -> Double {
        let predicted =
            2
            * TimeModel.inferenceForward(
                architecture: a, gpu: measuredGPU, precision: .bf16, tokens: measuredTokens,
                textTokens: a.textEncoder.maxTokens, constants: constants
            ).totalSeconds
        return measuredStepSeconds / predicted
    }

    /// The estimate of one layout for videos of `geometry` with `steps` steps on `gpu`.
    public static func estimate(
        architecture a: Architecture, gpu: GPU, geometry g: ClipGeometry, steps: Int, textLength: Int,
        gpus: Int, ulysses: Int, fsdp: Bool, constants: ModelConstants
    ) -> SampleLayoutEstimate {
        let u = Double(ulysses)
        // Compute: a Ulysses GPU runs 1/U of the tokens through the linears and 1/U of the heads
        // through the attention, for the two passes of guidance.
        let forward = TimeModel.inferenceForward(
            architecture: a, gpu: gpu, precision: .bf16, tokens: g.tokens, textTokens: a.textEncoder.maxTokens,
            constants: constants)
        let compute = 2 * forward.totalSeconds / u * calibration(architecture: a, constants: constants)
        // Ulysses: q, k, v to head-split and the output back, bf16, both passes, every layer; each GPU sends
        // (U−1)/U of its share over the GPUs' link.
        let exchanged = 4 * Double(g.tokens) / u * Double(a.dim) * 2 * 2 * Double(a.layers) * (u - 1) / u
        let ulyssesSeconds = ulysses > 1 ? exchanged / (gpu.interconnectGBs * 1e9) : 0
        // FSDP: each forward gathers the active expert ((N−1)/N of its bytes arrive), overlapped with compute.
        let expertBytes = Double(a.expertParameters * 2)
        let gather = gpus > 1 && fsdp ? expertBytes * Double(gpus - 1) / Double(gpus) / (gpu.interconnectGBs * 1e9) : 0
        let exposed = max(0, gather - compute)
        let step = compute + ulyssesSeconds + exposed
        let pixelFrames = Double(g.frames * g.width * g.height)
        let rate = gpu.matrixTFLOPs(for: .bf16).rate / measuredGPU.bf16TFLOPs
        let decode = measuredDecodeSeconds * pixelFrames / Double(measuredPixelFrames) / rate

        let memory = SampleMemoryModel.plan(
            architecture: a, geometry: g, textLength: textLength, inactiveExpert: .gpu, vaeTiling: true,
            textEncoderOnGPU: true, ulysses: ulysses, expertShards: fsdp ? gpus : 1, cfgBatch: true)
        let unbatched = SampleMemoryModel.plan(
            architecture: a, geometry: g, textLength: textLength, inactiveExpert: .gpu, vaeTiling: true,
            textEncoderOnGPU: true, ulysses: ulysses, expertShards: fsdp ? gpus : 1, cfgBatch: false)
        let usable = gpu.memoryBytes - MemoryModel.reservedBytes
        let batched = memory.peakBytes <= usable
        return SampleLayoutEstimate(
            gpus: gpus, ulysses: ulysses, fsdp: fsdp, cfgBatch: batched, secondsPerStep: step,
            ulyssesSecondsPerStep: ulyssesSeconds, fsdpExposedSecondsPerStep: exposed,
            denoiseSeconds: Double(steps) * step, decodeSeconds: decode,
            peakBytesPerGPU: batched ? memory.peakBytes : unbatched.peakBytes,
            fits: (batched ? memory.peakBytes : unbatched.peakBytes) <= usable)
    }

    /// The layouts `wanlora plan` shows for `worldSize` GPUs: one GPU; every GPU its own videos; the
    /// largest Ulysses degree that divides the GPUs and the heads; each with and without FSDP.
    public static func layouts(
        architecture a: Architecture, gpu: GPU, geometry g: ClipGeometry, steps: Int, textLength: Int,
        worldSize: Int, constants: ModelConstants
    ) -> [SampleLayoutEstimate] {
        var shapes: [(Int, Int, Bool)] = [(1, 1, false)]
        if worldSize > 1 {
            let degree = (1...worldSize).last { worldSize % $0 == 0 && a.heads % $0 == 0 && $0 <= 8 } ?? 1
            for fsdp in [false, true] {
                shapes.append((worldSize, 1, fsdp))
                if degree > 1 { shapes.append((worldSize, degree, fsdp)) }
            }
        }
        return shapes.map { gpus, ulysses, fsdp in
            estimate(
                architecture: a, gpu: gpu, geometry: g, steps: steps, textLength: textLength, gpus: gpus,
                ulysses: ulysses, fsdp: fsdp, constants: constants)
        }
    }
}
