import Config

/// The engine's placement of one run's frozen expert (its rule, `WeightStreaming`) applied to a
/// configuration and a card, and what it costs: host memory and link time.
public enum Placement {
    /// GPU bytes the run may use: the card's memory, or `hardware.gpu_memory_limit` when that is smaller.
    public static func capacityBytes(config: WanLoRAConfig, gpu: GPU) -> Int {
        let limit = config.hardware.gpuMemoryLimit
        guard limit > 0 else { return gpu.memoryBytes }
        return min(gpu.memoryBytes, Int(limit * Double(1 << 30)))
    }

    /// GPU bytes the run's allocations may reach: the card's memory less 1 GiB for the CUDA context and
    /// allocator slack, or `hardware.gpu_memory_limit` when that is lower (a limit caps the allocator, as
    /// `torch.cuda.set_per_process_memory_fraction` does; the context lives outside it).
    public static func usableBytes(config: WanLoRAConfig, gpu: GPU) -> Int {
        let card = gpu.memoryBytes - MemoryModel.reservedBytes
        let limit = config.hardware.gpuMemoryLimit
        return limit > 0 ? min(card, Int(limit * Double(1 << 30))) : card
    }

    /// Whether the engine can stream this run's weights: only inside the fast blocks with gradient
    /// checkpointing, with one whole expert per GPU (an FSDP shard is already 1/N of it), and one expert on
    /// the GPU at a time (two trained experts need hardware.inactive_expert = "offload").
    public static func canStream(_ config: WanLoRAConfig) -> Bool {
        config.training.blocks == .fast && config.training.gradientCheckpointing
            && !(config.hardware.fsdp && config.hardware.worldSize > 1)
            && !(trainsTwoExperts(config) && config.hardware.inactiveExpert == .resident)
    }

    /// Both experts of a two-expert model get a LoRA.
    public static func trainsTwoExperts(_ config: WanLoRAConfig) -> Bool {
        config.training.expert == .both && Architecture.named(config.model.architecture).experts > 1
    }

    /// Whether the fast blocks' kept activations go to host memory for `choice` (the engine's `auto` is
    /// `all` on a GPU).
    static func offloadsActivations(_ config: WanLoRAConfig, choice: ActivationOffload) -> Bool {
        config.training.blocks == .fast && config.training.gradientCheckpointing && choice != .none
    }

    /// Bytes of one block's kept activations (input and attention output, and the attention's log-sum-exp
    /// in float32), micro-batch samples: what waits in host memory for each block but the last.
    public static func keptBytesPerBlock(
        config: WanLoRAConfig, architecture a: Architecture,
        tokensPerGPU: Double
    ) -> Double {
        let lse = Double(config.training.microBatch) * tokensPerGPU * Double(a.heads) * 4
        return MemoryModel.fastKeptBytesPerBlock(config: config, architecture: a, tokensPerGPU: tokensPerGPU) + lse
    }

