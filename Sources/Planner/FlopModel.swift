/// Floating-point operations of one sample through one expert, by kind of work.
///
/// A matrix product of (n × k) by (k × m) counts 2·n·k·m. Attention over S tokens of width d
/// counts 4·S²·d forward (Q·Kᵀ and P·V). Elementwise work (norms, RoPE, modulation, casts) is
/// not counted here: it is memory-bound and the time model charges it by bytes.
public struct FlopBreakdown: Sendable, Equatable, Codable {
    /// Linear layers over the video tokens (blocks, patch embedding, output projection).
    public var linear: Double
    /// Linear layers over text tokens and per-sample conditioning (cross-attention k/v, text
    /// and time embedders).
    public var conditioning: Double
    /// Self-attention scores and weighted sums, 4·S²·d per layer forward.
    public var selfAttention: Double
    /// Cross-attention to the text, 4·S·L·d per layer forward.
    public var crossAttention: Double
    /// The LoRA branches, 2·N·r·(in + out) per adapted module over N tokens forward.
    public var lora: Double

    public static let zero = FlopBreakdown(linear: 0, conditioning: 0, selfAttention: 0, crossAttention: 0, lora: 0)

    public var total: Double { linear + conditioning + selfAttention + crossAttention + lora }
    /// Work that runs as matrix products on the GEMM kernels.
    public var gemm: Double { linear + conditioning + lora }
    /// Work that runs in the fused attention kernel.
    public var attention: Double { selfAttention + crossAttention }

    static func + (a: FlopBreakdown, b: FlopBreakdown) -> FlopBreakdown {
        FlopBreakdown(
            linear: a.linear + b.linear, conditioning: a.conditioning + b.conditioning,
            selfAttention: a.selfAttention + b.selfAttention, crossAttention: a.crossAttention + b.crossAttention,
            lora: a.lora + b.lora)
    }
}

/// The FLOPs of one training step of one sample: forward, recompute (gradient checkpointing)
/// and backward with a frozen base (activation gradients only; weight gradients for the LoRA).
public struct TrainingFlops: Sendable, Equatable, Codable {
    public var forward: FlopBreakdown
    public var recompute: FlopBreakdown
    public var backward: FlopBreakdown

    public var total: FlopBreakdown { forward + recompute + backward }
    /// Share of the total spent in self-attention (forward, recompute and backward).
    public var selfAttentionShare: Double { total.selfAttention / total.total }
}

public enum FlopModel {
    /// Backward of attention relative to its forward: dV = Pᵀ·dO, dP = dO·Vᵀ, dQ = dS·K, dK = dSᵀ·Q
    /// (4 products) plus recomputing S = Q·Kᵀ inside the fused kernel (1): 5 products against
    /// the forward's 2, i.e. 2.5×, as FlashAttention counts it.
    public static let attentionBackwardFactor = 2.5
    /// dim × dim products a block keeps with training.keep_linear_blocks (`fast_model.KEPT_LINEARS_PER_BLOCK`).
    public static let keptLinearsPerBlock = 6

    /// Forward FLOPs of one sample of `tokens` video tokens and `textTokens` text tokens.
    public static func forward(architecture a: Architecture, tokens: Int, textTokens: Int, lora: LoRACount?)
        -> FlopBreakdown
    {
        let s = Double(tokens)
        let l = Double(textTokens)
        let d = Double(a.dim)
        let layers = Double(a.layers)
        var video = 0.0
        var text = 0.0
        for m in a.blockLinears {
            let w = 2 * Double(m.inFeatures) * Double(m.outFeatures)
            switch m.runsOver {
            case .video: video += w * s
            case .text: text += w * l
            case .sample: text += w
            }
        }
        video *= layers
        text *= layers
        let patchVolume = Double(a.patch.t * a.patch.h * a.patch.w)
        video += 2 * s * Double(a.inChannels) * patchVolume * d  // patch embedding (Conv3d = a matrix product)
        video += 2 * s * d * Double(a.outChannels) * patchVolume  // proj_out
        text += 2 * l * (Double(a.textDim) * d + d * d)  // text embedder
        text += 2 * (Double(a.freqDim) * d + d * d + d * 6 * d)  // time embedder and time_proj, once per sample
        let selfAttention = layers * 4 * s * s * d
        let crossAttention = layers * 4 * s * l * d
        var loraFlops = 0.0
        if let lora {
            let r = Double(lora.rank)
            for m in lora.videoModules {
                loraFlops += Double(m.count) * 2 * s * r * Double(m.inFeatures + m.outFeatures)
            }
            // Text-side modules run over the text tokens (cross-attention k/v) — counted at L.
            for m in lora.otherModules {
                loraFlops += Double(m.count) * 2 * l * r * Double(m.inFeatures + m.outFeatures)
            }
        }
        return FlopBreakdown(
            linear: video, conditioning: text, selfAttention: selfAttention,
            crossAttention: crossAttention, lora: loraFlops)
    }

