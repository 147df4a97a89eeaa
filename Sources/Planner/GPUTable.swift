import Config
import Foundation

/// One card of `wanlora plan --gpu-table`: the setting of the configuration that fits it and what it costs.
public struct GPUTableRow: Sendable, Codable {
    public var gpu: String
    public var memoryGiB: Double
    /// Nil when not even an image fits.
    public var option: SettingOption?
    /// Hours of the run on the configured GPUs with that setting.
    public var runHours: Double?
    /// What the row assumes that the others do not (no bf16 on the card, planning only…).
    public var notes: [String]
}

/// `wanlora plan --gpu-table`: for every catalog GPU, a setting that fits it (`Alternatives.best`), its time
/// and the host memory it needs.
public enum GPUTable {
    /// Plans `config` on every catalog GPU at the card's full memory (hardware.gpu_memory_limit does not
    /// apply: each card is planned whole). Cards without bf16 arithmetic are planned with fp16 compute,
    /// which the planner models and the engine does not train: their rows say so.
    public static func rows(
        config: WanLoRAConfig, dataset: DatasetSize = .archiveTrainingSplit,
        hostMemoryAvailableBytes: Int? = nil
    ) -> [GPUTableRow] {
        GPU.catalog.sorted { $0.memoryBytes < $1.memoryBytes }.map { gpu in
            var c = config
            c.hardware.gpu = gpu.name
            c.hardware.gpuMemoryLimit = 0
            var notes: [String] = []
            if !gpu.supportsBF16 && c.training.mixedPrecision == .bf16 {
                c.training.mixedPrecision = .fp16
                notes.append(
                    "no bf16 arithmetic: planned with fp16 compute, which the engine does not train "
                        + "(it needs loss scaling); bf16 would run emulated in fp32 at \(fmt(gpu.fp32TFLOPs)) TFLOP/s")
            }
            if !gpu.supportsFlashAttention {
                let share = Int((gpu.attentionEfficiency * 100).rounded())
                notes.append(
                    "no FlashAttention or cuDNN attention (compute capability \(gpu.computeCapability)): "
                        + "SDPA's memory-efficient kernel at an estimated \(share)% of the fp16 rate")
            }
            if !gpu.calibrated { notes.append("efficiencies estimated, not measured") }
            let found = Alternatives.best(for: c, dataset: dataset, hostMemoryAvailableBytes: hostMemoryAvailableBytes)
            return GPUTableRow(
                gpu: gpu.name, memoryGiB: gpu.memoryGiB, option: found?.option,
                runHours: found?.plan.schedule.runHours, notes: notes)
        }
    }

    static func cells(_ row: GPUTableRow) -> [String] {
        let giB = { (b: Int) in String(format: "%.1f", Double(b) / Double(1 << 30)) }
        guard let o = row.option else {
            return [row.gpu, String(format: "%.1f", row.memoryGiB), "nothing fits (not even an image)"]
                + Array(repeating: "", count: header.count - 3)
        }
        let blocks = o.residentBlocks == o.blocks ? "all \(o.blocks)" : "\(o.residentBlocks) of \(o.blocks)"
        let link =
            o.linkSeconds > 0
            ? String(format: "%.2f s (%.0f%% hidden)", o.linkSeconds, 100 * o.hiddenLinkSeconds / o.linkSeconds) : "—"
        let changed = o.details.filter { $0 != "\(o.frames) frames" && $0 != "fp8 host weights" }
        let setting =
            "\(o.frames) frames, \(o.hostWeights)"
            + (changed.isEmpty ? "" : "; " + changed.joined(separator: ", "))
        return [
            row.gpu, String(format: "%.1f", row.memoryGiB), setting, blocks, giB(o.peakBytes),
            giB(o.hostNeededBytes), link, String(format: "%.1f", o.secondsPerVideoSample),
            String(format: "%.2f", o.secondsPerImageSample), row.runHours.map { String(format: "%.0f", $0) } ?? "",
        ]
    }

    static let header = [
        "GPU", "GiB", "setting that fits", "blocks on GPU", "peak GiB", "host RAM GiB",
        "block copies a step", "s/video", "s/image", "run h",
    ]

    /// An aligned table for the terminal, then the notes of the rows that have some.
    public static func text(_ rows: [GPUTableRow], config: WanLoRAConfig) -> String {
        let table = [header] + rows.map(cells)
        let widths = header.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
        let numeric: Set = [1, 4, 5, 7, 8, 9]
        var lines = [title(config), ""]
        lines += table.map { row in
            row.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return numeric.contains(column) ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        lines += [""] + legend
        for row in rows where !row.notes.isEmpty {
            lines.append("\(row.gpu): " + row.notes.joined(separator: "; ") + ".")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func markdown(_ rows: [GPUTableRow], config: WanLoRAConfig) -> String {
        var out =
            "## \(title(config))\n\n| " + header.joined(separator: " | ") + " |\n|"
            + header.map { _ in "---" }.joined(separator: "|") + "|\n"
        for row in rows {
            let escaped = cells(row).map { $0.replacingOccurrences(of: "|", with: "\\|") }
            out += "| " + escaped.joined(separator: " | ") + " |\n"
        }
        out += "\n" + legend.joined(separator: "\n") + "\n"
        for row in rows where !row.notes.isEmpty { out += "\n- \(row.gpu): " + row.notes.joined(separator: "; ") + "." }
        return out + "\n"
    }

    static func title(_ c: WanLoRAConfig) -> String {
        let t = c.training
        return "Each catalog GPU, \(c.hardware.worldSize) per run: \(t.frames) frames \(t.width)x\(t.height), "
            + "rank \(c.lora.rank), \(c.lora.targets.count) target names, \(t.optimizer.rawValue), "
            + "\(t.blocks.rawValue) blocks, experts: \(t.expert.rawValue)"
    }

    static let legend = [
        "setting: frames and the host format of streamed blocks (bf16 exact; fp8 e4m3 with per-channel scales), "
            + "then what else differs from the configuration. blocks on GPU: the engine's rule (docs/streaming.md); "
            + "the rest stream from pinned host memory. host RAM: what a node needs (streamed blocks, kept "
            + "activations, the inactive expert, the engine, loading; 8 GiB left free). block copies: host-to-GPU "
            + "weight copies of a video step and the share the compute hides. s/video, s/image: one training "
            + "sample. run h: the whole run on the configured GPUs."
    ]
}

extension GPUTable {
    /// The rows as one JSON document (snake_case keys, like `Plan.jsonData()`).
    public static func jsonData(_ rows: [GPUTableRow]) throws -> Data { try planJSON(rows) }
}
