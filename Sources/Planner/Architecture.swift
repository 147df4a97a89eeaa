import Config

/// The dimensions of one Wan diffusion transformer (DiT) and the encoders that feed it.
///
/// Values are those of the official configs (Wan2.2/Wan2.1 repositories) and diffusers'
/// `WanTransformer3DModel` configs; the parameter counts that follow from them are checked
/// against diffusers models built on the meta device (engine/tests/test_lora_param_count.py).
public struct Architecture: Sendable, Equatable {
    public let name: String
    /// Separate DiT checkpoints of this size (2 for the A14B mixture of experts).
    public let experts: Int
    /// Hidden size d.
    public let dim: Int
    /// Hidden size of the feed-forward network.
    public let ffnDim: Int
    public let heads: Int
    public let layers: Int
    /// Sinusoidal timestep embedding width.
    public let freqDim: Int
    /// Width of the text encoder's output (UMT5-XXL: 4096).
    public let textDim: Int
    /// Latent channels in and out of the DiT.
    public let inChannels: Int
    public let outChannels: Int
    /// Patch size (time, height, width) in latent units.
    public let patch: (t: Int, h: Int, w: Int)
    public let vae: VAESpec
    public let textEncoder: TextEncoderSpec
    /// Sampling defaults from the model card, for reference.
    public let sampleShift: Double
    public let sampleSteps: Int

    public var headDim: Int { dim / heads }

    public static func == (a: Architecture, b: Architecture) -> Bool { a.name == b.name }
}

/// A Wan video VAE.
public struct VAESpec: Sendable, Equatable {
    public let name: String
    public let checkpoint: String
    /// All parameters (encoder, decoder and the 1×1 convolutions between them).
    public let parameters: Int
    public let encoderParameters: Int
    /// Compression: frames 4:1 after the first, pixels 8:1 (Wan2.1) or 16:1 (Wan2.2) per side.
    public let temporalStride: Int
    public let spatialStride: Int
    public let latentChannels: Int
    /// Encoder channel width of the first stage and its per-stage multipliers.
    public let baseDim: Int
    public let dimMult: [Int]
    public let residualBlocks: Int
    /// Pixel-unshuffle factor before the first convolution (Wan2.2 VAE: 2, i.e. 12 input channels).
    public let inputPatch: Int
}

/// The UMT5-XXL text encoder that all Wan2.x models use.
public struct TextEncoderSpec: Sendable, Equatable {
    public let name: String
    public let checkpoint: String
    /// Parameters of the encoder as released (one 256,384 × 4096 token embedding and 24 layers).
    public let parameters: Int
    /// Parameters without the token embedding: what the matrix products use per token.
    public let parametersPerToken: Int
    public let dim: Int
    public let maxTokens: Int
}

extension TextEncoderSpec {
    /// UMT5-XXL encoder: vocabulary 256,384, d_model 4096, 64 heads × 64, FFN 10,240 (gated GELU),
    /// 24 layers each with its own 32-bucket relative position bias.
    public static let umt5XXL: TextEncoderSpec = {
        let vocabulary = 256_384
        let d = 4096
        let ffn = 10_240
        let layers = 24
        let heads = 64
        let buckets = 32
        let perLayer =
            4 * d * d  // q, k, v, o (inner dim 64 × 64 = 4096, no biases)
            + 3 * d * ffn  // wi_0, wi_1 (gated), wo
            + 2 * d  // two RMSNorm weights
            + buckets * heads  // relative attention bias
        let body = layers * perLayer + d  // + final norm
        return TextEncoderSpec(
            name: "UMT5-XXL encoder", checkpoint: "models_t5_umt5-xxl-enc-bf16.pth",
            parameters: vocabulary * d + body, parametersPerToken: body, dim: d, maxTokens: 512
        )
    }()
}