    /// The engine's placement of the blocks for the largest clip of the run: its rule (`WeightStreaming`)
    /// under the usable memory of the card (or the limit), with as many blocks resident as the planner's own
    /// peak also allows. For the measured setting (dropout 0, 8-bit AdamW, kept activations in host memory) the
    /// two agree (docs/planner.md). Where the engine's fixed + working estimate is short of the planner's peak
    /// (it leaves out 32-bit AdamW's state beyond 2 B a parameter, the other blocks' kept activations when they
    /// stay on the GPU, and the measured working set where it tops the estimate), the placement keeps fewer
    /// blocks resident than the rule would at the card's memory, and `limitBytes` is the
    /// hardware.gpu_memory_limit under which the rule keeps exactly those and which holds their peak (it caps
    /// the allocator too). `fitsRule` is false when not
    /// even streaming every block fits, or when no limit does both (the engine's estimate is more than a block
    /// short of the planner's peak: under any limit the rule keeps more blocks than the limit holds).
    public static func weights(
        config: WanLoRAConfig, architecture a: Architecture, gpu: GPU, geometry: ClipGeometry,
        lora: LoRACount, constants: ModelConstants, activationOffload: Bool,
        rule: StreamingRule = .engine
    ) -> WeightPlacement {
        let tr = config.training
        let tokensPerGPU = Double(geometry.tokens) / Double(config.hardware.ulyssesDegree)
        let micro = tr.microBatch
        let fp8 = config.model.weightsDtype == .fp8
        // With fp8 host weights the engine counts the dequantization's GPU staging as fixed
        // (`Fp8HostFormat.gpu_staging_bytes`: the record's copy and 1,024 rows in float32 and bf16).
        let widest = a.blockLinears.map(\.inFeatures).max() ?? a.dim
        let staging = fp8 ? a.blockFP8HostBytes + MemoryModel.fp8DequantizeRows * widest * (4 + 2) : 0
        // The engine's fixed bytes count the optimizer's real state (`train.OPTIMIZER_STATE_BYTES`).
        let optimizer = MemoryModel.optimizerBytesPerParameter(tr.optimizer)
        let fixed = a.nonBlockWeightBytes + lora.parametersPerExpert * (4 + 4 + optimizer) + staging
        // The engine's estimate whatever the activation offload: without it the other blocks' kept activations
        // also wait on the GPU, which only the planner's own peak below counts (the engine's rule does not).
        let working = WeightStreaming.engineWorkingBytes(
            tokens: micro * Int(tokensPerGPU), dim: a.dim, ffnDim: a.ffnDim, textTokens: a.textEncoder.maxTokens,
            ffnChunkTokens: tr.ffnChunkTokens, activationPrefetch: rule.activationPrefetchBlocks,
            keptLinears: MemoryModel.keptLinearBlocks(config: config, architecture: a) > 0
                ? FlopModel.keptLinearsPerBlock : 0,
            dropoutFeatures: config.lora.dropout > 0
                ? lora.videoModulesPerBlock(layers: a.layers).map { $0.count * $0.inFeatures }.reduce(0, +) : 0)
        let usable = usableBytes(config: config, gpu: gpu)
        let block = a.blockWeightBytes
        let slots = rule.prefetchBlocks + 1
        func placement(resident: Int, limit: Int, fits: Bool) -> WeightPlacement {
            WeightPlacement(
                blocks: a.layers, residentBlocks: resident, slots: resident < a.layers ? slots : 0,
                blockBytes: block, hostBlockBytes: fp8 ? a.blockFP8HostBytes : block, hostWeights: fp8 ? .fp8 : .bf16,
                activationOffload: activationOffload, limitBytes: limit, engineFixedBytes: fixed,
                engineWorkingBytes: working, fitsRule: fits)
        }
        let allResident = placement(resident: a.layers, limit: usable, fits: true)
        guard canStream(config) else { return allResident }
        let byRule = WeightStreaming.residentBlocks(
            limitBytes: usable, blocks: a.layers, blockBytes: block,
            fixedBytes: fixed, workingBytes: working,
            prefetch: rule.prefetchBlocks)
        guard let byRule else { return placement(resident: 0, limit: usable, fits: false) }
        // The planner's peak grows by one block's weights for each block kept resident.
        func peak(_ p: WeightPlacement) -> Int {
            MemoryModel.budget(
                config: config, architecture: a, gpu: gpu, geometry: geometry, lora: lora,
                constants: constants, placement: p
            ).peakBytes
        }
        if byRule == a.layers && peak(allResident) <= usable { return allResident }
        // hardware.gpu_memory_limit is both the rule's limit and the allocator's cap (the engine's
        // `set_per_process_memory_fraction`): a placement holds where the planner's peak at what the rule keeps is
        // within that same limit. Under limits in [need(r), need(r) + block) the rule keeps exactly r blocks,
        // need(r) = fixed + working + (slots + r) × block; the limit the engine is given for r is the least of
        // them that also covers the planner's peak, in hundredths of a GiB as hardware.gpu_memory_limit writes it.
        let peakStreamingAll = peak(placement(resident: 0, limit: usable, fits: true))
        let perBlock = a.blockParameters * MemoryModel.gpuBytesPerWeight(config.model.weightsDtype)
        // Blocks past blocks − slots − 1 would make the rule keep them all (no slots): that is `allResident`.
        for resident in stride(from: min(byRule, a.layers - slots - 1), through: 0, by: -1) {
            let peakBytes = peakStreamingAll + resident * perBlock
            if resident == byRule {
                if peakBytes <= usable { return placement(resident: resident, limit: usable, fits: true) }
                continue
            }
            let need = fixed + working + (slots + resident) * block
            let limit = limitInHundredthsOfGiB(atLeast: max(need, peakBytes))
            if limit <= usable && limit < need + block {
                return placement(resident: resident, limit: limit, fits: true)
            }
        }
        return placement(resident: 0, limit: usable, fits: false)
    }

