import Config
import Foundation
import Testing

@testable import Planner

/// training.keep_linear_blocks (issue 18): the last N fast blocks keep their six dim × dim products for the
/// backward. One A14B expert on an H100 at 49 frames (46,800 tokens), by hand.
@Suite struct KeptLinearTests {
    let a = Architecture.wan22T2VA14B
    let tokens = 46_800.0
    let unit = 46_800.0 * 5120 * 2  // one [tokens, dim] bf16 activation

    func config(keep: Int) -> WanLoRAConfig {
        var c = streamingConfig(gpu: "H100", frames: 49)
        c.training.ffnChunkTokens = 16_384
        c.training.keepLinearBlocks = keep
        return c
    }

    /// The recompute loses 6 products of 2·S·d² per keeping block, nothing else; 50 is capped at the 40 blocks.
    @Test func recomputeSkipsSixProductsPerKeepingBlock() {
        func recompute(_ keep: Int) -> FlopBreakdown {
            FlopModel.training(
                architecture: a, tokens: 46_800, textTokens: 512, lora: nil, checkpointing: true,
                keepsAttention: true, skipsLastFFNProduct: true, keptLinearBlocks: keep
            ).recompute
        }
        let product = 2 * tokens * 5120 * 5120  // 2,453,667,840,000 FLOP
        #expect(recompute(0).linear - recompute(24).linear == 24 * 6 * product)
        #expect(recompute(0).linear - recompute(50).linear == 40 * 6 * product)
        #expect(recompute(24).selfAttention == 0 && recompute(24).crossAttention == recompute(0).crossAttention)
    }

    /// The step is shorter by exactly those products at the GEMM rate (the extra copies hide at 49 frames).
    @Test func stepTimeDropsByTheSkippedProducts() throws {
        let gpu = try #require(GPU.catalog.first { $0 == .h100 })
        let geometry = try ClipGeometry(frames: 49, width: 1280, height: 720, architecture: a)
        func time(_ keep: Int) throws -> SampleTime {
            let c = config(keep: keep)
            let lora = try LoRACount.count(architecture: a, targets: c.lora.targets, rank: c.lora.rank, experts: 1)
            return TimeModel.trainingSample(
                config: c, architecture: a, gpu: gpu, geometry: geometry, lora: lora,
                constants: Calibration.fittedFast
            ).time
        }
        let skipped = 24 * 6 * 2 * tokens * 5120 * 5120
        let rate = gpu.matrixTFLOPs(for: .bf16).rate * 1e12 * gpu.gemmEfficiency
        let (plain, kept) = (try time(0), try time(24))
        #expect(abs((plain.gemmSeconds - kept.gemmSeconds) - skipped / rate) < 1e-9)
        #expect(plain.encodeAndOffloadSeconds == kept.encodeAndOffloadSeconds)
        #expect(plain.totalSeconds - kept.totalSeconds > 0.4)
    }

    /// Host: 23 blocks' six products pinned (the last block's stay on the GPU); GPU: two blocks' worth; the
    /// engine's working estimate: the prefetched block's six.
    @Test func memoryOfTheKeptProducts() throws {
        let gpu = try #require(GPU.catalog.first { $0 == .h100 })
        let geometry = try ClipGeometry(frames: 49, width: 1280, height: 720, architecture: a)
        let c = config(keep: 24)
        let lora = try LoRACount.count(architecture: a, targets: c.lora.targets, rank: c.lora.rank, experts: 1)
        let budget = MemoryModel.budget(
            config: c, architecture: a, gpu: gpu, geometry: geometry, lora: lora, constants: Calibration.fittedFast)
        #expect(budget.items.first { $0.name == "kept linear outputs on the GPU" }?.bytes == Int(2 * 6 * unit))
        let placement = Placement.weights(
            config: c, architecture: a, gpu: gpu, geometry: geometry, lora: lora,
            constants: Calibration.fittedFast, activationOffload: true)
        let host = Placement.hostMemory(
            config: c, architecture: a, geometry: geometry, lora: lora, placement: placement, availableBytes: nil)
        #expect(host.items.first { $0.name == "kept linear outputs (pinned)" }?.bytes == Int(23 * 6 * unit))
        let plain = WeightStreaming.engineWorkingBytes(
            tokens: 46_800, dim: 5120, ffnDim: 13_824, textTokens: 512, ffnChunkTokens: 16_384, activationPrefetch: 1)
        let kept = WeightStreaming.engineWorkingBytes(
            tokens: 46_800, dim: 5120, ffnDim: 13_824, textTokens: 512, ffnChunkTokens: 16_384, activationPrefetch: 1,
            keptLinears: 6)
        #expect(kept - plain == Int(6 * unit))
        // Off by default: no item, no pinned bytes.
        let off = MemoryModel.budget(
            config: config(keep: 0), architecture: a, gpu: gpu, geometry: geometry, lora: lora,
            constants: Calibration.fittedFast)
        #expect(!off.items.contains { $0.name.hasPrefix("kept linear") })
    }
}