extension VAESpec {
    /// Wan2.1 VAE (also used by Wan2.2 A14B): 4×8×8, 16 latent channels.
    public static let wan21 = VAESpec(
        name: "Wan2.1 VAE", checkpoint: "Wan2.1_VAE.pth",
        parameters: 126_892_531, encoderParameters: 53_595_872,
        temporalStride: 4, spatialStride: 8, latentChannels: 16,
        baseDim: 96, dimMult: [1, 2, 4, 4], residualBlocks: 2, inputPatch: 1
    )
    /// Wan2.2 VAE (TI2V-5B): 4×16×16, 48 latent channels.
    public static let wan22 = VAESpec(
        name: "Wan2.2 VAE", checkpoint: "Wan2.2_VAE.pth",
        parameters: 704_688_668, encoderParameters: 149_627_776,
        temporalStride: 4, spatialStride: 16, latentChannels: 48,
        baseDim: 160, dimMult: [1, 2, 4, 4], residualBlocks: 2, inputPatch: 2
    )
}

extension Architecture {
    public static let wan22T2VA14B = Architecture(
        name: ModelArchitecture.wan22T2VA14B.rawValue, experts: 2, dim: 5120, ffnDim: 13_824, heads: 40, layers: 40,
        freqDim: 256, textDim: 4096, inChannels: 16, outChannels: 16, patch: (1, 2, 2),
        vae: .wan21, textEncoder: .umt5XXL, sampleShift: 12.0, sampleSteps: 40
    )
    public static let wan22TI2V5B = Architecture(
        name: ModelArchitecture.wan22TI2V5B.rawValue, experts: 1, dim: 3072, ffnDim: 14_336, heads: 24, layers: 30,
        freqDim: 256, textDim: 4096, inChannels: 48, outChannels: 48, patch: (1, 2, 2),
        vae: .wan22, textEncoder: .umt5XXL, sampleShift: 5.0, sampleSteps: 50
    )
    public static let wan21T2V14B = Architecture(
        name: ModelArchitecture.wan21T2V14B.rawValue, experts: 1, dim: 5120, ffnDim: 13_824, heads: 40, layers: 40,
        freqDim: 256, textDim: 4096, inChannels: 16, outChannels: 16, patch: (1, 2, 2),
        vae: .wan21, textEncoder: .umt5XXL, sampleShift: 5.0, sampleSteps: 50
    )
    public static let wan21T2V1_3B = Architecture(
        name: ModelArchitecture.wan21T2V1_3B.rawValue, experts: 1, dim: 1536, ffnDim: 8960, heads: 12, layers: 30,
        freqDim: 256, textDim: 4096, inChannels: 16, outChannels: 16, patch: (1, 2, 2),
        vae: .wan21, textEncoder: .umt5XXL, sampleShift: 5.0, sampleSteps: 50
    )

    public static let catalog: [Architecture] = [.wan22T2VA14B, .wan22TI2V5B, .wan21T2V14B, .wan21T2V1_3B]

    public static func named(_ architecture: ModelArchitecture) -> Architecture {
        switch architecture {
        case .wan22T2VA14B: .wan22T2VA14B
        case .wan22TI2V5B: .wan22TI2V5B
        case .wan21T2V14B: .wan21T2V14B
        case .wan21T2V1_3B: .wan21T2V1_3B
        }
    }
}

/// One `nn.Linear` of the DiT, named as in diffusers' `WanTransformer3DModel`.
public struct LinearModule: Sendable, Equatable {
    /// Full module name, e.g. "blocks.0.attn1.to_q".
    public let name: String
    public let inFeatures: Int
    public let outFeatures: Int
    /// Which tokens it runs over: the video tokens, the text tokens, or once per sample.
    public let runsOver: TokenKind

    public enum TokenKind: Sendable, Equatable { case video, text, sample }

    public var weightParameters: Int { inFeatures * outFeatures }
}

