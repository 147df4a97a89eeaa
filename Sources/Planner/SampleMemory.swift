import Config

/// Where the expert that the current denoising step does not use waits while sampling on one GPU.
public enum InactiveExpertPlacement: String, Sendable, Codable, CaseIterable {
    /// Both experts stay on the GPU: no transfers, twice the weights.
    case gpu
    /// The inactive expert waits in host memory; switching experts moves one over PCIe.
    case cpu
}

/// One line of a sampling memory budget, with the phase in which it is on the GPU.
public struct SampleMemoryItem: Sendable, Equatable, Codable {
    public enum Phase: String, Sendable, Codable, CaseIterable {
        /// UMT5 encodes the prompts (before the experts are loaded).
        case encode
        /// The experts denoise the latents.
        case denoise
        /// The VAE decodes the latents into frames.
        case decode
    }

    public var name: String
    public var phase: Phase
    public var bytes: Int
    /// How the number is made, in words.
    public var basis: String
}

/// Peak GPU memory of sampling one video with one placement of the models.
///
/// Sampling runs in three phases that never overlap: all prompts are encoded first (UMT5 on the
/// GPU, nothing else loaded), then each video is denoised (the active expert, the other one too
/// when it stays on the GPU, the VAE, one transformer block's activations) and decoded (the VAE
/// and its workspace; the experts only when they stay on the GPU). The peak is the largest phase.
public struct SampleMemoryPlan: Sendable, Equatable, Codable {
    public var inactiveExpert: InactiveExpertPlacement
    public var vaeTiling: Bool
    public var textEncoderOnGPU: Bool
    public var items: [SampleMemoryItem]

    public func bytes(in phase: SampleMemoryItem.Phase) -> Int {
        items.filter { $0.phase == phase }.map(\.bytes).reduce(0, +)
    }

    public var peakBytes: Int { SampleMemoryItem.Phase.allCases.map { bytes(in: $0) }.max() ?? 0 }

    /// "both experts on the GPU, VAE tiling off".
    public var label: String {
        (inactiveExpert == .gpu ? "both experts on the GPU" : "inactive expert in host memory")
            + ", VAE tiling \(vaeTiling ? "on" : "off")"
    }
}

/// A smaller video the user could sample instead, with its least peak (for "does not fit" errors).
public struct SampleAlternative: Sendable, Equatable, Codable {
    public var label: String
    public var peakBytes: Int
}

public enum SampleMemoryModel {
    /// Bytes alive per token per hidden unit per sample during an inference forward of the engine's fast
    /// blocks (no gradients, blocks one after another): the bf16 residual, the FFN's 2.7× wider hidden
    /// activation before and after GELU, the attention's q, k, v and output. Measured 15.2 B (bench/sample_step.py,
    /// 2026-12-07, 81 frames, guidance batched: (peak − weights) / (2 × 75,600 × 5120)); diffusers' blocks 22.5 B.
    public static let activationBytesPerTokenDim = 16.0
    /// Feature maps alive at once in the VAE decoder's last (full-resolution) stage.
    public static let decoderLiveMaps = 5
    /// diffusers' AutoencoderKLWan tiling: 256 × 256 pixel tiles every 192 pixels.
    public static let tileSize = 256
    public static let tileStride = 192

