import Config

/// The engine's weight streaming as the planner models it (docs/streaming.md is the engine's side,
/// `engine/wanlora_engine/streaming.py` the code): under a GPU memory limit the first blocks of the frozen
/// expert stay on the GPU, the others wait in pinned host memory and are copied in, one visit ahead, on a
/// side stream, once in the forward and once in the backward (the recompute and the backward of a block
/// share one visit).
///
/// The engine's constants that the planner must use to predict what the engine does.
public struct StreamingRule: Sendable, Equatable, Codable {
    /// Streamed blocks copied ahead of their use (the engine's `prefetch`, k): k + 1 GPU slots of a block.
    public var prefetchBlocks: Int
    /// Offloaded blocks whose kept activations come back ahead of their backward (`prefetch_blocks` of the
    /// fast blocks); the engine's working estimate counts their 2 activations each.
    public var activationPrefetchBlocks: Int
    /// Host memory the activation offload leaves to everyone else (`offload.HOST_RESERVE_BYTES`): a block's
    /// activations stay on the GPU rather than pin below it.
    public var hostReserveBytes: Int
    /// Host memory of one engine process besides the weights and activations it pins (Python, torch, the
    /// CUDA runtime's host side, the data loader): 3 GiB, from the 81-frame run within 24 GiB on the H100
    /// (peak RSS 85.1 GiB with 82.21 GiB pinned, docs/BENCHMARKS.md 2026-12-07), rounded up.
    public var processHostBytes: Int

    public init(prefetchBlocks: Int, activationPrefetchBlocks: Int, hostReserveBytes: Int, processHostBytes: Int) {
        self.prefetchBlocks = prefetchBlocks
        self.activationPrefetchBlocks = activationPrefetchBlocks
        self.hostReserveBytes = hostReserveBytes
        self.processHostBytes = processHostBytes
    }

    /// The engine's defaults (`enable_weight_streaming(prefetch=1)`, `FastBlockOptions.prefetch_blocks = 1`).
    public static let engine = StreamingRule(
        prefetchBlocks: 1, activationPrefetchBlocks: 1,
        hostReserveBytes: 8 << 30, processHostBytes: 3 << 30)
}

/// Where the frozen expert's blocks are for one run, by the engine's rule.
public struct WeightPlacement: Sendable, Equatable, Codable {
    public var blocks: Int
    /// Blocks [0, residentBlocks) stay on the GPU; the others stream.
    public var residentBlocks: Int
    /// GPU slots the streamed blocks run from: prefetch + 1 when any block streams, else 0.
    public var slots: Int
    /// One block's frozen weights on the GPU (bf16, with the float32 tables), bytes.
    public var blockBytes: Int
    /// One streamed block in host memory: `blockBytes` with bf16 host weights, about half with fp8.
    public var hostBlockBytes: Int
    /// How the streamed blocks wait in host memory.
    public var hostWeights: WeightsDType
    /// Kept activations wait in pinned host memory (else on the GPU).
    public var activationOffload: Bool
    /// The limit the engine's rule must be given to place the blocks so, bytes: the card's memory (or
    /// hardware.gpu_memory_limit) less 1 GiB for the CUDA context, or less where the planner's peak needs it.
    public var limitBytes: Int
    /// What the engine counts as always on the GPU (non-block weights, LoRA parameters, gradients and
    /// optimizer state) and its estimate of the activations at the step's peak.
    public var engineFixedBytes: Int
    public var engineWorkingBytes: Int
    /// False when not even streaming every block fits the limit (the engine refuses to start); the other
    /// figures are then those of streaming every block.
    public var fitsRule: Bool

    public var streamedBlocks: Int { blocks - residentBlocks }
    public var streams: Bool { streamedBlocks > 0 }
    /// Frozen block weights on the GPU: resident blocks and slots.
    public var gpuBlockBytes: Int { (residentBlocks + slots) * blockBytes }
    /// Streamed blocks in pinned host memory.
    public var hostWeightBytes: Int { streamedBlocks * hostBlockBytes }
    /// Host-to-GPU weight bytes of one micro-step: every streamed block once forward, once backward.
    public var linkBytesPerStep: Int { 2 * streamedBlocks * hostBlockBytes }
}

/// The host-to-GPU link during one training step with streamed weights.
public struct StreamingTime: Sendable, Equatable, Codable {
    /// Compute of one block's forward visit and of its backward visit (recompute + backward), per
    /// micro-step, seconds.
    public var forwardBlockSeconds: Double
    public var backwardBlockSeconds: Double
    /// Copying one streamed block's weights, and one block's kept activations, host to GPU, seconds.
    public var weightCopySeconds: Double
    public var activationCopySeconds: Double
    /// Weight copies of one micro-step on the link, seconds.
    public var linkSeconds: Double
    /// What of it the compute does not hide (the step takes this much longer), seconds a micro-step.
    public var exposedSeconds: Double
    public var hiddenSeconds: Double { max(0, linkSeconds - exposedSeconds) }