extension Architecture {
    /// The Linear modules of one transformer block, names relative to the block.
    public var blockLinears: [LinearModule] {
        let d = dim
        return [
            LinearModule(name: "attn1.to_q", inFeatures: d, outFeatures: d, runsOver: .video),
            LinearModule(name: "attn1.to_k", inFeatures: d, outFeatures: d, runsOver: .video),
            LinearModule(name: "attn1.to_v", inFeatures: d, outFeatures: d, runsOver: .video),
            LinearModule(name: "attn1.to_out.0", inFeatures: d, outFeatures: d, runsOver: .video),
            // Cross-attention: queries from the video, keys and values from the text, which the
            // text embedder has already projected to d (so to_k/to_v are d × d too).
            LinearModule(name: "attn2.to_q", inFeatures: d, outFeatures: d, runsOver: .video),
            LinearModule(name: "attn2.to_k", inFeatures: d, outFeatures: d, runsOver: .text),
            LinearModule(name: "attn2.to_v", inFeatures: d, outFeatures: d, runsOver: .text),
            LinearModule(name: "attn2.to_out.0", inFeatures: d, outFeatures: d, runsOver: .video),
            LinearModule(name: "ffn.net.0.proj", inFeatures: d, outFeatures: ffnDim, runsOver: .video),
            LinearModule(name: "ffn.net.2", inFeatures: ffnDim, outFeatures: d, runsOver: .video),
        ]
    }

    /// Every Linear module of one expert with its full name (blocks first, then the rest).
    public var linearModules: [LinearModule] {
        var modules: [LinearModule] = []
        modules.reserveCapacity(layers * 10 + 6)
        for block in 0..<layers {
            for m in blockLinears {
                modules.append(
                    LinearModule(
                        name: "blocks.\(block).\(m.name)", inFeatures: m.inFeatures,
                        outFeatures: m.outFeatures, runsOver: m.runsOver))
            }
        }
        modules += [
            LinearModule(
                name: "condition_embedder.time_embedder.linear_1", inFeatures: freqDim, outFeatures: dim,
                runsOver: .sample),
            LinearModule(
                name: "condition_embedder.time_embedder.linear_"
                    + "2", inFeatures: dim, outFeatures: dim, runsOver: .sample),
            LinearModule(
                name: "condition_embedder.time_proj", inFeatures: dim, outFeatures: 6 * dim, runsOver: .sample),
            LinearModule(
                name: "condition_embedder.text_embedder.linear_1", inFeatures: textDim, outFeatures: dim,
                runsOver: .text),
            LinearModule(
                name: "condition_embedder.text_embedder.linear_2", inFeatures: dim, outFeatures: dim, runsOver: .text),
            LinearModule(
                name: "proj_out", inFeatures: dim, outFeatures: outChannels * patch.t * patch.h * patch.w,
                runsOver: .video),
        ]
        return modules
    }

    /// Modules that exist but are not `nn.Linear` (peft cannot adapt them as Linear), for errors.
    public static let nonLinearModuleNames = [
        "attn1", "attn2", "attn1.to_out", "attn2.to_out", "to_out", "ffn", "ffn.net", "net", "ffn.net.0", "net.0",
        "norm1", "norm2", "norm3", "norm_q", "norm_k", "patch_embedding", "condition_embedder", "time_embedder",
        "text_embedder", "norm_out", "blocks", "rope",
    ]

    /// Parameters of one expert, counted from the dimensions: every weight, bias, norm and table.
    public var expertParameters: Int {
        let d = dim
        let linearWithBias = { (m: LinearModule) in m.inFeatures * m.outFeatures + m.outFeatures }
        let perBlock =
            blockLinears.map(linearWithBias).reduce(0, +)
            + 4 * d  // RMSNorm weights of q and k in both attentions (across heads)
            + 2 * d  // norm2: the cross-attention LayerNorm has weight and bias
            + 6 * d  // scale_shift_table (1, 6, d)
        let patchVolume = patch.t * patch.h * patch.w
        let patchEmbedding = inChannels * patchVolume * d + d  // Conv3d with bias
        let outer =
            linearModules.suffix(6).map(linearWithBias).reduce(0, +)
            + 2 * d  // output scale_shift_table (1, 2, d)
        return layers * perBlock + patchEmbedding + outer
    }

    /// Parameters of all experts.
    public var transformerParameters: Int { experts * expertParameters }
}
