import Foundation
import Testing

@testable import Config

/// SPEC §6: the report's A100 and V100 columns, key by key, and our H100 preset.
@Suite struct PresetTests {
    @Test func a100MatchesTheReport() {
        let c = WanLoRAConfig.preset(.a100)
        #expect(c.lora.rank == 32 && c.lora.alpha == 32 && c.lora.dropout == 0.05)
        #expect(c.lora.targets == ["to_q", "to_k", "to_v", "to_out.0"])
        #expect(c.training.frames == 81)
        #expect(c.training.textLength == 512)
        #expect(c.hardware.gpusPerNode * c.hardware.nodes == 8)
        #expect(c.hardware.gpu == "A100-80GB")
        #expect(c.training.microBatch == 1 && c.training.gradAccumulation == 4)
        // The report's "effective batch 32" is micro × accumulation × GPUs.
        #expect(c.training.microBatch * c.training.gradAccumulation * c.hardware.worldSize == 32)
        sharedSettings(c)
    }

    @Test func v100MatchesTheReport() {
        let c = WanLoRAConfig.preset(.v100)
        #expect(c.lora.rank == 16 && c.lora.alpha == 16 && c.lora.dropout == 0.05)
        #expect(c.lora.targets == ["to_q", "to_k", "to_v", "to_out.0"])
        #expect(c.training.frames == 49)
        #expect(c.training.textLength == 256)
        #expect(c.hardware.worldSize == 2)
        #expect(c.hardware.gpu == "V100-32GB")
        #expect(c.training.microBatch == 1 && c.training.gradAccumulation == 16)
        #expect(c.training.microBatch * c.training.gradAccumulation * c.hardware.worldSize == 32)
        sharedSettings(c)
    }

    /// "Both" row of SPEC §6.
    func sharedSettings(_ c: WanLoRAConfig) {
        #expect(c.training.epochs == 3)
        #expect(c.training.learningRate == 1e-4)
        #expect(c.training.weightDecay == 0.01)
        #expect(c.training.warmupSteps == 100)
        #expect(c.training.schedule == .cosine)
        #expect(c.training.maxGradNorm == 1.0)
        #expect(c.training.optimizer == .adamw8bit)
        #expect(c.training.mixedPrecision == .bf16)
        #expect(c.training.gradientCheckpointing)
        #expect(c.training.cfgDropout == 0.1)
        #expect(c.hardware.t5 == .offload && c.hardware.vae == .offload)
        #expect(c.hardware.fsdp)
        #expect(c.hardware.ulyssesDegree == 2)
        #expect(c.training.seed == 42)
        #expect(c.training.loggingSteps == 10)
        #expect(c.training.saveSteps == 500 && c.training.evalSteps == 500)
        #expect(c.training.keepCheckpoints == 2)
        #expect(c.training.width == 1280 && c.training.height == 720 && c.training.fps == 16)
        #expect(c.model.architecture == .wan22T2VA14B)
        modelCardSampling(c)
    }

    /// SPEC §5 inference defaults.
    func modelCardSampling(_ c: WanLoRAConfig) {
        #expect(c.sample.steps == 40)
        #expect(c.sample.shift == 12.0)
        #expect(c.sample.guidanceHigh == 4.0 && c.sample.guidanceLow == 3.0)
        #expect(c.model.boundary == 0.875)
        #expect(c.sample.fps == 16)
        #expect(c.sample.solver == .euler && c.sample.schedule == .wan)
        // Wan2.2's own negative prompt (wan/configs/shared_config.py), 137 characters of Chinese.
        #expect(c.sample.negativePrompt == WanLoRAConfig.officialNegativePrompt)
        #expect(c.sample.negativePrompt.count == 137)
        #expect(c.sample.negativePrompt.hasPrefix("色调艳丽，过曝，静态") && c.sample.negativePrompt.hasSuffix("背景人很多，倒着走"))
    }

    @Test func h100IsOursAndTheDefault() throws {
        let c = WanLoRAConfig.preset(.h100)
        #expect(WanLoRAConfig.defaults == c)
        #expect(c.hardware.gpu == "H100" && c.hardware.worldSize == 8 && c.hardware.ulyssesDegree == 2)
        #expect(c.training.frames == 81 && c.lora.rank == 16)
        #expect(c.hardware.t5 == .cached && c.hardware.vae == .cached && c.hardware.inactiveExpert == .resident)
        // 4 data-parallel groups × 8 accumulation steps keep the report's batch of 32.
        #expect(c.training.microBatch * c.training.gradAccumulation * c.hardware.dataParallelSize == 32)
        modelCardSampling(c)
    }

    @Test(arguments: Preset.allCases) func everyPresetIsValid(_ preset: Preset) throws {
        try WanLoRAConfig.preset(preset).validate()
    }

    /// Writing a preset as TOML and reading it back gives the preset: every key's reader and
    /// parser agree.
    @Test(arguments: Preset.allCases) func templateRoundTrips(_ preset: Preset) throws {
        let text = ConfigTemplate.toml(.preset(preset))
        let read = try ConfigLoader.parse(toml: text, base: preset == .h100 ? .a100 : .h100)
        #expect(read == .preset(preset))
        // Every key is written, with its comment.
        for key in ConfigKeys.all {
            #expect(text.contains("\n\(key.name) = "), "template lacks \(key.path)")
        }
    }
}
