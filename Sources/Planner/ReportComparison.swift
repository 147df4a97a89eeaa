import Config
import Foundation

/// The seed report's own claims (sections 3.2, 4.1 and 4.4 of the report) beside what the
/// planner computes for the same settings.
public struct ReportComparison: Sendable, Codable {
    public struct Row: Sendable, Equatable, Codable {
        public var claim: String
        public var report: String
        public var computed: String
        public var verdict: String
    }

    public var rows: [Row]
    /// The plan of the report's V100 setting as configured (bf16).
    public var v100AsConfigured: Plan
    /// The same with fp16, the best a V100 can do.
    public var v100BestCase: Plan
    /// One H100 at the measured 24.2 s per 49-frame sample, for scale.
    public var h100SingleGPU: Plan

    /// Compares the report with the planner on `dataset` (default: the archive's training split).
    public static func make(dataset: DatasetSize = .archiveTrainingSplit) throws -> ReportComparison {
        // The report's plan trains diffusers-style blocks; wanlora's fast blocks are not part of it.
        var a100Config = WanLoRAConfig.preset(.a100)
        a100Config.training.blocks = .diffusers
        let a100 = try Planner.plan(a100Config, dataset: dataset)
        var v100Config = WanLoRAConfig.preset(.v100)
        v100Config.training.blocks = .diffusers
        let v100 = try Planner.plan(v100Config, dataset: dataset)
        var fp16Config = v100Config
        fp16Config.training.mixedPrecision = .fp16
        let v100fp16 = try Planner.plan(fp16Config, dataset: dataset)
        var h100Config = Calibration.referenceConfig(gpu: "H100", frames: 49)
        h100Config.training.expert = .both
        h100Config.training.epochs = 3
        h100Config.training.gradAccumulation = 32
        let h100 = try Planner.plan(h100Config, dataset: dataset)

        let reportEffectiveBatch = 1 * 16 * 2
        let reportSteps = 170_180 / 32
        func n(_ x: Int) -> String { grouped(x) }
        func mb(_ bytes: Int) -> String { String(format: "%.0f MB", Double(bytes) / 1e6) }
        func hours(_ h: Double) -> String { h >= 100 ? n(Int(h.rounded())) + " h" : String(format: "%.1f h", h) }
        func ratio(_ computed: Double, _ claimed: Double) -> String {
            let r = computed / claimed
            return r >= 1 ? String(format: "%.1f× more", r) : String(format: "%.1f× less", 1 / r)
        }

        let r32 = a100.lora
        let r16 = v100.lora
        let expertGB = Double(a100.model.expertBytesBF16) / 1e9
        let weightsPerV100 = v100.memory.items.first { $0.name == "expert weights" }?.bytes ?? 0
        var rows: [Row] = []
        rows.append(
            Row(
                claim: "LoRA parameters, rank 32 (A100)",
                report: "52M (40 layers × 4 modules × 327,680)",
                computed: "\(n(r32.parametersPerExpert)) per expert (\(r32.modulesPerExpert) modules: "
                    + "to_q/k/v/out.0 of self- AND cross-attention, "
                    + "8 a block); \(n(r32.parametersTotal)) for both experts",
                verdict: ratio(Double(r32.parametersTotal), 52_428_800)
            ))
        rows.append(
            Row(
                claim: "LoRA parameters, rank 16 (V100)",
                report: "26M (40 layers × 4 modules × 163,840)",
                computed: "\(n(r16.parametersPerExpert)) per expert; \(n(r16.parametersTotal)) for both experts",
                verdict: ratio(Double(r16.parametersTotal), 26_214_400)
            ))
        rows.append(
            Row(
                claim: "LoRA checkpoint, rank 16",
                report: "~487 MB",
                computed: "\(mb(r16.bytesPerExpertBF16)) bf16 / \(mb(r16.bytesPerExpertFP32)) "
                    + "fp32 per expert; \(mb(r16.bytesTotalBF16)) / \(mb(r16.bytesTotalFP32)) for both",
                verdict: "\(ratio(Double(r16.bytesPerExpertBF16), 487e6)) (the LoRA file of one expert, bf16)"
            ))
        rows.append(
            Row(
                claim: "DiT base weights on the GPU",
                report: "~20 GB",
                computed: String(
                    format: "%.1f GB (%.1f GiB) per expert in bf16; %@ a V100 sharded over 2 (one expert resident)",
                    expertGB, Double(a100.model.expertBytesBF16) / Double(1 << 30), gib(weightsPerV100)),
                verdict: "the full expert is \(ratio(expertGB, 20))"
            ))
        rows.append(
            Row(
                claim: "Memory per V100 (49 frames, rank 16)",
                report: "~30 GB of 32 GB (base 20 + LoRA 2 + grads/optimizer 6 + activations 2)",
                computed: "\(gib(v100.memory.peakBytes)) peak as configured (bf16: math attention stores the scores); "
                    + "\(gib(v100fp16.memory.peakBytes)) with fp16; usable \(gib(v100.memory.usableBytes))",
                verdict: v100fp16.memory.fits ? "fits with fp16 only" : "does not fit, even with fp16"
            ))
        rows.append(
            Row(
                claim: "Effective batch",
                report: "32 = 1 × 16 × 2 GPUs",
                computed: "\(v100.setup.effectiveBatch) = 1 × 16 × \(v100.setup.dataParallelSize) "
                    + "data-parallel group (Ulysses 2 puts both GPUs on one sample)",
                verdict: "\(reportEffectiveBatch / max(1, v100.setup.effectiveBatch))× smaller than claimed"
            ))
        rows.append(
            Row(
                claim: "Optimizer steps per epoch",
                report: "5,318 (170,180 / 32)",
                computed: "\(n(v100.schedule.stepsPerEpoch)) (\(n(dataset.samples)) / \(v100.setup.effectiveBatch))",
                verdict: ratio(Double(v100.schedule.stepsPerEpoch), Double(reportSteps))
            ))
        rows.append(
            Row(
                claim: "Time per optimizer step, V100",
                report: "~20–25 s",
                computed: String(
                    format: "%.0f s with fp16 (%.0f s a video sample, "
                        + "%.1f s an image); %.0f s as configured (bf16 emulated)",
                    v100fp16.schedule.secondsPerStep, v100fp16.throughput.video.totalSeconds,
                    v100fp16.throughput.image.totalSeconds, v100.schedule.secondsPerStep),
                verdict: ratio(v100fp16.schedule.secondsPerStep, 22.5)
            ))
        rows.append(
            Row(
                claim: "Training time, 3 epochs",
                report: "96 h on 2 × V100 (32 h an epoch)",
                computed:
                    "\(hours(v100fp16.schedule.runHours)) on 2 × V100 with fp16 (\(hours(v100.schedule.runHours)) "
                    + "as configured); \(n(Int(h100.schedule.gpuHours.rounded()))) H100-hours on one H100 at 49 frames "
                    + "(\(n(dataset.videos)) videos at "
                    + "\(String(format: "%.1f", h100.throughput.video.totalSeconds)) s + \(n(dataset.images)) "
                    + "images at \(String(format: "%.2f", h100.throughput.image.totalSeconds)) s, × 3)",
                verdict: ratio(v100fp16.schedule.runHours, 96)
            ))
        rows.append(
            Row(
                claim: "bf16 mixed precision on V100",
                report: "used (bf16, \"50% memory saving\")",
                computed: "V100 has no bf16 arithmetic (emulated at "
                    + "\(fmt(GPU.v100_32.fp32TFLOPs)) TFLOP/s) and no FlashAttention",
                verdict: "not possible as planned"
            ))
        rows.append(
            Row(
                claim: "A100 preset (8 × A100 80GB, 81 frames, rank 32)",
                report: "not estimated",
                computed: "\(gib(a100.memory.peakBytes)) per GPU; "
                    + "\(String(format: "%.0f", a100.throughput.video.totalSeconds)) s a video sample per Ulysses "
                    + "pair; \(hours(a100.schedule.runHours)) for 3 epochs "
                    + "(\(n(Int(a100.schedule.gpuHours.rounded()))) GPU-hours, estimate)",
                verdict: a100.memory.fits ? "fits" : "does not fit"
            ))
        return ReportComparison(rows: rows, v100AsConfigured: v100, v100BestCase: v100fp16, h100SingleGPU: h100)
    }
}
