import Config
import Foundation
import Testing

@testable import Planner

/// GPU memory of sampling one A14B video on one GPU, item by item, by hand.
@Suite struct SampleMemoryTests {
    let a = Architecture.wan22T2VA14B

    func plan(
        _ placement: InactiveExpertPlacement, tiling: Bool, frames: Int = 81, width: Int = 1280, height: Int = 720,
        t5: Bool = true
    ) throws -> SampleMemoryPlan {
        let g = try ClipGeometry(frames: frames, width: width, height: height, architecture: a)
        return SampleMemoryModel.plan(
            architecture: a, geometry: g, textLength: 512, inactiveExpert: placement,
            vaeTiling: tiling, textEncoderOnGPU: t5)
    }

    func item(_ plan: SampleMemoryPlan, _ name: String, _ phase: SampleMemoryItem.Phase) -> Int? {
        plan.items.first { $0.name == name && $0.phase == phase }?.bytes
    }

    @Test func offload720p81FramesByHand() throws {
        let p = try plan(.cpu, tiling: false)
        #expect(a.expertParameters == 14_288_491_584)
        #expect(item(p, "active expert weights", .denoise) == 28_576_983_168)  // × 2 B
        #expect(item(p, "inactive expert weights", .denoise) == nil)
        #expect(item(p, "VAE weights", .denoise) == 507_570_124)  // 126,892,531 × 4 B
        #expect(item(p, "one block's activations", .denoise) == 6_193_152_000)  // 75,600 tokens × 16 × 5120
        #expect(item(p, "latents, noise and solver state", .denoise) == 116_121_600)  // 16·21·90·160 × 4 B × 6
        #expect(item(p, "text embeddings", .denoise) == 10_485_760)  // 2 × 512 × 5120 × 2 B
        #expect(p.bytes(in: .denoise) == 35_404_312_652)
        #expect(item(p, "VAE decode workspace", .decode) == 7_077_888_000)  // 5 × 4 × 720 × 1280 × 96 × 4 B
        #expect(item(p, "decoded video", .decode) == 895_795_200)  // 81 × 720 × 1280 × 3 × 4 B
        #expect(p.bytes(in: .decode) == 507_570_124 + 7_077_888_000 + 895_795_200)
        #expect(item(p, "UMT5 text encoder", .encode) == 11_361_820_672)  // 5,680,910,336 × 2 B
        #expect(p.bytes(in: .encode) == 11_361_820_672 + 113_246_208)
        #expect(p.peakBytes == 35_404_312_652)  // 33.0 GiB: denoising dominates
        #expect(p.label == "inactive expert in host memory, VAE tiling off")
    }

    @Test func residentAddsTheSecondExpertInBothPhases() throws {
        let resident = try plan(.gpu, tiling: false)
        let offload = try plan(.cpu, tiling: false)
        #expect(resident.bytes(in: .denoise) == offload.bytes(in: .denoise) + 28_576_983_168)
        #expect(resident.bytes(in: .decode) == offload.bytes(in: .decode) + 2 * 28_576_983_168)
        #expect(resident.peakBytes == 65_635_219_660)  // 61.1 GiB: the untiled decode beside both experts
        func usable(_ name: String) throws -> Int { try GPU.named(name).memoryBytes - MemoryModel.reservedBytes }
        // H100 (78.6 GiB usable): both experts stay. A100 40GB (38.6 GiB): only with swapping (33.0 GiB).
        // V100 32GB and RTX 4090: not even one expert with its activations.
        #expect(try resident.peakBytes <= usable("H100"))
        #expect(try resident.peakBytes > usable("A100-40GB") && offload.peakBytes <= usable("A100-40GB"))
        #expect(try offload.peakBytes > usable("V100-32GB") && offload.peakBytes > usable("RTX-4090"))
    }

    @Test func tilingShrinksTheDecodeWorkspace() throws {
        let tiled = try plan(.cpu, tiling: true)
        #expect(item(tiled, "VAE decode workspace", .decode) == 5 * 4 * 256 * 256 * 96 * 4)  // one 256 × 256 tile
        // Overlapping tiles (256 px every 192 px): (256/192)² × the float32 video before blending.
        #expect(item(tiled, "decoded tiles", .decode) == Int(Double(895_795_200) * (256.0 * 256.0) / (192.0 * 192.0)))
        #expect(tiled.bytes(in: .decode) < (try plan(.cpu, tiling: false)).bytes(in: .decode))
        #expect(tiled.bytes(in: .denoise) == (try plan(.cpu, tiling: false)).bytes(in: .denoise))
    }

    @Test func textEncoderOnTheCPUUsesNoGPUToEncode() throws {
        #expect(try plan(.cpu, tiling: false, t5: false).bytes(in: .encode) == 0)
    }

    @Test func candidatesAreFastestFirstAndFollowTheUsersChoices() throws {
        let g = try ClipGeometry(frames: 81, width: 1280, height: 720, architecture: a)
        let all = SampleMemoryModel.candidates(
            architecture: a, geometry: g, textLength: 512, inactiveExpert: nil, vaeTiling: nil, textEncoderOnGPU: true)
        #expect(
            all.map { "\($0.inactiveExpert.rawValue)/\($0.vaeTiling)" } == [
                "gpu/false", "gpu/true", "cpu/false", "cpu/true",
            ])
        let forced = SampleMemoryModel.candidates(
            architecture: a, geometry: g, textLength: 512, inactiveExpert: .cpu, vaeTiling: true, textEncoderOnGPU: true
        )
        #expect(forced.count == 1 && forced[0].inactiveExpert == .cpu && forced[0].vaeTiling)
    }

    @Test func alternativesAreSmallerVideos() throws {
        let g = try ClipGeometry(frames: 81, width: 1280, height: 720, architecture: a)
        let alternatives = SampleMemoryModel.alternatives(architecture: a, current: g, textLength: 512)
        #expect(
            alternatives.map(\.label) == [
                "832x480, 81 frames (--resolution 832x480 --frames 81)",
                "1280x720, 49 frames (--resolution 1280x720 --frames 49)",
                "832x480, 49 frames (--resolution 832x480 --frames 49)",
            ])
        let least720 = try plan(.cpu, tiling: true, t5: false).peakBytes
        #expect(alternatives.allSatisfy { $0.peakBytes < least720 })
        // 832x480, 81 frames: 21 × 30 × 52 = 32,760 tokens -> 2.68 GB of activations instead of 6.19
        #expect(
            alternatives[0].peakBytes == 28_576_983_168 + 507_570_124 + 32_760 * 16 * 5120 + 16 * 21 * 60 * 104 * 4 * 6
                + 10_485_760)
        let small = try ClipGeometry(frames: 49, width: 832, height: 480, architecture: a)
        #expect(SampleMemoryModel.alternatives(architecture: a, current: small, textLength: 512).isEmpty)
    }
}
