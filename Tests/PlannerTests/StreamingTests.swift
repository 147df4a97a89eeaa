import Config
import Foundation
import Testing

@testable import Planner

/// One A14B expert on one GPU, 1280×720, r16 on the four attention names, 8-bit AdamW, fast blocks, cached
/// encoders: the setting of docs/streaming.md's numbers.
func streamingConfig(gpu: String, frames: Int, limitGiB: Double = 0) -> WanLoRAConfig {
    var c = Calibration.referenceConfig(gpu: gpu, frames: frames, blocks: .fast)
    c.hardware.fsdp = false
    c.hardware.gpuMemoryLimit = limitGiB
    return c
}

@Suite struct StreamingArithmeticTests {
    let a = Architecture.wan22T2VA14B

    /// docs/streaming.md: a block is 702,870,528 B in the slot (bf16 linears, biases and q/k norms, the
    /// float32 modulation table and cross-attention LayerNorm; every tensor a multiple of 256 B here).
    @Test func blockBytesByHand() {
        #expect(a.blockParameters == 351_394_304)
        let linears = 8 * 5120 * 5120 + 2 * 5120 * 13_824  // 351,272,960 weights
        let biases = 8 * 5120 + 13_824 + 5120  // 59,904
        #expect(a.blockWeightBytes == 2 * linears + 2 * biases + 2 * 4 * 5120 + 4 * 6 * 5120 + 4 * 2 * 5120)
        #expect(a.blockWeightBytes == 702_870_528)
        // fp8 host copy: 1 B a weight + a float32 scale per output channel (59,904 of them); the rest as on the GPU.
        #expect(a.blockFP8HostBytes == linears + 4 * biases + 2 * biases + 2 * 4 * 5120 + 4 * 6 * 5120 + 4 * 2 * 5120)
        #expect(a.blockFP8HostBytes == 351_837_184)
        // Outside the blocks: 232,719,424 parameters in bf16, the time embedder (27,535,360) and the head's
        // table (10,240) in float32.
        #expect(a.expertParameters - 40 * a.blockParameters == 232_719_424)
        #expect(a.nonBlockWeightBytes == 2 * 232_719_424 + 2 * (27_535_360 + 10_240))
    }

