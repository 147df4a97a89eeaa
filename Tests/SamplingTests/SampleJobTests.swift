import Config
import Foundation
import Planner
import Testing

@testable import Sampling

@Suite struct SampleJobTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let fixture = repoRoot.appendingPathComponent("engine/tests/fixtures/sample-job.contract.json")

    /// The request of the contract fixture: defaults, a model path relative to the config folder,
    /// two Korean prompts (one from a CSV with category and seed), a high-noise LoRA at 0.8.
    static func contractRequest() -> SampleRequest {
        var config = WanLoRAConfig.defaults
        config.model.checkpoint = "models/Wan2.2-T2V-A14B"
        let prompts = [
            SamplePrompt(text: "한옥 마을의 봄 풍경, 벚꽃이 흩날린다", origin: "--prompt 1"),
            SamplePrompt(text: "밤하늘 아래 등불 축제", category: "축제", seed: 7, origin: "prompts.csv:2"),
        ]
        return SampleRequest(
            config: config, baseDir: "/data/wanlora", outputDir: "/data/wanlora/samples/a", prompts: prompts,
            loraHigh: ("/data/wanlora/runs/a/lora/high_noise.comfyui.safetensors", 0.8))
    }

    /// A repo id in the hub cache goes to the engine as written (it resolves it there); single-file
    /// experts are anchored at the configuration's folder.
    @Test func aRepoIDAndSingleFileExpertsReachTheJob() throws {
        let hub = FileManager.default.temporaryDirectory.appendingPathComponent("hub-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: hub) }
        try FileManager.default.createDirectory(
            atPath: hub + "/models--Wan-AI--Wan2.2-T2V-A14B-Diffusers", withIntermediateDirectories: true)
        var request = Self.contractRequest()
        request.hubCache = hub
        request.config.model.checkpoint = "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
        request.config.model.lowNoiseFile = "comfy/wan2.2_t2v_low_noise_14B_fp16.safetensors"
        let job = try SampleJobBuilder.build(request)
        #expect(job.model.path == "Wan-AI/Wan2.2-T2V-A14B-Diffusers")
        #expect(job.model.highNoiseFile == nil)
        #expect(job.model.lowNoiseFile == "/data/wanlora/comfy/wan2.2_t2v_low_noise_14B_fp16.safetensors")
        let object = try #require(try JSONSerialization.jsonObject(with: job.jsonData()) as? [String: Any])
        let model = try #require(object["model"] as? [String: Any])
        #expect(model["high_noise_file"] is NSNull)  // null, not absent
    }

    /// `sample.attention` (`--attention`) chooses the engine's kernel; a name outside the registry's is refused
    /// by the configuration, naming the choices.
    @Test func theAttentionKernelComesFromSampleAttention() throws {
        var request = Self.contractRequest()
        try ConfigLoader.set("sample.attention", .string("fa3"), in: &request.config)
        #expect(try SampleJobBuilder.build(request).sampler.attention == "fa3")
        #expect(throws: ConfigError.self) {
            try ConfigLoader.set("sample.attention", .string("flash3"), in: &request.config)
        }
    }

    @Test func defaultsAreTheModelCard() throws {
        let job = try SampleJobBuilder.build(Self.contractRequest())
        #expect(job.schemaVersion == 2 && job.kind == "sample" && job.device == "auto")
        #expect(job.model.path == "/data/wanlora/models/Wan2.2-T2V-A14B" && job.model.dtype == "bfloat16")
        #expect(job.model.boundary == 0.875 && job.model.numTrainTimesteps == 1000)
        #expect(job.sampler.solver == "euler" && job.sampler.schedule == "wan")
        #expect(
            job.sampler.steps == 40 && job.sampler.shift == 12 && job.sampler.guidanceHigh == 4
                && job.sampler.guidanceLow == 3)
        #expect(job.sampler.negativePrompt == WanLoRAConfig.officialNegativePrompt && job.sampler.textLength == 512)
        #expect(job.sampler.attention == "auto")
        #expect(job.video == SampleJob.Video(width: 1280, height: 720, frames: 81, fps: 16, crf: 18))
        #expect(
            job.loras.high
                == SampleJob.LoRA(path: "/data/wanlora/runs/a/lora/high_noise.comfyui.safetensors", scale: 0.8))
        #expect(job.loras.low == nil)
        // ids by position, seeds = sample.seed + position unless the file gave one
        #expect(job.prompts.map(\.id) == ["0001", "0002"] && job.prompts.map(\.seed) == [42, 7])
        #expect(job.prompts.map(\.category) == [nil, "축제"])
        #expect(job.memory.planGpu == "H100" && job.memory.reservedBytes == 1 << 30)
        #expect(
            job.memory.candidates.map { "\($0.inactiveExpert)/\($0.vaeTiling)" } == [
                "gpu/false", "gpu/true", "cpu/false", "cpu/true",
            ])
        #expect(job.memory.candidates[2].peakBytes == 35_404_312_652)  // SampleMemoryTests, by hand
        #expect(job.memory.alternatives.count == 3)
        // the peak of swapping is the denoise phase: one expert, activations, VAE, latents, text
        #expect(
            job.memory.candidates[2].peakItems.map(\.name) == [
                "active expert weights", "one block's activations", "VAE weights", "latents, noise and solver state",
                "text embeddings",
            ])
        #expect(job.placement(fitting: 84_000_000_000)?.inactiveExpert == "gpu")
        #expect(job.placement(fitting: 40_000_000_000)?.inactiveExpert == "cpu")
        #expect(job.placement(fitting: 30_000_000_000) == nil)
    }

    /// engine/tests/test_sample.py parses the same file: Swift must write exactly it.
    @Test func matchesTheEngineContractFixture() throws {
        let written = try SampleJobBuilder.build(Self.contractRequest()).jsonData()
        let fixture = try Data(contentsOf: Self.fixture)
        #expect(
            String(decoding: written, as: UTF8.self) == String(decoding: fixture, as: UTF8.self),
            Comment(
                rawValue: "regenerate engine/tests/fixtures/sample-job.contract.json from "
                    + "SampleJobTests.contractRequest() after changing the job on purpose"))
        let object = try #require(try JSONSerialization.jsonObject(with: written) as? [String: Any])
        let loras = try #require(object["loras"] as? [String: Any])
        #expect(loras.keys.sorted() == ["high", "low"] && loras["low"] is NSNull)  // null, not absent
        let prompts = try #require(object["prompts"] as? [[String: Any]])
        #expect(prompts[0]["category"] is NSNull)
        #expect(try SampleJob.decode(written) == SampleJobBuilder.build(Self.contractRequest()))
    }

    @Test func stepsPerExpertFollowTheSchedule() throws {
        var job = try SampleJobBuilder.build(Self.contractRequest())
        #expect(job.stepsPerExpert == (26, 14))
        job.sampler.schedule = "diffusers_unipc"
        #expect(job.stepsPerExpert == (26, 14))
        job.sampler.schedule = "diffusers_euler"
        #expect(job.stepsPerExpert == (25, 15))
        job.sampler.schedule = "wan"
        job.sampler.steps = 4
        #expect(job.stepsPerExpert == (3, 1))  // t = 999, 972, 922 | 799
        #expect(FlowSchedule.timesteps(.wan, steps: 4, shift: 12, trainTimesteps: 1000) == [999, 972, 922, 799])
        #expect(FlowSchedule.timesteps(.wan, steps: 40, shift: 12, trainTimesteps: 1000)[25...26] == [877, 865])
    }

    @Test func badRequestsSayWhatToDo() throws {
        var request = Self.contractRequest()
        request.config.model.checkpoint = ""
        #expect(throws: SampleJobError.self) { try SampleJobBuilder.build(request) }
        request = Self.contractRequest()
        request.config.model.architecture = .wan22TI2V5B
        let architecture = try #require(throws: SampleJobError.self) { try SampleJobBuilder.build(request) }
        #expect(architecture.problem.contains("Wan2.2-TI2V-5B"))
        request = Self.contractRequest()
        request.prompts[1].id = "0001"
        let duplicate = try #require(throws: SampleJobError.self) { try SampleJobBuilder.build(request) }
        #expect(duplicate.problem.contains("prompts.csv:2") && duplicate.problem.contains("\"0001\""))
        request.prompts[1].id = "../x"
        #expect(throws: SampleJobError.self) { try SampleJobBuilder.build(request) }
        request = Self.contractRequest()
        request.prompts = []
        #expect(throws: SampleJobError.self) { try SampleJobBuilder.build(request) }
    }

    @Test func usersPlacementChoicesNarrowTheCandidates() throws {
        var request = Self.contractRequest()
        request.inactiveExpert = .cpu
        request.vaeTiling = true
        request.textEncoderOnGPU = false
        let job = try SampleJobBuilder.build(request)
        #expect(job.memory.candidates.count == 1 && job.memory.textEncoderDevice == "cpu")
        #expect(!job.memory.candidates[0].items.contains { $0.phase == "encode" })
    }
}
