import Config
import Foundation
import Testing

@testable import Planner

/// Issue 18: `wanlora plan` against the weight-streaming runs on the H100 (docs/BENCHMARKS.md "Weight streaming",
/// `Calibration.measurements`), each planned from scratch as `wanlora plan` plans it: the planner's own placement
/// (the engine's rule under the cap, checked against the planner's peak), not the one the engine reported.
@Suite struct StreamingCalibrationTests {
    static let gib = Double(1 << 30)

    /// The bench's setting (`Calibration.referenceConfig`: the high-noise expert only, dropout 0, 8-bit AdamW, fast
    /// blocks) with the measurement's FFN chunk and GPU memory cap.
    static func config(_ m: Calibration.Measurement) -> WanLoRAConfig {
        var config = Calibration.referenceConfig(gpu: m.gpu, frames: m.frames, blocks: .fast)
        config.training.ffnChunkTokens = m.ffnChunkTokens
        config.hardware.gpuMemoryLimit = m.limitGiB ?? 0
        return config
    }

    static var streaming: [Calibration.Measurement] { Calibration.measurements.filter { $0.residentBlocks != nil } }

    static func pinnedGiB(_ host: HostMemoryBudget) -> Double {
        Double(host.items.filter { $0.name.hasSuffix("(pinned)") }.map(\.bytes).reduce(0, +)) / gib
    }

    /// Every row within 10% on s/sample, peak allocated and pinned host memory (weights + activations), and the
    /// same resident blocks as the engine placed: both through `Planner.plan` and through `Calibration.checks`.
    @Test func fiveRowsWithin10Percent() throws {
        let rows = Self.streaming
        #expect(rows.count == 5 && rows.filter { $0.limitGiB != nil }.count == 3)
        for m in rows {
            let plan = try Planner.plan(Self.config(m))
            let seconds = plan.throughput.video.totalSeconds
            let peak = Double(plan.memory.peakBytes) / Self.gib
            let pinned = Self.pinnedGiB(plan.host)
            #expect(plan.placement.residentBlocks == m.residentBlocks, "\(m.name): \(plan.placement.residentBlocks)")
            #expect(abs(seconds / m.seconds! - 1) <= m.tolerance, "\(m.name): \(seconds) s")
            #expect(abs(peak / m.peakGiB! - 1) <= m.tolerance, "\(m.name): \(peak) GiB")
            #expect(abs(pinned / m.hostPinnedGiB! - 1) <= m.tolerance, "\(m.name): \(pinned) GiB pinned")
            #expect(plan.fits && plan.setup.activationOffload == "host", "\(m.name)")
            #expect(m.tolerance == 0.10)
        }
        let checks = Calibration.checks.filter { $0.measurement.residentBlocks != nil }
        #expect(checks.count == 5)
        for check in checks {
            let name = check.measurement.name
            #expect(check.modelResidentBlocks == check.measurement.residentBlocks, "\(name)")
            #expect(abs(try #require(check.secondsError)) <= 0.10, "\(name): \(check.modelSeconds) s")
            #expect(abs(try #require(check.peakError)) <= 0.10, "\(name): \(check.modelPeakGiB ?? 0) GiB")
            #expect(abs(try #require(check.hostError)) <= 0.10, "\(name): \(check.modelHostPinnedGiB ?? 0) GiB")
        }
    }