    /// The least limit of at least `bytes` that hardware.gpu_memory_limit (GiB) can say with two decimals, in
    /// bytes as the engine reads it (`config.gpu_memory_limit_bytes`: GiB × 2³⁰ rounded).
    static func limitInHundredthsOfGiB(atLeast bytes: Int) -> Int {
        var hundredths = Int((Double(bytes) / Double(1 << 30) * 100).rounded(.up))
        func inBytes(_ h: Int) -> Int { Int((Double(h) / 100 * Double(1 << 30)).rounded()) }
        while inBytes(hundredths) < bytes { hundredths += 1 }
        return inBytes(hundredths)
    }

    /// Compute seconds of one block's forward visit and of its backward visit (recompute + backward), one
    /// micro-step: each phase's GEMM and attention FLOPs at the card's rates, and its share of the
    /// elementwise passes (forward 1 of 4).
    static func blockSeconds(
        config: WanLoRAConfig, architecture a: Architecture, gpu: GPU, flops: TrainingFlops,
        elementwiseSeconds: Double
    ) -> (forward: Double, backward: Double) {
        let u = Double(config.hardware.ulyssesDegree)
        let rate = gpu.matrixTFLOPs(for: config.training.mixedPrecision).rate * 1e12
        func seconds(_ f: FlopBreakdown) -> Double {
            f.gemm / u / (rate * gpu.gemmEfficiency) + f.attention / u / (rate * gpu.attentionEfficiency)
        }
        let passes = TimeModel.elementwisePasses(training: true, checkpointing: config.training.gradientCheckpointing)
        let micro = Double(config.training.microBatch)
        let forward = seconds(flops.forward) + elementwiseSeconds / passes
        let backward = seconds(flops.recompute) + seconds(flops.backward) + elementwiseSeconds * (passes - 1) / passes
        return (micro * forward / Double(a.layers), micro * backward / Double(a.layers))
    }

    /// The link during one micro-step of a clip of `geometry` with `placement`: the weight copies, and what of
    /// them the compute does not hide (beyond what the activation copies alone already cost).
    public static func streamingTime(
        config: WanLoRAConfig, architecture a: Architecture, gpu: GPU,
        geometry: ClipGeometry, flops: TrainingFlops, elementwiseSeconds: Double,
        placement: WeightPlacement, rule: StreamingRule = .engine
    ) -> StreamingTime {
        guard placement.streams else { return .none }
        let (forward, backward) = blockSeconds(
            config: config, architecture: a, gpu: gpu, flops: flops,
            elementwiseSeconds: elementwiseSeconds)
        let link = gpu.hostLinkGBs * 1e9
        let tokensPerGPU = Double(geometry.tokens) / Double(config.hardware.ulyssesDegree)
        let weightCopy = Double(placement.hostBlockBytes) / link
        let activationCopy =
            placement.activationOffload
            ? keptBytesPerBlock(config: config, architecture: a, tokensPerGPU: tokensPerGPU) / link : 0
        let streamed = WeightStreaming.simulate(
            blocks: a.layers, residentBlocks: placement.residentBlocks, prefetch: rule.prefetchBlocks,
            forwardBlockSeconds: forward, backwardBlockSeconds: backward, weightCopySeconds: weightCopy,
            activationCopySeconds: activationCopy)
        let alone = WeightStreaming.simulate(
            blocks: a.layers, residentBlocks: a.layers, prefetch: rule.prefetchBlocks,
            forwardBlockSeconds: forward, backwardBlockSeconds: backward, weightCopySeconds: weightCopy,
            activationCopySeconds: activationCopy)
        return StreamingTime(
            forwardBlockSeconds: forward, backwardBlockSeconds: backward, weightCopySeconds: weightCopy,
            activationCopySeconds: activationCopy, linkSeconds: Double(streamed.copiesPerStep) * weightCopy,
            exposedSeconds: max(0, streamed.exposedSeconds - alone.exposedSeconds))
    }