    /// The engine's rule on made-up numbers: all resident when everything fits; else k + 1 slots and the
    /// whole blocks that the rest holds; nothing when not even the slots fit.
    @Test func ruleByHand() {
        let block = 100
        let fixed = 1000
        let working = 5000
        #expect(
            WeightStreaming.residentBlocks(
                limitBytes: 10_000, blocks: 40, blockBytes: block, fixedBytes: fixed,
                workingBytes: working, prefetch: 1) == 40)
        // 9,999 < 10,000: stream; room = 9,999 − 6,000 − 200 = 3,799 → 37 resident.
        #expect(
            WeightStreaming.residentBlocks(
                limitBytes: 9_999, blocks: 40, blockBytes: block, fixedBytes: fixed,
                workingBytes: working, prefetch: 1) == 37)
        #expect(
            WeightStreaming.residentBlocks(
                limitBytes: 6_200, blocks: 40, blockBytes: block, fixedBytes: fixed,
                workingBytes: working, prefetch: 1) == 0)
        #expect(
            WeightStreaming.residentBlocks(
                limitBytes: 6_199, blocks: 40, blockBytes: block, fixedBytes: fixed,
                workingBytes: working, prefetch: 1) == nil)
        #expect(
            WeightStreaming.residentBlocks(
                limitBytes: 6_300, blocks: 40, blockBytes: block, fixedBytes: fixed,
                workingBytes: working, prefetch: 2) == 0)
    }

    /// The engine's working estimate at 49 frames: U = 46,800 × 5120 × 2 B; 27 U + the FFN's three hidden
    /// tensors (all tokens, or a 16,384-token chunk) + the text.
    @Test func engineWorkingEstimate() {
        let u = 46_800 * 5120 * 2
        #expect(
            WeightStreaming.engineWorkingBytes(
                tokens: 46_800, dim: 5120, ffnDim: 13_824, textTokens: 512, ffnChunkTokens: 0,
                activationPrefetch: 1) == 27 * u + 3 * 46_800 * 13_824 * 2 + 4 * 512 * 5120 * 2)
        #expect(
            WeightStreaming.engineWorkingBytes(
                tokens: 46_800, dim: 5120, ffnDim: 13_824, textTokens: 512, ffnChunkTokens: 16_384,
                activationPrefetch: 1) == 27 * u + 3 * 16_384 * 13_824 * 2 + 4 * 512 * 5120 * 2)
    }

    /// An RTX 4090 (24,564 MiB) at 49 frames, by hand: usable 24,683,479,040 B; fixed 520,530,048 B of
    /// non-block weights + 52,428,800 LoRA parameters × 10 B; working 16,842,014,720 B; room for
    /// 5,390,905,216 B = 7.67 blocks → 7 resident, 33 streamed.
    @Test func rtx4090At49FramesByHand() throws {
        let plan = try Planner.plan(streamingConfig(gpu: "RTX-4090", frames: 49))
        let p = plan.placement
        #expect(p.limitBytes == 24_564 * (1 << 20) - (1 << 30))
        #expect(p.engineFixedBytes == 520_530_048 + 52_428_800 * 10)
        #expect(p.engineWorkingBytes == 16_842_014_720)
        #expect(p.residentBlocks == 7 && p.streamedBlocks == 33 && p.slots == 2 && p.fitsRule)
        #expect(p.hostWeightBytes == 33 * 702_870_528)
        // Host: 33 blocks pinned, 39 blocks' kept activations (2 × 46,800 × 5120 × 2 B + 40 × 46,800 × 4 B of
        // log-sum-exp), the engine process (3 GiB), and 8 GiB left free.
        let kept = 2 * 46_800 * 5120 * 2 + 40 * 46_800 * 4
        #expect(plan.host.trainingBytesPerProcess == 33 * 702_870_528 + 39 * kept + (3 << 30))
        #expect(plan.host.loadingBytesPerProcess == 40 * 702_870_528 + 520_530_048 + (3 << 30))
        #expect(plan.host.neededBytes == 33 * 702_870_528 + 39 * kept + (3 << 30) + (8 << 30))
        // GPU: the resident blocks and the embeddings replace the whole expert, two slots come in.
        let weights = try #require(plan.memory.items.first { $0.name == "expert weights" })
        #expect(weights.bytes == (a.expertParameters - 33 * a.blockParameters) * 2)
        #expect(plan.memory.items.first { $0.name == "streaming slots" }?.bytes == 2 * 702_870_528)
        #expect(plan.memory.fits)
        // The copies: each block 702,870,528 B at 25 GB/s; 2 × 33 − 4 a step (the last two forward blocks
        // serve their backward, the last two backward blocks the next forward), all behind the compute.
        #expect(abs(plan.streaming.weightCopySeconds - 702_870_528 / 25e9) < 1e-12)
        #expect(abs(plan.streaming.linkSeconds - 62 * 702_870_528 / 25e9) < 1e-9)
        #expect(plan.streaming.exposedSeconds == 0)
        #expect(plan.throughput.video.weightStreamingSeconds == 0)
    }

    /// fp8 host weights: half the host bytes of each streamed block; on the GPU a block's fp8 bytes and
    /// 1,024 rows of the widest weight in float32 twice (13,824 × 8 B) in flight, which the engine's rule
    /// counts as fixed (with 6 B a row element).
    @Test func fp8HalvesTheHostCopies() throws {
        var c = streamingConfig(gpu: "RTX-4090", frames: 49)
        let bf16 = try Planner.plan(c)
        c.model.weightsDtype = .fp8
        let fp8 = try Planner.plan(c)
        #expect(fp8.placement.engineFixedBytes - bf16.placement.engineFixedBytes == 351_837_184 + 1024 * 13_824 * 6)
        // 7.67 blocks of room less 0.62 of staging: still 7 resident.
        #expect(fp8.placement.residentBlocks == 7 && bf16.placement.residentBlocks == 7)
        #expect(fp8.memory.peakBytes - bf16.memory.peakBytes == 351_837_184 + 1024 * 13_824 * 8)
        #expect(bf16.host.neededBytes - fp8.host.neededBytes == 33 * (702_870_528 - 351_837_184))
        #expect(fp8.checks.contains { $0.code == "fp8" })
    }

    /// Visits with nothing streamed cost nothing; with every block in the k + 1 slots nothing is copied
    /// after the first step.
    @Test func simulationWithoutCopies() {
        let resident = WeightStreaming.simulate(
            blocks: 4, residentBlocks: 4, prefetch: 1, forwardBlockSeconds: 1,
            backwardBlockSeconds: 2, weightCopySeconds: 5, activationCopySeconds: 0)
        #expect(resident.exposedSeconds == 0 && resident.copiesPerStep == 0)
        let fitsSlots = WeightStreaming.simulate(
            blocks: 4, residentBlocks: 2, prefetch: 1, forwardBlockSeconds: 1,
            backwardBlockSeconds: 2, weightCopySeconds: 5, activationCopySeconds: 0)
        #expect(fitsSlots.exposedSeconds == 0 && fitsSlots.copiesPerStep == 0)
    }

    /// Three streamed blocks, two slots, copies 4 s against 1 s of compute a visit, traced by hand over the
    /// steady step (visits F0 F1 F2 B2 B1 B0, starting at t = 19 with block 0 in slot A, 1 in B):
    /// F0 19–20; F1 20–21 and block 2 copied into A from 20 (A freed) to 24; F2 24–25; B2 25–26;
    /// B1 26–27 (still in B) and block 0 copied into A 26–30; B0 30–31. 12 s for 6 s of compute: 6 s
    /// exposed, 2 copies.
    @Test func simulationLinkBoundByHand() {
        let r = WeightStreaming.simulate(
            blocks: 3, residentBlocks: 0, prefetch: 1, forwardBlockSeconds: 1,
            backwardBlockSeconds: 1, weightCopySeconds: 4, activationCopySeconds: 0)
        #expect(r.exposedSeconds == 6 && r.copiesPerStep == 2)
    }

    /// Activations alone: B0's come back on the link from when B1 starts (t = 8 in the steady step 6–12):
    /// 3 s of copy against 1 s of B1 leaves B0 waiting 2 s.
    @Test func simulationActivationsByHand() {
        let r = WeightStreaming.simulate(
            blocks: 2, residentBlocks: 2, prefetch: 1, forwardBlockSeconds: 1,
            backwardBlockSeconds: 1, weightCopySeconds: 0, activationCopySeconds: 3)
        #expect(r.exposedSeconds == 2 && r.copiesPerStep == 0)
    }

    /// Weights and activations on one link, traced by hand: 4 blocks, block 0 resident, 2 s of compute a
    /// visit, 1 s a block copy, 1.5 s a block's activations. Alone, either hides behind the compute. Together,
    /// in the steady step (16.5–33 s): B2 26.5–28.5 while block 1's weights take the link 26.5–27.5, then
    /// B1's activations 27.5–29: B1 starts at 29 instead of 28.5. 0.5 s exposed, 2 copies.
    @Test func weightsAndActivationsShareTheLink() {
        let weights = WeightStreaming.simulate(
            blocks: 4, residentBlocks: 1, prefetch: 1, forwardBlockSeconds: 2,
            backwardBlockSeconds: 2, weightCopySeconds: 1, activationCopySeconds: 0)
        #expect(weights.exposedSeconds == 0 && weights.copiesPerStep == 2)
        let activations = WeightStreaming.simulate(
            blocks: 4, residentBlocks: 4, prefetch: 1, forwardBlockSeconds: 2,
            backwardBlockSeconds: 2, weightCopySeconds: 1, activationCopySeconds: 1.5)
        #expect(activations.exposedSeconds == 0)
        let both = WeightStreaming.simulate(
            blocks: 4, residentBlocks: 1, prefetch: 1, forwardBlockSeconds: 2,
            backwardBlockSeconds: 2, weightCopySeconds: 1, activationCopySeconds: 1.5)
        #expect(both.exposedSeconds == 0.5 && both.copiesPerStep == 2)
    }
}

