import Foundation

/// The catalogs as text tables (`wanlora plan --list-gpus`, `--list-models`).
public enum Catalogs {
    public static func gpuTable() -> String {
        let header = [
            "GPU", "GiB", "bf16 TFLOP/s", "fp16 TFLOP/s", "fp32 TFLOP/s", "memory GB/s", "bf16", "FlashAttn",
            "efficiency GEMM / attention",
        ]
        var rows = [header]
        for g in GPU.catalog {
            rows.append([
                g.name, String(format: "%.1f", g.memoryGiB), String(format: "%.1f", g.bf16TFLOPs),
                String(format: "%.1f", g.fp16TFLOPs),
                String(format: "%.1f", g.fp32TFLOPs), String(format: "%.0f", g.memoryBandwidthGBs),
                g.supportsBF16 ? "yes" : "no",
                g.supportsFlashAttention ? "yes" : "no",
                String(format: "%.2f / %.2f", g.gemmEfficiency, g.attentionEfficiency)
                    + (g.calibrated ? " (measured)" : " (estimate)"),
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                // Names left-aligned, numbers right-aligned.
                return column == 0 || column >= 6 ? cell + pad : pad + cell
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n") + "\n"
    }

    public static func architectureTable() -> String {
        var lines: [String] = []
        for a in Architecture.catalog {
            lines.append(
                "\(a.name): \(a.experts) expert\(a.experts == 1 ? "" : "s") × \(grouped(a.expertParameters)) "
                    + "parameters; d \(a.dim), FFN \(a.ffnDim), \(a.heads) heads × \(a.headDim), \(a.layers) "
                    + "layers, patch \(a.patch.t)×\(a.patch.h)×\(a.patch.w), \(a.inChannels) latent channels")
            lines.append(
                "    VAE: \(a.vae.name) (\(a.vae.checkpoint)), \(grouped(a.vae.parameters)) parameters, "
                    + "\(a.vae.temporalStride)×\(a.vae.spatialStride)×\(a.vae.spatialStride), "
                    + "\(a.vae.latentChannels) channels")
            lines.append(
                "    text: \(a.textEncoder.name) (\(a.textEncoder.checkpoint)), "
                    + "\(grouped(a.textEncoder.parameters)) parameters")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