    /// The plan of one placement. Weights are bf16 (sampling does not use fp8 weights), the VAE
    /// float32 as Wan2.2 runs it.
    ///
    /// Several GPUs: a Ulysses GPU holds 1/`ulysses` of the tokens' activations; with FSDP
    /// (`expertShards` GPUs) 1/`expertShards` of each expert's weights plus one gathered block.
    /// `cfgBatch`: guidance's two passes in one batch, twice the activations.
    public static func plan(
        architecture a: Architecture, geometry g: ClipGeometry, textLength: Int,
        inactiveExpert: InactiveExpertPlacement, vaeTiling: Bool, textEncoderOnGPU: Bool,
        ulysses: Int = 1, expertShards: Int = 1, cfgBatch: Bool = false
    ) -> SampleMemoryPlan {
        var items: [SampleMemoryItem] = []
        func add(_ name: String, _ phase: SampleMemoryItem.Phase, _ bytes: Int, _ basis: String) {
            items.append(SampleMemoryItem(name: name, phase: phase, bytes: bytes, basis: basis))
        }
        let t5 = a.textEncoder
        if textEncoderOnGPU {
            add("UMT5 text encoder", .encode, t5.parameters * 2, "\(t5.parameters) parameters × 2 B (bf16)")
            let workspace = textLength * (6 * t5.dim + 2 * 10_240) * 2 + 64 * textLength * textLength * 4
            add(
                "UMT5 activations", .encode, workspace,
                "\(textLength) tokens × (6 × \(t5.dim) + 2 × 10,240) × 2 B + 64 heads × \(textLength)² scores × 4 B")
        }
        let shards = max(expertShards, 1)
        let expertBytes = a.expertParameters * 2 / shards
        let vaeBytes = a.vae.parameters * 4
        let perShard = shards > 1 ? " / \(shards) GPUs (FSDP)" : ""
        add("active expert weights", .denoise, expertBytes, "\(a.expertParameters) parameters × 2 B (bf16)\(perShard)")
        if inactiveExpert == .gpu {
            add("inactive expert weights", .denoise, expertBytes, "the other expert, also on the GPU\(perShard)")
        }
        if shards > 1 {
            add(
                "gathered block", .denoise, a.expertParameters * 2 / a.layers,
                "FSDP gathers one of the \(a.layers) blocks at a time, whole")
        }
        add("VAE weights", .denoise, vaeBytes, "\(a.vae.parameters) parameters × 4 B (float32)")
        let perToken = activationBytesPerTokenDim * Double(a.dim)
        let degree = max(ulysses, 1)
        let tokens = (g.tokens + degree - 1) / degree
        let batch = cfgBatch ? 2 : 1
        add(
            "one block's activations", .denoise, Int(Double(tokens * batch) * perToken),
            "\(tokens) tokens\(degree > 1 ? " (1/\(degree), Ulysses)" : "")"
                + "\(batch > 1 ? " × 2 (guidance batched)" : "") × \(Int(perToken)) B "
                + "(\(Int(activationBytesPerTokenDim)) B × \(a.dim) hidden units; measured)")
        let latentElements = g.latentChannels * g.latentFrames * g.latentHeight * g.latentWidth
        add(
            "latents, noise and solver state", .denoise, latentElements * 4 * 6,
            "6 float32 copies of \(g.latentChannels) × \(g.latentFrames) × \(g.latentHeight) × \(g.latentWidth) latents"
        )
        add(
            "text embeddings", .denoise, 2 * textLength * a.dim * 2,
            "prompt and negative prompt, \(textLength) tokens × \(a.dim) × 2 B")

        if inactiveExpert == .gpu {
            add(
                "both experts' weights", .decode, 2 * expertBytes,
                "they stay on the GPU while the VAE decodes\(perShard)")
        }
        add("VAE weights", .decode, vaeBytes, "\(a.vae.parameters) parameters × 4 B (float32)")
        let videoBytes = g.frames * g.height * g.width * 3 * 4
        let chunk = min(g.frames, a.vae.temporalStride)
        let mapBytes = { (h: Int, w: Int) in chunk * h * w * a.vae.baseDim * 4 }
        if vaeTiling {
            let tileH = min(tileSize, g.height)
            let tileW = min(tileSize, g.width)
            add(
                "VAE decode workspace", .decode, decoderLiveMaps * mapBytes(tileH, tileW),
                "\(decoderLiveMaps) maps of \(chunk) frames × \(tileH) "
                    + "× \(tileW) px × \(a.vae.baseDim) channels × 4 B (one tile)")
            let overlap = Double(tileSize * tileSize) / Double(tileStride * tileStride)
            let tiles = g.height > tileSize || g.width > tileSize ? overlap : 1
            add(
                "decoded tiles", .decode, Int(Double(videoBytes) * tiles),
                "the overlapping tiles of the video before blending (× \(String(format: "%.2f", tiles)))")
        } else {
            add(
                "VAE decode workspace", .decode, decoderLiveMaps * mapBytes(g.height, g.width),
                "\(decoderLiveMaps) maps of \(chunk) frames × \(g.height) "
                    + "× \(g.width) px × \(a.vae.baseDim) channels × 4 B (estimate)")
        }
        add("decoded video", .decode, videoBytes, "\(g.frames) frames × \(g.height) × \(g.width) × 3 × 4 B (float32)")
        return SampleMemoryPlan(
            inactiveExpert: inactiveExpert, vaeTiling: vaeTiling, textEncoderOnGPU: textEncoderOnGPU, items: items)
    }

    /// Every placement the user allows, fastest first: both experts on the GPU before swapping
    /// them, untiled decoding before tiled. `nil` leaves a choice open.
    public static func candidates(
        architecture a: Architecture, geometry g: ClipGeometry, textLength: Int,
        inactiveExpert: InactiveExpertPlacement?, vaeTiling: Bool?, textEncoderOnGPU: Bool
    ) -> [SampleMemoryPlan] {
        var plans: [SampleMemoryPlan] = []
        for placement in InactiveExpertPlacement.allCases where inactiveExpert == nil || inactiveExpert == placement {
            for tiling in [false, true] where vaeTiling == nil || vaeTiling == tiling {
                plans.append(
                    plan(
                        architecture: a, geometry: g, textLength: textLength, inactiveExpert: placement,
                        vaeTiling: tiling, textEncoderOnGPU: textEncoderOnGPU))
            }
        }
        return plans
    }

    /// Smaller videos (480P, 49 frames) with the least memory each needs, for the remedy of an
    /// error; the current size is left out.
    public static func alternatives(architecture a: Architecture, current g: ClipGeometry, textLength: Int)
        -> [SampleAlternative]
    {
        let sizes = [(832, 480, g.frames), (1280, 720, 49), (832, 480, 49)]
        var out: [SampleAlternative] = []
        for (width, height, frames) in sizes where !(width == g.width && height == g.height && frames == g.frames) {
            guard frames <= g.frames, width * height <= g.width * g.height,
                let geometry = try? ClipGeometry(frames: frames, width: width, height: height, architecture: a)
            else { continue }
            let least = plan(
                architecture: a, geometry: geometry, textLength: textLength, inactiveExpert: .cpu,
                vaeTiling: true, textEncoderOnGPU: false)
            let label = "\(width)x\(height), \(frames) frames (--resolution \(width)x\(height) --frames \(frames))"
            if !out.contains(where: { $0.label == label }) {
                out.append(SampleAlternative(label: label, peakBytes: least.peakBytes))
            }
        }
        return out
    }
}