/// The setting `wanlora plan --gpu-table` picks on each catalog GPU (one A14B expert, one GPU, dropout 0,
/// 8-bit AdamW, fast blocks).
@Suite struct PlacementChoiceTests {
    func rows(frames: Int) -> [String: GPUTableRow] {
        var config = streamingConfig(gpu: "H100", frames: frames)
        config.lora.dropout = 0
        return Dictionary(uniqueKeysWithValues: GPUTable.rows(config: config).map { ($0.gpu, $0) })
    }

    /// By hand at 49 frames (fixed + working = 17,886,832,768 B, a block 702,870,528 B):
    /// L40S: usable 46,068 MiB − 1 GiB = 47,232,057,344 B ≥ 17,886,832,768 + 40 blocks = 46,001,653,888 → all
    /// resident. A100 40 GB: usable 41,431,916,544; room 41,431,916,544 − 17,886,832,768 − 2 slots =
    /// 22,139,342,720 = 31.5 blocks → 31. RTX 4090: 7 (StreamingArithmeticTests).
    @Test func at49Frames() throws {
        let r = rows(frames: 49)
        for (gpu, resident) in [
            ("RTX-4090", 7), ("A100-40GB", 31), ("L40S", 40), ("A100-80GB", 40), ("H100", 40), ("H200", 40),
        ] {
            let option = try #require(r[gpu]?.option, "\(gpu)")
            #expect(option.frames == 49 && option.hostWeights == "bf16" && option.summary == "as configured", "\(gpu)")
            #expect(option.residentBlocks == resident, "\(gpu): \(option.residentBlocks)")
            #expect(option.peakBytes <= option.usableBytes, "\(gpu)")
        }
        // Streamed copies hide behind the compute at 49 frames on every card that streams.
        for gpu in ["RTX-4090", "A100-40GB"] {
            #expect(r[gpu]?.option?.hiddenLinkSeconds == r[gpu]?.option?.linkSeconds)
        }
        // The V100s are planned with fp16 compute, and say that the engine does not train it.
        let v100 = try #require(r["V100-32GB"])
        #expect(
            v100.option?.frames == 49
                && v100.notes.first?.hasPrefix("no bf16 arithmetic: planned with fp16 compute") == true)
        #expect(v100.notes.contains { $0.hasPrefix("no FlashAttention") })
        // 16 GB holds only a shorter clip, with the FFN in chunks.
        #expect(r["V100-16GB"]?.option?.frames == 45 && r["V100-16GB"]?.option?.ffnChunkTokens == 16_384)
    }

    @Test func at81Frames() throws {
        let r = rows(frames: 81)
        for (gpu, resident) in [("A100-40GB", 16), ("L40S", 25), ("H100", 40)] {
            let option = try #require(r[gpu]?.option, "\(gpu)")
            #expect(
                option.frames == 81 && option.summary == "as configured" && option.residentBlocks == resident, "\(gpu)")
        }
        // A 24 GB card fits 77 frames with the FFN in chunks (81 does not by the planner's working set).
        let rtx = try #require(r["RTX-4090"]?.option)
        #expect(rtx.frames == 77 && rtx.ffnChunkTokens == 16_384 && rtx.hostWeights == "bf16")
    }

    /// Two trained experts with the preset's inactive expert on the GPU: the table moves it to host memory
    /// where the card needs streaming, and says so.
    @Test func twoExpertsStreamWithTheInactiveOneInHostMemory() throws {
        var config = streamingConfig(gpu: "H100", frames: 49)
        config.training.expert = .both
        config.hardware.inactiveExpert = .resident
        let rows = Dictionary(uniqueKeysWithValues: GPUTable.rows(config: config).map { ($0.gpu, $0) })
        let rtx = try #require(rows["RTX-4090"]?.option)
        #expect(rtx.changes.first == "hardware.inactive_expert = \"offload\"" && rtx.frames == 49)
        #expect(rows["H100"]?.option?.summary == "as configured")
    }
}
