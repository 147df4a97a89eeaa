import Testing

@testable import Planner

/// SPEC §7: the four attention names match 8 Linear 5120×5120 layers a block (self- and
/// cross-attention): 3,276,800·r per expert.
@Suite struct LoRACountTests {
    let a = Architecture.wan22T2VA14B
    let attention = ["to_q", "to_k", "to_v", "to_out.0"]

    @Test func attentionTargetsRank16And32() throws {
        let r16 = try LoRACount.count(architecture: a, targets: attention, rank: 16, experts: 2)
        #expect(r16.modulesPerExpert == 320)
        #expect(r16.modulesPerTarget == [80, 80, 80, 80])
        #expect(r16.parametersPerExpert == 52_428_800)
        #expect(r16.parametersTotal == 104_857_600)
        let r32 = try LoRACount.count(architecture: a, targets: attention, rank: 32, experts: 2)
        #expect(r32.parametersPerExpert == 104_857_600)
        #expect(r32.parametersTotal == 209_715_200)
    }

    @Test(arguments: [1, 4, 8, 16, 32, 64, 128])
    func attentionIsLinearInRank(_ rank: Int) throws {
        let count = try LoRACount.count(architecture: a, targets: attention, rank: rank, experts: 1)
        #expect(count.parametersPerExpert == 3_276_800 * rank)
    }

    /// With the FFN: 10 modules a block, musubi-tuner's 400 modules and 76.7M at r16 (SPEC §8).
    @Test func withFeedForward() throws {
        let count = try LoRACount.count(
            architecture: a, targets: attention + ["ffn.net.0.proj", "ffn.net.2"], rank: 16, experts: 1)
        #expect(count.modulesPerExpert == 400)
        #expect(count.parametersPerExpert == 76_677_120)
        #expect(count.parametersPerExpert == 40 * 16 * (8 * 10_240 + 2 * 18_944))
        let short = try LoRACount.count(architecture: a, targets: ["net.0.proj", "net.2"], rank: 16, experts: 1)
        #expect(short.parametersPerExpert == 40 * 2 * 16 * 18_944)
    }

    @Test func qualifiedNamesMatchOnlyTheirModule() throws {
        let q = try LoRACount.count(architecture: a, targets: ["attn1.to_q"], rank: 16, experts: 1)
        #expect(q.modulesPerExpert == 40 && q.parametersPerExpert == 6_553_600)
        let one = try LoRACount.count(architecture: a, targets: ["blocks.0.attn2.to_k"], rank: 4, experts: 1)
        #expect(one.modulesPerExpert == 1 && one.parametersPerExpert == 4 * 10_240)
        // Outside the blocks: proj_out 5120→64 and time_proj 5120→30720.
        let outer = try LoRACount.count(architecture: a, targets: ["proj_out", "time_proj"], rank: 8, experts: 1)
        #expect(outer.parametersPerExpert == 328_192)
    }

    @Test func fileSizes() throws {
        let r16 = try LoRACount.count(architecture: a, targets: attention, rank: 16, experts: 2)
        #expect(r16.bytesPerExpertBF16 == 104_857_600)
        #expect(r16.bytesPerExpertFP32 == 209_715_200)
        #expect(r16.bytesTotalFP32 == 419_430_400)
    }

    @Test func videoAndTextModulesAreSeparated() throws {
        let r16 = try LoRACount.count(architecture: a, targets: attention, rank: 16, experts: 1)
        // Self-attention q,k,v,o and cross-attention q,o run over video tokens; cross k,v over text.
        #expect(r16.videoModules.map(\.count).reduce(0, +) == 240)
        #expect(r16.otherModules.map(\.count).reduce(0, +) == 80)
        #expect(r16.videoModulesPerBlock(layers: 40).map(\.count) == [6])
    }

    @Test func unknownAndNonLinearTargetsAreErrors() throws {
        let unknown = try #require(throws: PlanError.self) {
            try LoRACount.count(architecture: a, targets: ["to_q", "query"], rank: 16, experts: 1)
        }
        #expect(unknown.problem.contains("\"query\" matches no module"))
        #expect(unknown.remedy.contains("attn1.to_q"))
        let container = try #require(throws: PlanError.self) {
            try LoRACount.count(architecture: a, targets: ["to_out"], rank: 16, experts: 1)
        }
        #expect(container.problem.contains("not an nn.Linear"))
        #expect(throws: PlanError.self) {
            try LoRACount.count(architecture: a, targets: ["norm_q"], rank: 16, experts: 1)
        }
    }

    @Test func smallerArchitectures() throws {
        let small = try LoRACount.count(architecture: .wan21T2V1_3B, targets: attention, rank: 16, experts: 1)
        #expect(small.parametersPerExpert == 30 * 8 * 16 * (1536 + 1536))
        let five = try LoRACount.count(architecture: .wan22TI2V5B, targets: attention, rank: 16, experts: 1)
        #expect(five.parametersPerExpert == 30 * 8 * 16 * (3072 + 3072))
    }
}
