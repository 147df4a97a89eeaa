import Config

/// One GPU model: its datasheet rates and what the planner's time model assumes about how much
/// of them a Wan training step reaches.
///
/// Rates are dense (no 2:4 sparsity) tensor-core rates with fp32 accumulation, as PyTorch runs
/// them. `memoryBytes` is what `nvidia-smi` reports as total memory.
public struct GPU: Sendable, Equatable {
    /// Catalog name, as `hardware.gpu` names it.
    public let name: String
    /// Other spellings accepted for it (case does not matter).
    public let aliases: [String]
    /// CUDA compute capability (7.0 Volta, 8.0 Ampere, 8.9 Ada, 9.0 Hopper).
    public let computeCapability: Double
    public let memoryBytes: Int
    /// Dense bf16 tensor-core TFLOP/s; 0 when the GPU has no bf16 arithmetic.
    public let bf16TFLOPs: Double
    /// Dense fp16 tensor-core TFLOP/s (fp32 accumulation).
    public let fp16TFLOPs: Double
    /// fp32 TFLOP/s without tensor cores (what bf16 falls back to where it is only emulated).
    public let fp32TFLOPs: Double
    /// Dense fp8 tensor-core TFLOP/s; 0 without fp8.
    public let fp8TFLOPs: Double
    /// Memory bandwidth, GB/s.
    public let memoryBandwidthGBs: Double
    /// GPU-to-GPU bandwidth per direction inside one node, GB/s (NVLink, else PCIe).
    public let interconnectGBs: Double
    /// Host-to-GPU bandwidth per direction, GB/s (PCIe generation × 16 lanes, achieved; the H100 machine's
    /// 55 GB/s each way is measured with pinned memory, SPEC §8 and docs/BENCHMARKS.md). The frozen blocks
    /// that stream and the offloaded activations cross it.
    public let hostLinkGBs: Double
    /// FlashAttention-2/cuDNN fused attention needs compute capability 8.0 or newer.
    public var supportsFlashAttention: Bool { computeCapability >= 8.0 }
    public var supportsBF16: Bool { bf16TFLOPs > 0 }
    /// Fraction of the dense rate that large Linear layers reach (cuBLAS GEMM).
    public let gemmEfficiency: Double
    /// Fraction of the dense rate that the best available attention kernel reaches at
    /// head dim 128 and tens of thousands of tokens (forward and backward).
    public let attentionEfficiency: Double
    /// Where the two efficiencies come from: a measurement on this GPU, or an estimate.
    public let efficiencySource: String
    /// True when the efficiencies were measured on this GPU (SPEC §7/§8 benchmarks).
    public let calibrated: Bool

    /// Memory in GiB.
    public var memoryGiB: Double { Double(memoryBytes) / Double(1 << 30) }
}

extension GPU {
    static let mib = 1 << 20

