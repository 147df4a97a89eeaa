import Config
import Foundation
import Testing

@testable import Planner

/// `wanlora sample`'s time and memory per layout (SampleTimeModel), by hand from the measured step.
@Suite struct SampleTimingTests {
    let a = Architecture.wan22T2VA14B

    func estimate(gpus: Int, ulysses: Int = 1, fsdp: Bool = false, gpu: GPU = .h100, frames: Int = 81) throws
        -> SampleLayoutEstimate
    {
        let g = try ClipGeometry(frames: frames, width: 1280, height: 720, architecture: a)
        return SampleTimeModel.estimate(
            architecture: a, gpu: gpu, geometry: g, steps: 40, textLength: 512, gpus: gpus, ulysses: ulysses,
            fsdp: fsdp, constants: Calibration.fittedFast)
    }

    @Test func oneGPUOfTheMeasurementIsTheMeasuredStepAndDecode() throws {
        let one = try estimate(gpus: 1, gpu: SampleTimeModel.measuredGPU)
        #expect(abs(one.secondsPerStep - 23.22) < 1e-9 && abs(one.decodeSeconds - 15.49) < 1e-9)
        #expect(abs(one.videoSeconds - (40 * 23.22 + 15.49)) < 1e-9)  // 944.29 s
        // the H100: the same compute, slower memory for the elementwise work: a little slower
        let h100 = try estimate(gpus: 1)
        #expect(h100.secondsPerStep > one.secondsPerStep && h100.secondsPerStep < 1.05 * one.secondsPerStep)
        #expect(abs(one.videoSeconds - (40 * one.secondsPerStep + one.decodeSeconds)) < 1e-9)
        #expect(one.ulyssesSecondsPerStep == 0 && one.fsdpExposedSecondsPerStep == 0)
        #expect(one.cfgBatch && one.fits && one.label == "1 GPU")
        #expect(abs(one.videosPerHour - 3600 / one.videoSeconds) < 1e-9)
    }

    @Test func ulyssesTwoHalvesTheComputeAndPaysTheExchange() throws {
        let one = try estimate(gpus: 1)
        let two = try estimate(gpus: 2, ulysses: 2)
        // q, k, v and the output of 37,800 tokens × 5120 × 2 B, both passes, 40 layers, half of it sent:
        // 61,931,520,000 B over 450 GB/s
        #expect(abs(two.ulyssesSecondsPerStep - 61_931_520_000 / 450e9) < 1e-12)
        #expect(abs(two.secondsPerStep - (one.secondsPerStep / 2 + 0.137_625_6)) < 1e-9)
        #expect(two.dataParallelGroups == 1 && two.label == "2 GPUs: Ulysses 2 × 1 group")
        // data parallel: each GPU its own videos at the one-GPU speed, twice the videos an hour
        let dp = try estimate(gpus: 2)
        #expect(abs(dp.secondsPerStep - one.secondsPerStep) < 1e-12)
        #expect(abs(dp.videosPerHour - 2 * one.videosPerHour) < 1e-9)
        #expect(dp.label == "2 GPUs: 2 data-parallel groups")
    }

    @Test func fsdpHidesItsGathersAndHalvesTheWeights() throws {
        let one = try estimate(gpus: 1)
        let sharded = try estimate(gpus: 2, fsdp: true)
        // 28,576,983,168 B × 1/2 over 450 GB/s = 0.032 s a forward: hidden under the compute
        #expect(sharded.fsdpExposedSecondsPerStep == 0)
        #expect(abs(sharded.secondsPerStep - one.secondsPerStep) < 1e-12)
        #expect(sharded.label == "2 GPUs: 2 data-parallel groups, FSDP")
        // the decode phase holds both experts: 2 × 28,576,983,168 B on one GPU, half of it with FSDP
        let g = try ClipGeometry(frames: 81, width: 1280, height: 720, architecture: a)
        let whole = SampleMemoryModel.plan(
            architecture: a, geometry: g, textLength: 512, inactiveExpert: .gpu, vaeTiling: true,
            textEncoderOnGPU: true, cfgBatch: true)
        let half = SampleMemoryModel.plan(
            architecture: a, geometry: g, textLength: 512, inactiveExpert: .gpu, vaeTiling: true,
            textEncoderOnGPU: true, expertShards: 2, cfgBatch: true)
        #expect(whole.items.first { $0.name == "both experts' weights" }?.bytes == 57_153_966_336)
        #expect(half.items.first { $0.name == "both experts' weights" }?.bytes == 28_576_983_168)
        #expect(half.items.first { $0.name == "gathered block" }?.bytes == 714_424_579)  // 28,576,983,168 / 40
        #expect(one.peakBytesPerGPU == whole.peakBytes && sharded.peakBytesPerGPU == half.peakBytes)
    }

    @Test func ulyssesAndBatchedGuidanceScaleTheActivations() throws {
        let g = try ClipGeometry(frames: 81, width: 1280, height: 720, architecture: a)
        func activations(_ ulysses: Int, _ batch: Bool) -> Int? {
            SampleMemoryModel.plan(
                architecture: a, geometry: g, textLength: 512, inactiveExpert: .gpu, vaeTiling: true,
                textEncoderOnGPU: true, ulysses: ulysses, cfgBatch: batch
            ).items.first { $0.name == "one block's activations" }?.bytes
        }
        let perTokenSample = SampleMemoryModel.activationBytesPerTokenDim * 5120
        #expect(activations(1, false) == Int(75_600 * perTokenSample))
        #expect(activations(1, true) == Int(2 * 75_600 * perTokenSample))
        #expect(activations(2, true) == Int(2 * 37_800 * perTokenSample))
        #expect(activations(8, false) == Int(9_450 * perTokenSample))
    }

    @Test func thePlanListsOneGPUAndTheRunsLayouts() throws {
        let g = try ClipGeometry(frames: 81, width: 1280, height: 720, architecture: a)
        let layouts = SampleTimeModel.layouts(
            architecture: a, gpu: .h100, geometry: g, steps: 40, textLength: 512, worldSize: 8,
            constants: Calibration.fittedFast)
        #expect(
            layouts.map(\.label) == [
                "1 GPU", "8 GPUs: 8 data-parallel groups", "8 GPUs: Ulysses 8 × 1 group",
                "8 GPUs: 8 data-parallel groups, FSDP", "8 GPUs: Ulysses 8 × 1 group, FSDP",
            ])
        #expect(
            SampleTimeModel.layouts(
                architecture: a, gpu: .h100, geometry: g, steps: 40, textLength: 512, worldSize: 1,
                constants: Calibration.fittedFast
            ).map(\.label) == ["1 GPU"])
        // a 24 GB card does not hold the two experts; eight of them sharded do
        #expect(try !estimate(gpus: 1, gpu: .rtx4090).fits)
        #expect(try estimate(gpus: 8, ulysses: 8, fsdp: true, gpu: .rtx4090).fits)
    }
}
