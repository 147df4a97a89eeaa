import Config

/// One line of a GPU memory budget.
public struct MemoryItem: Sendable, Equatable, Codable {
    public var name: String
    public var bytes: Int
    /// How the number is made, in words (shown with --markdown and in JSON).
    public var basis: String
}

/// Peak memory of one GPU during training, item by item.
///
/// The peak is the larger of two phases: the training step (weights, LoRA state, activations)
/// and, when an encoder is offloaded, the encode phase in which its weights are on the GPU.
/// Figures compare with `torch.cuda.max_memory_allocated()`; the card's CUDA context and the
/// allocator's slack are kept out of the usable capacity (`reservedBytes`).
public struct MemoryBudget: Sendable, Equatable, Codable {
    public var items: [MemoryItem]
    public var trainingPhaseBytes: Int
    public var encodePhaseBytes: Int
    public var peakBytes: Int
    public var capacityBytes: Int
    /// Kept free for the CUDA context (≈0.5 GiB) and allocator fragmentation (none under a lower
    /// hardware.gpu_memory_limit: the context lives outside the capped allocator).
    public var reservedBytes: Int
    public var usableBytes: Int { capacityBytes - reservedBytes }
    public var fits: Bool { peakBytes <= usableBytes }
    /// Peak over usable capacity.
    public var utilisation: Double { Double(peakBytes) / Double(usableBytes) }
}

public enum MemoryModel {
    /// Bytes kept out of the usable capacity of every card (the engine keeps the same out).
    public static let reservedBytes = EngineConstants.cardReserveBytes

    /// Activation bytes one adapted Linear keeps per token: its input in the adapter's dtype
    /// (peft casts the input to the fp32 LoRA weights: 4 bytes) for the LoRA weight gradient,
    /// the dropout mask (1 byte) when dropout > 0, and the rank-r intermediate in fp32.
    static func loraSavedBytesPerToken(inFeatures: Int, rank: Int, dropout: Double) -> Int {
        4 * inFeatures + (dropout > 0 ? inFeatures : 0) + 4 * rank
    }

    /// Activation bytes per token of one transformer block while it is recomputed and
    /// back-propagated (the working set): `constants.workingSetBytesPerTokenDim`·d for the
    /// norms, modulation, q/k/v, attention output, residual adds and their gradients (fitted
    /// to the SPEC §7 peak), plus 6·ffn for the FFN intermediate (bf16 projection output, the
    /// GELU input and output), plus what the LoRA branches keep.
    public static func blockBytesPerToken(
        architecture a: Architecture, lora: LoRACount, dropout: Double,
        constants: ModelConstants
    ) -> Double {
        var bytes = constants.workingSetBytesPerTokenDim * Double(a.dim) + 6 * Double(a.ffnDim)
        for m in lora.videoModulesPerBlock(layers: a.layers) {
            bytes += Double(
                m.count * loraSavedBytesPerToken(inFeatures: m.inFeatures, rank: lora.rank, dropout: dropout))
        }
        return bytes
    }

    /// Activation bytes per token of one fast block while it is recomputed and back-propagated:
    /// `constants.workingSetBytesPerTokenDim`·d (fitted to the measured fast step) plus 4·ffn for
    /// the FFN intermediate the GELU backward keeps and its gradient (bf16), plus, per adapted
    /// Linear over the video, its dropped-out input (bf16) when dropout > 0 and the rank-r
    /// intermediate. The adapters otherwise share the bf16 inputs their base layers see.
    public static func fastBlockBytesPerToken(
        architecture a: Architecture, lora: LoRACount, dropout: Double,
        constants: ModelConstants
    ) -> Double {
        var bytes = constants.workingSetBytesPerTokenDim * Double(a.dim) + 4 * Double(a.ffnDim)
        for m in lora.videoModulesPerBlock(layers: a.layers) {
            bytes += Double(m.count * ((dropout > 0 ? 2 * m.inFeatures : 0) + 2 * lora.rank))
        }
        return bytes
    }

