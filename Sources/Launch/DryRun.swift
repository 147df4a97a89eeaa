import Planner
import Support

/// What `wanlora train --dry-run` prints: the command for this node, the same launch for Slurm,
/// and the planner's figures for one GPU of this layout. Text only; the CLI prints it.
public enum DryRun {
    public static func text(request: LaunchRequest, command: LaunchCommand, slurmScript: String, plan: Plan?) -> String
    {
        var out: [String] = []
        let world = request.worldSize
        out.append(
            "Launch on this node"
                + (request.nodes > 1
                    ? " (node \(request.nodeRank) of \(request.nodes); run it on every node with its own --node-rank)"
                    : "") + ":")
        out.append("  " + command.shellLine)
        out.append(
            "  Every process gets the caller's environment unchanged "
                + "(CUDA_VISIBLE_DEVICES, NCCL_* and other settings pass through).")
        out.append("")
        out.append("Layout:")
        out.append(
            "  GPUs            \(world) = \(request.nodes) "
                + "node\(request.nodes == 1 ? "" : "s") × \(request.gpusPerNode)")
        if let plan {
            let tokens = plan.video.tokens
            let perGPU = (tokens + request.ulysses - 1) / request.ulysses
            out.append(
                "  Ulysses         \(request.ulysses)"
                    + (request.ulysses > 1
                        ? " (a \(plan.video.frames)-frame clip's "
                            + "\(NumberFormat.grouped(tokens)) tokens: \(NumberFormat.grouped(perGPU)) per GPU)"
                        : " (each GPU holds whole samples)"))
        } else {
            out.append("  Ulysses         \(request.ulysses)")
        }
        out.append(
            "  data parallel   \(request.dataParallelSize) "
                + "group\(request.dataParallelSize == 1 ? "" : "s") training different samples")
        out.append(
            "  FSDP            "
                + (request.fsdp && world > 1
                    ? "frozen expert weights sharded over all \(world) "
                        + "GPUs (1/\(world) each), gathered one block at a time"
                    : "off (every GPU holds the whole expert)"))
        out.append(
            "  LoRA            weights, gradients and optimizer state "
                + "on every GPU; gradients summed over all GPUs each step")
        if let plan {
            out.append(
                "  samples/step    \(plan.setup.microBatch) micro-batch × \(plan.setup.gradAccumulation) "
                    + "accumulation × \(plan.setup.dataParallelSize) = \(plan.setup.effectiveBatch)")
        }
        out.append("")
        out.append("On a Slurm cluster (save as train.sbatch, then `sbatch train.sbatch`):")
        out += slurmScript.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { "  " + $0 }
        out.append("")
        guard let plan else {
            out.append(
                "Per-GPU plan: not available for a resolved engine config; run --dry-run on the TOML configuration.")
            return out.joined(separator: "\n") + "\n"
        }
        let m = plan.memory
        out.append(
            "Per-GPU plan (\(plan.setup.gpu), "
                + "\(NumberFormat.decimal(plan.setup.gpuMemoryGiB, 0)) GiB; `wanlora plan` has the whole model):")
        let width = max(36, (m.items.map(\.name.count).max() ?? 0) + 2)
        for item in m.items {
            out.append(
                "  " + item.name.padding(toLength: width, withPad: " ", startingAt: 0) + gib(item.bytes).leftPad(10))
        }
        out.append(
            "  " + "peak".padding(toLength: width, withPad: " ", startingAt: 0) + gib(m.peakBytes).leftPad(10)
                + "  of \(gib(m.usableBytes)) usable: "
                + (m.fits ? "fits, \(gib(m.usableBytes - m.peakBytes)) to spare" : "DOES NOT FIT"))
        let video = plan.throughput.video
        out.append(
            "  time per \(plan.video.frames)-frame "
                + "sample  \(NumberFormat.decimal(video.totalSeconds, 1)) "
                + "s on its \(request.ulysses) GPU\(request.ulysses == 1 ? "" : "s")"
                + (video.ulyssesSeconds > 0 ? " (all-to-all \(NumberFormat.decimal(video.ulyssesSeconds, 2)) s)" : "")
                + (video.fsdpExposedSeconds > 0
                    ? " (FSDP gathers not hidden \(NumberFormat.decimal(video.fsdpExposedSeconds, 2)) s)" : ""))
        out.append(
            "  run             \(NumberFormat.grouped(plan.schedule.totalSteps)) steps, "
                + "\(NumberFormat.decimal(plan.schedule.runHours, 1)) h, "
                + "\(NumberFormat.decimal(plan.schedule.gpuHours, 0)) GPU-hours")
        let checks = plan.checks.sorted { $0.severity < $1.severity }
        if !checks.isEmpty {
            out.append("")
            out.append("Checks:")
            for check in checks { out.append("  \(check.severity.rawValue): \(check.message) Fix: \(check.remedy)") }
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func gib(_ bytes: Int) -> String { NumberFormat.decimal(Double(bytes) / Double(1 << 30), 1) + " GiB" }
}

extension String {
    fileprivate func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