    /// The capped rows by hand. The engine reported fixed 1,044,818,048 B and working 14,319,190,016 B (49 frames)
    /// and 22,281,814,016 B (81 frames) (bench/results/2026-12-07-h100-streaming/stream-table.json); a block is
    /// 702,870,528 B. 24 GiB, 49 frames: ⌊(25,769,803,776 − 1,044,818,048 − 14,319,190,016 − 2 blocks) / block⌋ =
    /// ⌊9,000,054,656 / 702,870,528⌋ = 12; 40 GiB: ⌊26,179,923,840 / block⌋ = 37; 24 GiB, 81 frames:
    /// ⌊1,037,430,656 / block⌋ = 1. The peak then follows from the measured working set (W = 24.0 U + 0.21 GiB):
    /// 21.04, 37.41 and 20.43 GiB to 0.01 GiB.
    @Test func cappedRowsByHand() throws {
        let engineWorking = [49: 14_319_190_016, 81: 22_281_814_016]
        let expected: [(frames: Int, cap: Double, resident: Int, peakGiB: Double)] = [
            (49, 24, 12, 21.04), (49, 40, 37, 37.41), (81, 24, 1, 20.43),
        ]
        for row in expected {
            let m = try #require(Self.streaming.first { $0.frames == row.frames && $0.limitGiB == row.cap })
            let p = try Planner.plan(Self.config(m))
            #expect(p.placement.engineFixedBytes == 1_044_818_048)
            #expect(p.placement.engineWorkingBytes == engineWorking[row.frames])
            #expect(p.placement.blockBytes == 702_870_528 && p.placement.slots == 2)
            #expect(p.placement.limitBytes == Int(row.cap) << 30, "the engine's own limit: the cap")
            #expect(p.placement.residentBlocks == row.resident)
            #expect(abs(Double(p.memory.peakBytes) / Self.gib - row.peakGiB) < 0.01, "\(p.memory.peakBytes)")
        }
    }

    /// The host model covers the process: within 24 GiB at 81 frames the run pinned 82.2 GiB and its peak RSS was
    /// 85.1 GiB; the planner's per-process host memory (pinned + the engine process) is within 10% of it.
    @Test func processHostMemory() throws {
        let m = try #require(Self.streaming.first { $0.frames == 81 && $0.limitGiB == 24 })
        let host = try Planner.plan(Self.config(m)).host
        let perProcess = Double(host.trainingBytesPerProcess) / Self.gib
        let rss = Calibration.streamingProcessPeakRSSGiB
        #expect(abs(perProcess - rss) / rss <= 0.10, "\(perProcess) GiB")
    }

    /// The engine's fixed bytes count the optimizer the run gets (`train.OPTIMIZER_STATE_BYTES`: 2 B a LoRA
    /// parameter with 8-bit AdamW, 8 B with AdamW), and the planner predicts the rule with the same: 6 B ×
    /// 52,428,800 parameters = 314,572,800 B more with AdamW, in the rule's fixed bytes and in the peak; at 24 GiB
    /// the rule keeps ⌊(25,769,803,776 − 1,359,390,848 − 14,319,190,016 − 1,405,741,056) / 702,870,528⌋ = 12 either
    /// way.
    @Test func adamWCountsItsRealStateInTheRule() throws {
        let m = try #require(Self.streaming.first { $0.frames == 49 && $0.limitGiB == 24 })
        let eightBit = try Planner.plan(Self.config(m))
        var config = Self.config(m)
        config.training.optimizer = .adamw
        let adamW = try Planner.plan(config)
        #expect(eightBit.placement.engineFixedBytes == 1_044_818_048)
        #expect(adamW.placement.engineFixedBytes == 1_044_818_048 + 6 * 52_428_800)
        #expect(adamW.placement.residentBlocks == 12 && eightBit.placement.residentBlocks == 12)
        #expect(adamW.memory.peakBytes - eightBit.memory.peakBytes == 6 * 52_428_800)
    }