    /// What a fast block keeps for its backward: its input (residual dtype) and its
    /// self-attention output (bf16), micro-batch samples of `tokensPerGPU` tokens.
    public static func fastKeptBytesPerBlock(
        config: WanLoRAConfig, architecture a: Architecture,
        tokensPerGPU: Double
    ) -> Double {
        Double(config.training.microBatch) * tokensPerGPU * Double(a.dim)
            * Double(config.training.residualDtype.bytes + 2)
    }

    /// Bytes of the linear outputs one keeping block holds for its backward (training.keep_linear_blocks): six
    /// [tokens, dim] bf16 products. Zero unless the fast blocks checkpoint and keep some.
    public static func keptLinearBytesPerBlock(
        config: WanLoRAConfig, architecture a: Architecture, tokensPerGPU: Double
    ) -> Double {
        let tr = config.training
        guard tr.blocks == .fast, tr.gradientCheckpointing, tr.keepLinearBlocks > 0 else { return 0 }
        return Double(tr.microBatch) * tokensPerGPU * Double(a.dim) * 2 * Double(FlopModel.keptLinearsPerBlock)
    }

    /// Blocks that keep their linear outputs: the last training.keep_linear_blocks, at most all of them.
    public static func keptLinearBlocks(config: WanLoRAConfig, architecture a: Architecture) -> Int {
        min(max(0, config.training.keepLinearBlocks), a.layers)
    }

    /// Optimizer state a LoRA parameter keeps (the engine counts the same: `EngineConstants`).
    public static func optimizerBytesPerParameter(_ optimizer: Optimizer) -> Int {
        EngineConstants.optimizerStateBytes(optimizer)
    }

    /// Rows of a weight the engine dequantizes from fp8 at a time (`fp8.ROWS_PER_PASS`).
    public static let fp8DequantizeRows = 1024

    /// Bytes a frozen weight takes on the GPU: fp8 weights are a host format (the streamed blocks' copies,
    /// dequantized into bf16 slots), so they take bf16's 2 bytes there.
    public static func gpuBytesPerWeight(_ dtype: WeightsDType) -> Int { dtype == .fp8 ? 2 : dtype.bytes }