    public static let none = StreamingTime(
        forwardBlockSeconds: 0, backwardBlockSeconds: 0, weightCopySeconds: 0,
        activationCopySeconds: 0, linkSeconds: 0, exposedSeconds: 0)
}

/// Host memory of one node during the run, item by item.
public struct HostMemoryBudget: Sendable, Equatable, Codable {
    /// What one engine process holds while it trains.
    public var items: [MemoryItem]
    public var trainingBytesPerProcess: Int
    /// What one engine process holds while it loads the experts (each is read whole into host memory
    /// before it is placed).
    public var loadingBytesPerProcess: Int
    /// Engine processes on the node (one per GPU).
    public var processes: Int
    /// Left free for everyone else (the activation offload stops pinning there).
    public var reserveBytes: Int
    /// MemAvailable of the host, when known (`train` reads /proc/meminfo; `plan --host-memory`).
    public var availableBytes: Int?

    /// Host memory the node needs: training with the reserve the activation offload leaves free, or loading
    /// (before anything is pinned), whichever is larger, for every process.
    public var neededBytes: Int {
        max(processes * trainingBytesPerProcess + reserveBytes, processes * loadingBytesPerProcess)
    }
    /// False only when the available memory is known and short.
    public var fits: Bool { availableBytes.map { neededBytes <= $0 } ?? true }
}

extension Architecture {
    /// Bytes of one tensor in the engine's slot layout: each tensor starts on a 256-byte boundary.
    static func slotAligned(_ bytes: Int) -> Int { (bytes + 255) / 256 * 256 }

    /// One block's frozen weights as the engine's slot holds them (`streaming.frozen_block_bytes`): the ten
    /// Linears' weights and biases and the four q/k RMSNorm weights in bf16, the modulation table (6·d) and
    /// the cross-attention LayerNorm's weight and bias in float32 (diffusers' `_keep_in_fp32_modules`).
    /// 702,870,528 B (0.6546 GiB) for an A14B expert, as docs/streaming.md measures.
    public var blockWeightBytes: Int { blockBytes(fp8Linears: false) }

    /// One streamed block in host memory with fp8 host weights: each Linear weight as e4m3 (1 B an element)
    /// with one float32 scale per output channel, everything else as on the GPU.
    public var blockFP8HostBytes: Int { blockBytes(fp8Linears: true) }

    func blockBytes(fp8Linears: Bool) -> Int {
        var bytes = 0
        for m in blockLinears {
            bytes +=
                fp8Linears
                ? Self.slotAligned(m.weightParameters) + Self.slotAligned(4 * m.outFeatures)
                : Self.slotAligned(2 * m.weightParameters)
            bytes += Self.slotAligned(2 * m.outFeatures)  // bias
        }
        bytes += 4 * Self.slotAligned(2 * dim)  // norm_q, norm_k of both attentions
        bytes += Self.slotAligned(4 * 6 * dim) + 2 * Self.slotAligned(4 * dim)  // scale_shift_table, norm2 (fp32)
        return bytes
    }

    /// Parameters of one block (weights, biases, norms, table).
    public var blockParameters: Int {
        blockLinears.map { $0.weightParameters + $0.outFeatures }.reduce(0, +) + 4 * dim + 2 * dim + 6 * dim
    }

    /// Frozen weights outside the blocks as the engine holds them: the patch embedding, text embedder, time
    /// projection and head in bf16, the time embedder and the head's table in float32.
    public var nonBlockWeightBytes: Int {
        let outside = expertParameters - layers * blockParameters
        let timeEmbedder = freqDim * dim + dim + dim * dim + dim
        return 2 * outside + 2 * (timeEmbedder + 2 * dim)
    }
}

public enum WeightStreaming {
    /// The engine's rule (`streaming.plan_streaming`): every block resident when fixed + working + all blocks
    /// fit the limit; otherwise k + 1 slots and as many resident blocks as the rest of the limit holds.
    /// Nil when not even streaming every block fits.
    public static func residentBlocks(
        limitBytes: Int, blocks: Int, blockBytes: Int, fixedBytes: Int,
        workingBytes: Int, prefetch: Int
    ) -> Int? {
        if limitBytes >= fixedBytes + workingBytes + blocks * blockBytes { return blocks }
        let room = limitBytes - fixedBytes - workingBytes - (prefetch + 1) * blockBytes
        guard room >= 0 else { return nil }
        return min(blocks, room / blockBytes)
    }