    /// One training step of one sample with the base frozen.
    ///
    /// - Linear layers inside the blocks: forward, recompute (with checkpointing) and one
    ///   backward product for the input gradient (no weight gradient: the base is frozen).
    ///   The patch embedding needs no backward (its input, the latent, needs no gradient);
    ///   proj_out needs the input gradient but is outside the checkpointed blocks.
    /// - Conditioning (text/time): forward and recompute only; nothing upstream needs a gradient.
    /// - Attention: forward, recompute, and 2.5× forward in backward.
    /// - LoRA: forward, recompute, and two products in backward (input and weight gradients).
    ///
    /// With the engine's fast blocks (`keepsAttention`) the recompute skips self-attention (its
    /// output and log-sum-exp are kept from the forward) and, when `skipsLastFFNProduct`, the FFN's
    /// second product (the block ends in x + W₂·g·gate, whose backward needs only W₂). The last
    /// `keptLinearBlocks` blocks (training.keep_linear_blocks) replay their six dim × dim products
    /// (self-attention q, k, v, out; cross-attention q, out) from the forward instead of recomputing them.
    public static func training(
        architecture a: Architecture, tokens: Int, textTokens: Int, lora: LoRACount?,
        checkpointing: Bool, keepsAttention: Bool = false,
        skipsLastFFNProduct: Bool = false, keptLinearBlocks: Int = 0
    ) -> TrainingFlops {
        let f = forward(architecture: a, tokens: tokens, textTokens: textTokens, lora: lora)
        let s = Double(tokens)
        let d = Double(a.dim)
        let patchVolume = Double(a.patch.t * a.patch.h * a.patch.w)
        let patchEmbedding = 2 * s * Double(a.inChannels) * patchVolume * d
        let projOut = 2 * s * d * Double(a.outChannels) * patchVolume
        let blockLinear = f.linear - patchEmbedding - projOut
        let textEmbedderAndTime =
            2 * Double(textTokens) * (Double(a.textDim) * d + d * d)
            + 2 * (Double(a.freqDim) * d + d * d + d * 6 * d)
        let blockConditioning = f.conditioning - textEmbedderAndTime
        let lastFFNProduct = Double(a.layers) * 2 * s * Double(a.ffnDim) * d
        let keptLinears =
            Double(min(max(0, keptLinearBlocks), a.layers)) * Double(keptLinearsPerBlock) * 2 * s * d * d
        let recompute =
            checkpointing
            ? FlopBreakdown(
                linear: blockLinear - (skipsLastFFNProduct ? lastFFNProduct : 0) - keptLinears,
                conditioning: blockConditioning, selfAttention: keepsAttention ? 0 : f.selfAttention,
                crossAttention: f.crossAttention, lora: f.lora)
            : .zero
        let backward = FlopBreakdown(
            linear: blockLinear + projOut, conditioning: 0,
            selfAttention: attentionBackwardFactor * f.selfAttention,
            crossAttention: attentionBackwardFactor * f.crossAttention,
            lora: 2 * f.lora
        )
        return TrainingFlops(forward: f, recompute: recompute, backward: backward)
    }

    /// Whether peft's target rule (name equals a target or ends with "." + target) adapts the
    /// FFN's second product, which the fast blocks then must recompute to train it.
    public static func adaptsLastFFNProduct(targets: [String]) -> Bool {
        let name = "ffn.net.2"
        return targets.contains { name == $0 || name.hasSuffix("." + $0) }
    }

    /// Forward FLOPs of the VAE encoder for one clip (convolutions and the middle attention),
    /// counted from its configuration: conv_in, per stage `residualBlocks` residual blocks of two
    /// 3×3×3 causal convolutions (plus a 1×1×1 shortcut where the width changes), a stride-2
    /// spatial downsample after each stage but the last (and a stride-2 temporal one after the
    /// 2nd and 3rd), the middle (two residual blocks and per-frame attention), and the head.
    public static func vaeEncoder(_ vae: VAESpec, frames: Int, width: Int, height: Int) -> Double {
        var t = Double(frames)
        var h = Double(height / vae.inputPatch)
        var w = Double(width / vae.inputPatch)
        let inChannels = Double(3 * vae.inputPatch * vae.inputPatch)
        let base = Double(vae.baseDim)
        func conv(_ k: Double, _ cin: Double, _ cout: Double, _ voxels: Double) -> Double {
            2 * k * cin * cout * voxels
        }
        var flops = conv(27, inChannels, base, t * h * w)
        var c = base
        let temporalDownsample = [false, true, true]
        for (stage, mult) in vae.dimMult.enumerated() {
            let out = base * Double(mult)
            for block in 0..<vae.residualBlocks {
                let cin = block == 0 ? c : out
                flops += conv(27, cin, out, t * h * w) + conv(27, out, out, t * h * w)
                if cin != out { flops += conv(1, cin, out, t * h * w) }
            }
            c = out
            if stage < vae.dimMult.count - 1 {
                h /= 2
                w /= 2
                flops += conv(9, c, c, t * h * w)  // spatial stride-2 convolution, at the output size
                if temporalDownsample[stage] {
                    t = ((t - 1) / 2).rounded(.up) + 1
                    flops += conv(3, c, c, t * h * w)  // causal temporal stride-2 convolution
                }
            }
        }
        let voxels = t * h * w
        flops += 2 * (conv(27, c, c, voxels) + conv(27, c, c, voxels))  // middle residual blocks
        flops += conv(1, c, 4 * c, voxels) + t * 4 * (h * w) * (h * w) * c  // attention: qkv+proj, per-frame scores
        flops += conv(27, c, Double(2 * vae.latentChannels), voxels)  // head to mean and log-variance
        return flops
    }

    /// Forward FLOPs of the UMT5 encoder for one caption of `tokens` tokens (matrix products only;
    /// attention among 512 tokens is under 1% and left out).
    public static func textEncoder(_ t5: TextEncoderSpec, tokens: Int) -> Double {
        2 * Double(t5.parametersPerToken) * Double(tokens)
    }
}