    /// Whatever the planner places, the engine's rule (its fixed and working estimate) under the limit the plan
    /// gives it keeps exactly those blocks, and that limit, which also caps the allocator, holds the planner's peak.
    /// - The measured setting: the rule's 12 blocks under the cap itself.
    /// - The h100 preset's dropout 0.05 and 32-bit AdamW: the engine counts the six video-side adapters' dropped-out
    ///   inputs, 46,800 × 6 × 5120 × 2 = 2,875,392,000 B more working, and AdamW's 8 B a parameter, so its rule
    ///   keeps ⌊(25,769,803,776 − 1,359,390,848 − 17,194,582,016 − 1,405,741,056) / 702,870,528⌋
    ///   = ⌊5,810,089,856 / block⌋ = 8, whose peak fits.
    /// - Rank 160 with 32-bit AdamW: the rule's fixed counts 524,288,000 LoRA parameters × 16 B = 8,909,138,048 B
    ///   with the non-block weights; the rule keeps ⌊(25,769,803,776 − 8,909,138,048 − 14,319,190,016 −
    ///   1,405,741,056) / block⌋ = 1 at 24 GiB, whose peak fits.
    @Test func theRuleUnderThePlansLimitGivesThePlansPlacement() throws {
        let m = try #require(Self.streaming.first { $0.frames == 49 && $0.limitGiB == 24 })
        var preset = Self.config(m)
        preset.lora.dropout = 0.05
        preset.training.optimizer = .adamw
        var rank160 = Self.config(m)
        rank160.lora.rank = 160
        rank160.training.optimizer = .adamw
        let cases: [(WanLoRAConfig, resident: Int, limit: Int, fixed: Int, working: Int)] = [
            (Self.config(m), 12, 24 << 30, 1_044_818_048, 14_319_190_016),
            (preset, 8, 24 << 30, 1_359_390_848, 14_319_190_016 + 2_875_392_000),
            (rank160, 1, 24 << 30, 8_909_138_048, 14_319_190_016),
        ]
        for (config, resident, limit, fixed, working) in cases {
            let plan = try Planner.plan(config)
            let p = plan.placement
            #expect(p.fitsRule && p.residentBlocks == resident && p.limitBytes == limit, "\(p)")
            #expect(p.engineFixedBytes == fixed && p.engineWorkingBytes == working)
            let byRule = WeightStreaming.residentBlocks(
                limitBytes: p.limitBytes, blocks: p.blocks, blockBytes: p.blockBytes, fixedBytes: p.engineFixedBytes,
                workingBytes: p.engineWorkingBytes, prefetch: StreamingRule.engine.prefetchBlocks)
            #expect(byRule == p.residentBlocks)
            #expect(plan.memory.peakBytes <= p.limitBytes)
            #expect(plan.checks.contains { $0.code == "engine-limit" } == (limit < 24 << 30))
        }
    }

    /// With the kept activations on the GPU the engine's rule still counts only the block in backward's and the
    /// next one's (its estimate does not know where they wait), 38 blocks' (0.9 GiB each at 49 frames) short of
    /// the planner's peak: under any limit it keeps more blocks than the limit holds. The plan says so (and the
    /// table's `auto` keeps them in host memory).
    @Test func keptActivationsOnTheGPUHaveNoLimitThatHolds() throws {
        let m = try #require(Self.streaming.first { $0.frames == 49 && $0.limitGiB == 24 })
        var config = Self.config(m)
        config.hardware.gpuMemoryLimit = 60
        config.training.activationOffload = .none
        let plan = try Planner.plan(config)
        #expect(!plan.placement.fitsRule && plan.placement.engineWorkingBytes == 14_319_190_016)
        #expect(plan.memory.peakBytes <= plan.memory.usableBytes, "streaming every block would fit the planner's peak")
        let error = try #require(plan.checks.first { $0.code == "memory" })
        #expect(error.severity == .error && error.message.hasPrefix("The engine cannot place 49 frames"))
    }
}

/// Two trained experts with the inactive one in host memory: its LoRA parameters, gradients and optimizer state go
/// with it (the engine's `Trainer._activate`), so the GPU holds one expert's and the host the other's.
@Suite struct InactiveExpertLoRAStateTests {
    @Test func oneExpertsLoRAStateOnTheGPU() throws {
        var config = streamingConfig(gpu: "H100", frames: 49, limitGiB: 24)
        config.training.expert = .both
        config.hardware.inactiveExpert = .offload
        config.training.optimizer = .adamw
        let plan = try Planner.plan(config)
        let items = Dictionary(uniqueKeysWithValues: plan.memory.items.map { ($0.name, $0.bytes) })
        #expect(items["LoRA weights"] == 52_428_800 * 4 && items["LoRA gradients"] == 52_428_800 * 4)
        #expect(items["optimizer state"] == 52_428_800 * 8)
        let host = try #require(plan.host.items.first { $0.name == "inactive expert" })
        #expect(host.bytes == Placement.expertWeightBytes(Architecture.wan22T2VA14B) + 52_428_800 * (4 + 4 + 8))
    }
}