    /// Bytes of one expert's frozen weights as the engine holds them (blocks and the rest).
    public static func expertWeightBytes(_ a: Architecture) -> Int {
        a.layers * a.blockWeightBytes + a.nonBlockWeightBytes
    }

    /// Host memory of the node: per engine process, what it pins (streamed blocks, kept activations of the
    /// largest clip), what waits there unpinned (the inactive expert, offloaded encoders) and the process
    /// itself; and while loading, every trained expert read whole before it is placed.
    public static func hostMemory(
        config: WanLoRAConfig, architecture a: Architecture, geometry: ClipGeometry,
        lora: LoRACount, placement: WeightPlacement, availableBytes: Int?,
        rule: StreamingRule = .engine
    ) -> HostMemoryBudget {
        let hw = config.hardware
        let tokensPerGPU = Double(geometry.tokens) / Double(hw.ulyssesDegree)
        let shards = hw.fsdp ? hw.worldSize : 1
        let expert = expertWeightBytes(a)
        var items: [MemoryItem] = []
        if placement.streams {
            items.append(
                MemoryItem(
                    name: "streamed blocks (pinned)", bytes: placement.hostWeightBytes,
                    basis: "\(placement.streamedBlocks) of \(placement.blocks) blocks × \(placement.hostBlockBytes) B "
                        + "(\(placement.hostWeights == .fp8 ? "fp8 e4m3 + per-channel scales" : "bf16, exact"))"))
        }
        if placement.activationOffload {
            let kept = keptBytesPerBlock(config: config, architecture: a, tokensPerGPU: tokensPerGPU)
            items.append(
                MemoryItem(
                    name: "kept activations (pinned)", bytes: Int(kept) * (a.layers - 1),
                    basis: "\(a.layers - 1) blocks × (input + attention output + log-sum-exp) of "
                        + "\(Int(tokensPerGPU)) tokens"))
            let linears = MemoryModel.keptLinearBytesPerBlock(
                config: config, architecture: a, tokensPerGPU: tokensPerGPU)
            let keeping = MemoryModel.keptLinearBlocks(config: config, architecture: a)
            if linears > 0 && keeping > 1 {  // the last block's stay on the GPU
                items.append(
                    MemoryItem(
                        name: "kept linear outputs (pinned)", bytes: Int(linears) * (keeping - 1),
                        basis: "\(keeping - 1) blocks × 6 products of \(Int(tokensPerGPU)) tokens × \(a.dim) × 2 B"))
            }
        }
        if lora.experts > 1 && hw.inactiveExpert == .offload && shards == 1 {
            // Its LoRA parameters, gradients and optimizer state wait with it (`Trainer._activate`).
            let optimizer = MemoryModel.optimizerBytesPerParameter(config.training.optimizer)
            let loraState = lora.parametersPerExpert * (4 + 4 + optimizer)
            items.append(
                MemoryItem(
                    name: "inactive expert", bytes: expert + loraState,
                    basis: "the other expert's \(a.expertParameters) parameters, waiting for its "
                        + "samples, and its LoRA state"))
        }
        if hw.t5 == .offload {
            items.append(
                MemoryItem(
                    name: "UMT5 text encoder", bytes: a.textEncoder.parameters * 2,
                    basis: "offloaded between encodes (bf16)"))
        }
        if hw.vae == .offload {
            items.append(
                MemoryItem(
                    name: "VAE", bytes: a.vae.parameters * 2,
                    basis: "offloaded between encodes (bf16)"))
        }
        items.append(
            MemoryItem(
                name: "engine process", bytes: rule.processHostBytes,
                basis: "Python, torch, the CUDA runtime, data loading (measured on the H100, "
                    + "rounded up)"))
        let training = items.map(\.bytes).reduce(0, +)
        let loading = lora.experts * expert + rule.processHostBytes
        return HostMemoryBudget(
            items: items, trainingBytesPerProcess: training, loadingBytesPerProcess: loading,
            processes: hw.gpusPerNode, reserveBytes: rule.hostReserveBytes,
            availableBytes: availableBytes)
    }
}
