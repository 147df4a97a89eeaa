import Foundation

/// The catalogs as text tables (`wanlora plan --list-gpus`, `--list-models`).
public enum Catalogs {
    public static func gpuTable() -> String {
        var lines = [String(format: "%-10@ %6@ %8@ %8@ %8@ %9@ %5@ %5@  %@", "GPU" as NSString, "GiB" as NSString, "bf16" as NSString,
                            "fp16" as NSString, "fp32" as NSString, "GB/s" as NSString, "bf16" as NSString, "FA" as NSString, "efficiency (GEMM / attention)" as NSString)]
        lines.append(String(format: "%-10@ %6@ %8@ %8@ %8@ %9@ %5@ %5@", "" as NSString, "" as NSString, "TFLOP/s" as NSString, "TFLOP/s" as NSString,
                            "TFLOP/s" as NSString, "memory" as NSString, "" as NSString, "" as NSString))
        for g in GPU.catalog {
            lines.append(String(format: "%-10@ %6.1f %8.1f %8.1f %8.1f %9.0f %5@ %5@  %.2f / %.2f %@", g.name as NSString, g.memoryGiB, g.bf16TFLOPs,
                                g.fp16TFLOPs, g.fp32TFLOPs, g.memoryBandwidthGBs, (g.supportsBF16 ? "yes" : "no") as NSString,
                                (g.supportsFlashAttention ? "yes" : "no") as NSString, g.gemmEfficiency, g.attentionEfficiency,
                                (g.calibrated ? "(measured)" : "(estimate)") as NSString))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func architectureTable() -> String {
        var lines: [String] = []
        for a in Architecture.catalog {
            lines.append("\(a.name): \(a.experts) expert\(a.experts == 1 ? "" : "s") × \(grouped(a.expertParameters)) parameters; d \(a.dim), FFN \(a.ffnDim), \(a.heads) heads × \(a.headDim), \(a.layers) layers, patch \(a.patch.t)×\(a.patch.h)×\(a.patch.w), \(a.inChannels) latent channels")
            lines.append("    VAE: \(a.vae.name) (\(a.vae.checkpoint)), \(grouped(a.vae.parameters)) parameters, \(a.vae.temporalStride)×\(a.vae.spatialStride)×\(a.vae.spatialStride), \(a.vae.latentChannels) channels")
            lines.append("    text: \(a.textEncoder.name) (\(a.textEncoder.checkpoint)), \(grouped(a.textEncoder.parameters)) parameters")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