    /// H100 SXM 80GB (HBM3). Efficiencies measured (SPEC §8, torch 2.11): Linear 5120×5120
    /// at 805–824 TFLOP/s; SDPA cuDNN attention 592/570 forward+backward and 583/580 forward
    /// at 46,800/75,600 tokens → mean 581.
    public static let h100 = GPU(
        name: "H100", aliases: ["H100-80GB", "H100-SXM", "H100 SXM", "H100 80GB"], computeCapability: 9.0,
        memoryBytes: 81_559 * mib, bf16TFLOPs: 989.4, fp16TFLOPs: 989.4, fp32TFLOPs: 66.9, fp8TFLOPs: 1978.9,
        memoryBandwidthGBs: 3350, interconnectGBs: 450, hostLinkGBs: 55,
        gemmEfficiency: 815.0 / 989.4, attentionEfficiency: 581.0 / 989.4,
        efficiencySource: "measured on H100 SXM 80GB (SPEC §8 kernels)", calibrated: true
    )
    /// H200 SXM 141GB: the H100's compute with HBM3e. Same kernels as the H100.
    public static let h200 = GPU(
        name: "H200", aliases: ["H200-141GB", "H200-SXM", "H200 SXM"], computeCapability: 9.0,
        memoryBytes: 143_771 * mib, bf16TFLOPs: 989.4, fp16TFLOPs: 989.4, fp32TFLOPs: 66.9, fp8TFLOPs: 1978.9,
        memoryBandwidthGBs: 4800, interconnectGBs: 450, hostLinkGBs: 55,
        gemmEfficiency: 815.0 / 989.4, attentionEfficiency: 581.0 / 989.4,
        efficiencySource: "H100 kernel measurements (same GH100 compute); checked against the H200 training step",
        calibrated: true
    )
    /// A100 SXM4 80GB. FlashAttention-2 reaches 50–73% of the A100's peak forward+backward
    /// at head dim 128 (Dao 2023); 0.60 is taken for long non-causal sequences.
    public static let a100_80 = GPU(
        name: "A100-80GB", aliases: ["A100 80GB", "A100-SXM4-80GB", "A100"], computeCapability: 8.0,
        memoryBytes: 81_251 * mib, bf16TFLOPs: 312, fp16TFLOPs: 312, fp32TFLOPs: 19.5, fp8TFLOPs: 0,
        memoryBandwidthGBs: 2039, interconnectGBs: 300, hostLinkGBs: 25,
        gemmEfficiency: 0.80, attentionEfficiency: 0.60,
        efficiencySource: "estimate (FlashAttention-2 paper, cuBLAS GEMM on A100)", calibrated: false
    )
    public static let a100_40 = GPU(
        name: "A100-40GB", aliases: ["A100 40GB", "A100-SXM4-40GB"], computeCapability: 8.0,
        memoryBytes: 40_536 * mib, bf16TFLOPs: 312, fp16TFLOPs: 312, fp32TFLOPs: 19.5, fp8TFLOPs: 0,
        memoryBandwidthGBs: 1555, interconnectGBs: 300, hostLinkGBs: 25,
        gemmEfficiency: 0.80, attentionEfficiency: 0.60,
        efficiencySource: "estimate (FlashAttention-2 paper, cuBLAS GEMM on A100)", calibrated: false
    )
    /// V100 SXM2: fp16 tensor cores only. No bf16 arithmetic (bf16 runs as emulated fp32
    /// without tensor cores) and no FlashAttention (SDPA's memory-efficient kernel instead).
    public static let v100_32 = GPU(
        name: "V100-32GB", aliases: ["V100 32GB", "V100-SXM2-32GB", "V100"], computeCapability: 7.0,
        memoryBytes: 32_510 * mib, bf16TFLOPs: 0, fp16TFLOPs: 125, fp32TFLOPs: 15.7, fp8TFLOPs: 0,
        memoryBandwidthGBs: 900, interconnectGBs: 150, hostLinkGBs: 12,
        gemmEfficiency: 0.70, attentionEfficiency: 0.30,
        efficiencySource: "estimate (cuBLAS fp16 GEMM; memory-efficient attention without FlashAttention)",
        calibrated: false
    )
    public static let v100_16 = GPU(
        name: "V100-16GB", aliases: ["V100 16GB", "V100-SXM2-16GB"], computeCapability: 7.0,
        memoryBytes: 16_160 * mib, bf16TFLOPs: 0, fp16TFLOPs: 125, fp32TFLOPs: 15.7, fp8TFLOPs: 0,
        memoryBandwidthGBs: 900, interconnectGBs: 150, hostLinkGBs: 12,
        gemmEfficiency: 0.70, attentionEfficiency: 0.30,
        efficiencySource: "estimate (cuBLAS fp16 GEMM; memory-efficient attention without FlashAttention)",
        calibrated: false
    )
    /// L40S (Ada, PCIe, 48 GB GDDR6, no NVLink).
    public static let l40s = GPU(
        name: "L40S", aliases: ["L40S-48GB"], computeCapability: 8.9,
        memoryBytes: 46_068 * mib, bf16TFLOPs: 362.05, fp16TFLOPs: 362.05, fp32TFLOPs: 91.6, fp8TFLOPs: 733,
        memoryBandwidthGBs: 864, interconnectGBs: 25, hostLinkGBs: 25,
        gemmEfficiency: 0.70, attentionEfficiency: 0.50,
        efficiencySource: "estimate (Ada GEMM and FlashAttention-2 are less efficient than on A100/H100)",
        calibrated: false
    )
    /// GeForce RTX 4090 (Ada, 24 GB). Its 330 TFLOP/s fp16 figure is with fp16 accumulation;
    /// with fp32 accumulation, as PyTorch uses, it is 165.2.
    public static let rtx4090 = GPU(
        name: "RTX-4090", aliases: ["RTX 4090", "4090", "RTX4090", "GeForce RTX 4090"], computeCapability: 8.9,
        memoryBytes: 24_564 * mib, bf16TFLOPs: 165.2, fp16TFLOPs: 165.2, fp32TFLOPs: 82.6, fp8TFLOPs: 330.3,
        memoryBandwidthGBs: 1008, interconnectGBs: 25, hostLinkGBs: 25,
        gemmEfficiency: 0.75, attentionEfficiency: 0.55,
        efficiencySource: "estimate (Ada consumer card, PCIe only)", calibrated: false
    )

    public static let catalog: [GPU] = [.v100_16, .v100_32, .a100_40, .a100_80, .h100, .h200, .l40s, .rtx4090]

    /// The catalog GPU called `name` (or one of its aliases), ignoring case, spaces and dashes.
    public static func named(_ name: String) throws -> GPU {
        let key = normalize(name)
        if let gpu = catalog.first(where: { normalize($0.name) == key || $0.aliases.contains { normalize($0) == key } })
        {
            return gpu
        }
        throw PlanError(
            problem: "Unknown GPU \"\(name)\".",
            remedy: "Use one of: \(catalog.map(\.name).joined(separator: ", ")) (hardware.gpu or --gpu)."
        )
    }

    static func normalize(_ s: String) -> String {
        String(s.lowercased().filter { $0.isLetter || $0.isNumber })
    }

    /// Dense matrix rate for a compute dtype, TFLOP/s, and whether it is native.
    public func matrixTFLOPs(for precision: MixedPrecision) -> (rate: Double, native: Bool) {
        switch precision {
        case .bf16: supportsBF16 ? (bf16TFLOPs, true) : (fp32TFLOPs, false)
        case .fp16: (fp16TFLOPs, true)
        case .fp32: (fp32TFLOPs, true)
        }
    }
}
