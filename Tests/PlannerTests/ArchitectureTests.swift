import Config
import Testing

@testable import Planner

/// Parameter counts from the dimensions, pinned to diffusers models built on the meta device
/// (engine/tests/test_lora_param_count.py asserts the same numbers from the PyTorch side).
@Suite struct ArchitectureTests {
    @Test func expertParameterCounts() {
        #expect(Architecture.wan22T2VA14B.expertParameters == 14_288_491_584)
        #expect(Architecture.wan22T2VA14B.transformerParameters == 28_576_983_168)
        #expect(Architecture.wan21T2V14B.expertParameters == 14_288_491_584)
        #expect(Architecture.wan22TI2V5B.expertParameters == 4_999_787_712)
        #expect(Architecture.wan21T2V1_3B.expertParameters == 1_418_996_800)
    }

    /// SPEC §7: "A 14B expert is 26.7 GiB in bf16" — 28.58 GB = 26.6 GiB exactly counted.
    @Test func expertSizeInBF16() {
        let bytes = Architecture.wan22T2VA14B.expertParameters * 2
        #expect(bytes == 28_576_983_168)
        #expect(abs(Double(bytes) / Double(1 << 30) - 26.61) < 0.01)
    }

    @Test func encoders() {
        // UMT5-XXL encoder: 256,384 × 4096 embedding + 24 layers of 192,948,224 + final norm.
        #expect(TextEncoderSpec.umt5XXL.parameters == 5_680_910_336)
        #expect(TextEncoderSpec.umt5XXL.parametersPerToken == 4_630_761_472)
        #expect(VAESpec.wan21.parameters == 126_892_531)
        #expect(VAESpec.wan22.parameters == 704_688_668)
        #expect(Architecture.wan22T2VA14B.vae == .wan21)
        #expect(Architecture.wan22TI2V5B.vae == .wan22)
    }

    @Test func dimensionsFromTheOfficialConfigs() {
        let a = Architecture.wan22T2VA14B
        #expect((a.dim, a.ffnDim, a.heads, a.layers, a.headDim, a.freqDim) == (5120, 13_824, 40, 40, 128, 256))
        #expect(a.patch == (1, 2, 2) && a.experts == 2)
        let b = Architecture.wan22TI2V5B
        #expect((b.dim, b.ffnDim, b.heads, b.layers, b.inChannels) == (3072, 14_336, 24, 30, 48))
        let c = Architecture.wan21T2V1_3B
        #expect((c.dim, c.ffnDim, c.heads, c.layers) == (1536, 8960, 12, 30))
    }

    @Test func linearModuleNames() {
        let modules = Architecture.wan22T2VA14B.linearModules
        #expect(modules.count == 40 * 10 + 6)
        #expect(modules.first?.name == "blocks.0.attn1.to_q")
        #expect(
            modules.contains { $0.name == "blocks.39.ffn.net.2" && $0.inFeatures == 13_824 && $0.outFeatures == 5120 })
        #expect(modules.contains { $0.name == "proj_out" && $0.outFeatures == 64 })
        #expect(modules.contains { $0.name == "condition_embedder.time_proj" && $0.outFeatures == 30_720 })
    }

    @Test(arguments: ModelArchitecture.allCases) func everyConfigNameHasAnArchitecture(_ name: ModelArchitecture) {
        #expect(Architecture.named(name).name == name.rawValue)
    }
}

@Suite struct GPUCatalogTests {
    @Test func lookupByNameAndAlias() throws {
        #expect(try GPU.named("H100").name == "H100")
        #expect(try GPU.named("h100-sxm").name == "H100")
        #expect(try GPU.named("V100").name == "V100-32GB")
        #expect(try GPU.named("v100 16gb").name == "V100-16GB")
        #expect(try GPU.named("rtx 4090").name == "RTX-4090")
        #expect(try GPU.named("A100").name == "A100-80GB")
        let error = try #require(throws: PlanError.self) { try GPU.named("B200") }
        #expect(error.problem.contains("B200") && error.remedy.contains("H200"))
    }

    @Test func capabilities() {
        #expect(!GPU.v100_32.supportsBF16 && !GPU.v100_32.supportsFlashAttention)
        #expect(!GPU.v100_16.supportsBF16)
        for gpu in [GPU.a100_40, .a100_80, .h100, .h200, .l40s, .rtx4090] {
            #expect(gpu.supportsBF16 && gpu.supportsFlashAttention, "\(gpu.name)")
        }
        #expect(GPU.h100.bf16TFLOPs == 989.4 && GPU.a100_80.bf16TFLOPs == 312 && GPU.v100_32.fp16TFLOPs == 125)
        #expect(GPU.l40s.bf16TFLOPs == 362.05 && GPU.rtx4090.bf16TFLOPs == 165.2)
        #expect(abs(GPU.h100.memoryGiB - 79.6) < 0.1 && abs(GPU.h200.memoryGiB - 140.4) < 0.1)
        #expect(abs(GPU.v100_32.memoryGiB - 31.7) < 0.1 && abs(GPU.a100_40.memoryGiB - 39.6) < 0.1)
        // bf16 on a V100 falls back to fp32 without tensor cores.
        #expect(GPU.v100_32.matrixTFLOPs(for: .bf16) == (15.7, false))
        #expect(GPU.v100_32.matrixTFLOPs(for: .fp16) == (125, true))
        // The H100 efficiencies are the SPEC §8 kernel measurements.
        #expect(abs(GPU.h100.gemmEfficiency * GPU.h100.bf16TFLOPs - 815) < 1e-9)
        #expect(abs(GPU.h100.attentionEfficiency * GPU.h100.bf16TFLOPs - 581) < 1e-9)
        #expect(GPU.catalog.filter(\.calibrated).map(\.name) == ["H100", "H200"])
    }
}