    /// The GPU memory of a training step. `placement` is where the engine puts the frozen blocks (nil: all
    /// on the GPU, activation offload as the fast blocks default to); streamed blocks leave the GPU and
    /// their slots come in.
    public static func budget(
        config: WanLoRAConfig, architecture a: Architecture, gpu: GPU, geometry: ClipGeometry,
        lora: LoRACount, constants: ModelConstants, placement: WeightPlacement? = nil
    ) -> MemoryBudget {
        let hw = config.hardware
        let tr = config.training
        let world = hw.worldSize
        let shards = hw.fsdp ? world : 1
        let weightBytes = gpuBytesPerWeight(config.model.weightsDtype)
        let gpuDtype = config.model.weightsDtype == .fp8 ? "bf16" : config.model.weightsDtype.rawValue
        let trainedExperts = lora.experts
        let residentExperts = (trainedExperts > 1 && hw.inactiveExpert == .resident) ? trainedExperts : 1
        let tokensPerGPU = Double(geometry.tokens) / Double(hw.ulyssesDegree)
        let micro = Double(tr.microBatch)
        var items: [MemoryItem] = []

        let expertBytes = a.expertParameters * weightBytes
        if let placement, placement.streams {
            let streamed = placement.streamedBlocks
            items.append(
                MemoryItem(
                    name: "expert weights", bytes: (a.expertParameters - streamed * a.blockParameters) * weightBytes,
                    basis: "\(placement.residentBlocks) of \(a.layers) blocks and the embeddings and head, "
                        + "× \(weightBytes) B (\(gpuDtype)); "
                        + "\(streamed) blocks stream from host memory"
                ))
            items.append(
                MemoryItem(
                    name: "streaming slots", bytes: placement.slots * placement.blockBytes,
                    basis:
                        "\(placement.slots) × one block (\(placement.blockBytes) B): "
                        + "the block running and the next on its way"
                ))
            if placement.hostWeights == .fp8 {
                // The weight stream copies a block's fp8 bytes whole, then dequantizes 1,024 rows at a time into
                // the slot (fp8.py).
                // float32 values and their scaled copy are alive together at the multiply.
                let widest = a.blockLinears.map(\.inFeatures).max() ?? a.dim
                let dequantize = fp8DequantizeRows * widest * (4 + 4)
                items.append(
                    MemoryItem(
                        name: "fp8 staging", bytes: placement.hostBlockBytes + dequantize,
                        basis:
                            "one block's fp8 copy (\(placement.hostBlockBytes) B) + "
                            + "\(fp8DequantizeRows) rows × \(widest) dequantized"
                    ))
            }
        } else {
            items.append(
                MemoryItem(
                    name: "expert weights", bytes: expertBytes * residentExperts / shards,
                    basis: "\(residentExperts) × \(a.expertParameters) parameters × \(weightBytes) B (\(gpuDtype))"
                        + (shards > 1 ? " / \(shards) FSDP shards" : "")
                ))
        }
        if shards > 1 {
            let blockParams = a.blockLinears.map { $0.weightParameters + $0.outFeatures }.reduce(0, +)
            items.append(
                MemoryItem(
                    name: "FSDP gathered blocks", bytes: 2 * blockParams * weightBytes,
                    basis: "the block being computed and the next one prefetched, unsharded"
                ))
        }
        let t5Bytes = a.textEncoder.parameters * 2
        let vaeBytes = a.vae.parameters * 2
        if hw.t5 == .resident {
            items.append(
                MemoryItem(
                    name: "UMT5 text encoder", bytes: t5Bytes,
                    basis: "\(a.textEncoder.parameters) parameters × 2 B (bf16), resident"))
        }
        if hw.vae == .resident {
            items.append(
                MemoryItem(name: "VAE", bytes: vaeBytes, basis: "\(a.vae.parameters) parameters × 2 B (bf16), resident")
            )
        }
        // With the inactive expert in host memory its LoRA parameters, gradients and optimizer state wait there
        // with it (the engine's `Trainer._activate`): one expert's are on the GPU.
        let inactiveInHost = trainedExperts > 1 && hw.inactiveExpert == .offload && shards == 1
        let loraParams = inactiveInHost ? lora.parametersPerExpert : lora.parametersTotal
        items.append(
            MemoryItem(name: "LoRA weights", bytes: loraParams * 4, basis: "\(loraParams) parameters × 4 B (fp32)"))
        items.append(MemoryItem(name: "LoRA gradients", bytes: loraParams * 4, basis: "\(loraParams) × 4 B (fp32)"))
        let optimizerBytesPerParam = optimizerBytesPerParameter(tr.optimizer)
        items.append(
            MemoryItem(
                name: "optimizer state", bytes: loraParams * optimizerBytesPerParam,
                basis: "\(loraParams) × \(optimizerBytesPerParam) B (\(tr.optimizer.rawValue): two moments)"
            ))
        let persistent = items.map(\.bytes).reduce(0, +)

        let fast = tr.blocks == .fast
        let blockBytes =
            fast
            ? fastBlockBytesPerToken(architecture: a, lora: lora, dropout: config.lora.dropout, constants: constants)
            : blockBytesPerToken(architecture: a, lora: lora, dropout: config.lora.dropout, constants: constants)
        var activations: [MemoryItem] = []
        if tr.gradientCheckpointing && fast {
            let kept = fastKeptBytesPerBlock(config: config, architecture: a, tokensPerGPU: tokensPerGPU)
            let linears = keptLinearBytesPerBlock(config: config, architecture: a, tokensPerGPU: tokensPerGPU)
            let keeping = keptLinearBlocks(config: config, architecture: a)
            if linears > 0 {
                // The block in backward replays its kept products in place of the recompute's own outputs; the
                // last block's (on the GPU until its backward) and the next block's coming back are extra.
                let onGPU = (placement?.activationOffload ?? true) ? min(keeping, 2) : keeping
                activations.append(
                    MemoryItem(
                        name: "kept linear outputs on the GPU", bytes: Int(Double(onGPU) * linears),
                        basis: "\(onGPU) blocks × 6 products × \(Int(tokensPerGPU)) tokens × \(a.dim) × 2 B "
                            + "(training.keep_linear_blocks = \(keeping))"))
            }
            if placement?.activationOffload ?? true {
                // The last block stays on the GPU (its backward comes first) and one more is on its
                // way back from host memory while a block is back-propagated; the rest wait on the host.
                let host = kept * Double(a.layers - 1)
                activations.append(
                    MemoryItem(
                        name: "kept activations on the GPU", bytes: Int(2 * kept),
                        basis:
                            "2 blocks × (input + attention output) × \(Int(tokensPerGPU)) tokens × \(a.dim); the other "
                            + "\(a.layers - 1) blocks' \(String(format: "%.1f", host / 1e9)) GB "
                            + "wait in pinned host memory"
                    ))
            } else {
                activations.append(
                    MemoryItem(
                        name: "kept activations on the GPU", bytes: Int(Double(a.layers) * kept),
                        basis:
                            "\(a.layers) blocks × (input + attention output) × \(Int(tokensPerGPU)) tokens × \(a.dim) "
                            + "(activation offload off)"
                    ))
            }
            // With training.ffn_chunk_tokens the FFN half of the recompute + backward runs a chunk of tokens at a
            // time: the measured chunked steps give the working set per token and what one chunk adds.
            let chunk = tr.ffnChunkTokens > 0 ? min(tokensPerGPU, Double(tr.ffnChunkTokens)) : tokensPerGPU
            if chunk < tokensPerGPU, let perTokenDim = constants.chunkedWorkingSetBytesPerTokenDim,
                let perChunkToken = constants.chunkBytesPerTokenFFN
            {
                let lora = blockBytes - constants.workingSetBytesPerTokenDim * Double(a.dim) - 4 * Double(a.ffnDim)
                let perToken = perTokenDim * Double(a.dim) + lora
                let working = micro * (tokensPerGPU * perToken + chunk * perChunkToken * Double(a.ffnDim))
                activations.append(
                    MemoryItem(
                        name: "one block recomputed + backward", bytes: Int(working),
                        basis:
                            "\(Int(tokensPerGPU)) tokens × \(Int(perToken.rounded())) B "
                            + "+ a \(Int(chunk))-token FFN chunk × "
                            + "\(String(format: "%.2f", perChunkToken)) B × "
                            + "\(a.ffnDim) (fast blocks, chunked FFN, measured)"
                    ))
            } else {
                let ffnPerToken = 4 * Double(a.ffnDim)
                let working = micro * (tokensPerGPU * (blockBytes - ffnPerToken) + chunk * ffnPerToken)
                activations.append(
                    MemoryItem(
                        name: "one block recomputed + backward", bytes: Int(working),
                        basis: "\(Int(tokensPerGPU)) tokens × \(Int(blockBytes.rounded())) B a token (fast blocks)"
                            + (chunk < tokensPerGPU
                                ? ", the FFN's \(Int(ffnPerToken)) B of them over \(Int(chunk))-token chunks" : "")
                    ))
            }
        } else if tr.gradientCheckpointing {
            let kept = micro * Double(a.layers) * tokensPerGPU * Double(a.dim) * Double(tr.residualDtype.bytes)
            activations.append(
                MemoryItem(
                    name: "block inputs kept for backward", bytes: Int(kept),
                    basis: "\(a.layers) blocks × \(Int(tokensPerGPU)) tokens × \(a.dim) "
                        + "× \(tr.residualDtype.bytes) B (\(tr.residualDtype.rawValue) residual)"
                        + (tr.microBatch > 1 ? " × micro-batch \(tr.microBatch)" : "")
                ))
            activations.append(
                MemoryItem(
                    name: "one block recomputed + backward", bytes: Int(micro * tokensPerGPU * blockBytes),
                    basis: "\(Int(tokensPerGPU)) tokens × \(Int(blockBytes.rounded())) B a token"
                ))
        } else {
            activations.append(
                MemoryItem(
                    name: "activations of all blocks", bytes: Int(micro * Double(a.layers) * tokensPerGPU * blockBytes),
                    basis: "no gradient checkpointing: \(a.layers) blocks × "
                        + "\(Int(tokensPerGPU)) tokens × \(Int(blockBytes.rounded())) B a token"
                ))
        }
        // Without a fused attention kernel for this dtype, SDPA falls back to the math kernel,
        // which materialises the scores: heads/U × S² of them (bf16), for one head group at a time at best.
        if !fusedAttentionAvailable(gpu: gpu, precision: tr.mixedPrecision) {
            let scores =
                micro * Double(a.heads / max(1, hw.ulyssesDegree)) * Double(geometry.tokens) * Double(geometry.tokens)
                * 2
            activations.append(
                MemoryItem(
                    name: "attention scores (no fused kernel)", bytes: Int(min(scores, Double(Int.max / 4))),
                    basis: "\(a.heads / max(1, hw.ulyssesDegree)) heads × \(geometry.tokens)² × 2 B: SDPA's math kernel"
                ))
        }
        items += activations
        let training = persistent + activations.map(\.bytes).reduce(0, +)

        // Encode phase: offloaded encoders come onto the GPU, one at a time, before the step.
        var encode = persistent
        if hw.t5 == .offload { encode = max(encode, persistent + t5Bytes) }
        if hw.vae != .cached {
            let workspace = vaeWorkspaceBytes(
                a.vae, frames: geometry.frames, width: geometry.width, height: geometry.height)
            let weights = hw.vae == .offload ? vaeBytes : 0
            encode = max(encode, persistent + weights + workspace)
            items.append(
                MemoryItem(
                    name: "VAE encode workspace (encode phase)", bytes: workspace,
                    basis: "about 4 live feature maps of a 4-frame chunk at the first stage (estimate)"
                ))
        }
        if hw.t5 == .offload {
            items.append(
                MemoryItem(
                    name: "UMT5 text encoder (encode phase)", bytes: t5Bytes,
                    basis: "\(a.textEncoder.parameters) × 2 B, on the GPU only while encoding"))
        }
        return MemoryBudget(
            items: items, trainingPhaseBytes: training, encodePhaseBytes: encode,
            peakBytes: max(training, encode), capacityBytes: Placement.capacityBytes(config: config, gpu: gpu),
            reservedBytes: Placement.capacityBytes(config: config, gpu: gpu)
                - Placement.usableBytes(config: config, gpu: gpu)
        )
    }

    /// The VAE encoder works through the clip in causal chunks of 4 frames (the first alone);
    /// its largest tensors are the first stage's feature maps: 4 frames × H × W × base width,
    /// bf16, about 4 alive at once (input, two convolution outputs, the residual).
    public static func vaeWorkspaceBytes(_ vae: VAESpec, frames: Int, width: Int, height: Int) -> Int {
        let chunk = min(frames, 4)
        return 4 * chunk * (height / vae.inputPatch) * (width / vae.inputPatch) * vae.baseDim * 2
    }

    /// Whether SDPA has a fused (memory-efficient) kernel for this GPU and dtype: FlashAttention
    /// and cuDNN need compute capability 8.0; the memory-efficient kernel runs fp16 and fp32 on
    /// older GPUs but bf16 only from 8.0.
    public static func fusedAttentionAvailable(gpu: GPU, precision: MixedPrecision) -> Bool {
        gpu.supportsFlashAttention || precision != .bf16
    }
}