    /// The engine's estimate of the GPU activations at a step's peak (`streaming.estimate_working_bytes`), in
    /// units U of one [tokens, dim] bf16 activation: the recompute graph of a block's attention half (19 U),
    /// gradients in flight (4 U), the kept input and attention output of the block in backward and of the
    /// blocks coming back (2 U each), the FFN's three hidden tensors over one chunk of tokens, the text; with
    /// kept linear outputs (`keptLinears` a block, training.keep_linear_blocks) those of the blocks coming back;
    /// with LoRA dropout the dropped-out inputs of the adapted linears over the video (`dropoutFeatures`: their
    /// in_features summed, `fast_model.dropout_input_features`), tokens × features × 2 B.
    public static func engineWorkingBytes(
        tokens: Int, dim: Int, ffnDim: Int, textTokens: Int, ffnChunkTokens: Int,
        activationPrefetch: Int, keptLinears: Int = 0, dropoutFeatures: Int = 0
    ) -> Int {
        let unit = tokens * dim * 2
        let ffnTokens = ffnChunkTokens <= 0 ? tokens : min(tokens, ffnChunkTokens)
        return (19 + 4 + 2 * (1 + activationPrefetch) + keptLinears * activationPrefetch) * unit
            + 3 * ffnTokens * ffnDim * 2 + 4 * textTokens * dim * 2 + tokens * dropoutFeatures * 2
    }

    /// One micro-step of the engine's copy streams on one host-to-GPU link, simulated over three steps (the
    /// second is the steady state): seconds beyond the compute, and the streamed-weight copies it makes.
    ///
    /// Visits run forward 0…n−1, then backward n−1…0 (recompute + backward of a block in one visit). As the
    /// engine does, each visit of a streamed block finds it in one of the k + 1 slots or copies it in, and
    /// starts copying the next k streamed blocks of the visit order that no slot holds, each into a slot that
    /// no visit uses and none of those blocks needs, once the last visit that read the slot has finished
    /// (so the last forward blocks are still there for their backward, and the last backward block for the
    /// next forward). In the backward the same link also brings back each offloaded block's activations,
    /// started when the backward of the block after it starts. Copies take the link in the order issued.
    public static func simulate(
        blocks n: Int, residentBlocks: Int, prefetch: Int, forwardBlockSeconds: Double,
        backwardBlockSeconds: Double, weightCopySeconds: Double,
        activationCopySeconds: Double
    ) -> (exposedSeconds: Double, copiesPerStep: Int) {
        struct Visit {
            var block: Int
            var backward: Bool
        }
        struct Slot {
            var block: Int?
            var ready = 0.0
            var freeAfter = 0.0
            var inUse = false
        }
        let steps = 3
        let step =
            (0..<n).map { Visit(block: $0, backward: false) }
            + (0..<n).reversed().map { Visit(block: $0, backward: true) }
        let visits = Array(repeating: step, count: steps).flatMap { $0 }
        var slots = [Slot](repeating: Slot(block: nil), count: residentBlocks < n ? prefetch + 1 : 0)
        var linkFree = 0.0
        var ends: [Double] = []
        var copiesInStep = 0
        var previousEnd = 0.0

        func upcoming(after i: Int, excluding block: Int) -> [Int] {
            var found: [Int] = []
            var j = i + 1
            while found.count < prefetch && j < visits.count {
                let b = visits[j].block
                if b >= residentBlocks && b != block && !found.contains(b) { found.append(b) }
                j += 1
            }
            return found
        }
        func load(_ block: Int, keep: [Int], visit i: Int) {
            let free = slots.indices.filter { !slots[$0].inUse && !(slots[$0].block.map(keep.contains) ?? false) }
            guard let k = free.first(where: { slots[$0].block == nil }) ?? free.first else { return }
            let begin = max(linkFree, slots[k].freeAfter)
            linkFree = begin + weightCopySeconds
            slots[k] = Slot(block: block, ready: linkFree, freeAfter: slots[k].freeAfter)
            if i >= step.count && i < 2 * step.count { copiesInStep += 1 }
        }

        for (i, visit) in visits.enumerated() {
            var ready = 0.0
            if visit.backward && activationCopySeconds > 0 && visit.block < n - 1 {
                // The `take` of the block after it (in backward order) prefetched it when that block began.
                let issue = ends.isEmpty ? 0 : (ends.last! - backwardBlockSeconds)
                linkFree = max(linkFree, issue) + activationCopySeconds
                ready = linkFree
            }
            let next = upcoming(after: i, excluding: visit.block)
            var slotIndex: Int?
            if visit.block >= residentBlocks {
                if slots.firstIndex(where: { $0.block == visit.block }) == nil {
                    load(visit.block, keep: [visit.block] + next, visit: i)
                }
                slotIndex = slots.firstIndex { $0.block == visit.block }
                if let k = slotIndex {
                    ready = max(ready, slots[k].ready)
                    slots[k].inUse = true
                }
            }
            for b in next where !slots.contains(where: { $0.block == b }) {
                load(b, keep: [visit.block] + next, visit: i)
            }
            let start = max(previousEnd, ready)
            previousEnd = start + (visit.backward ? backwardBlockSeconds : forwardBlockSeconds)
            ends.append(previousEnd)
            if let k = slotIndex {
                slots[k].inUse = false
                slots[k].freeAfter = previousEnd
            }
        }
        let compute = Double(n) * (forwardBlockSeconds + backwardBlockSeconds)
        let steady = ends[2 * step.count - 1] - ends[step.count - 1]
        return (max(0, steady - compute), copiesInStep)
    }
}
