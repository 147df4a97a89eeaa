import Foundation

/// Text for people: the terminal table and Markdown of a plan and of the report comparison.
/// (JSON is the plan's Codable form: `Plan.jsonData()`.)
public enum PlanRendering {
    /// A plain-text table for the terminal.
    public static func text(_ plan: Plan) -> String {
        sections(plan).map { section in
            var lines = [section.title]
            let width = max(28, (section.rows.map { $0.0.count }.max() ?? 0) + 2)
            for (label, value) in section.rows {
                let valueLines = value.split(separator: "\n", omittingEmptySubsequences: false)
                for (i, v) in valueLines.enumerated() {
                    let left = i == 0 ? label : ""
                    lines.append("  " + left.padding(toLength: width, withPad: " ", startingAt: 0) + v)
                }
            }
            return lines.joined(separator: "\n")
        }.joined(separator: "\n\n") + "\n\n" + checksText(plan.checks)
    }

    /// The same content as Markdown tables.
    public static func markdown(_ plan: Plan) -> String {
        var out = "# wanlora plan: \(plan.setup.architecture) on \(plan.setup.worldSize) × \(plan.setup.gpu)\n"
        for (index, section) in sections(plan).enumerated() {
            out += "\n## \(index == 0 ? "Setup (preset \(plan.setup.preset))" : section.title)\n\n| | |\n|---|---|\n"
            for (label, value) in section.rows {
                out += "| \(escape(label)) | \(escape(value).replacingOccurrences(of: "\n", with: "<br>")) |\n"
            }
        }
        out += "\n## Memory per GPU, item by item\n\n| item | GiB | how |\n|---|---:|---|\n"
        for item in plan.memory.items {
            out +=
                "| \(escape(item.name)) | \(String(format: "%.2f", Double(item.bytes) / Double(1 << 30))) "
                + "| \(escape(item.basis)) |\n"
        }
        out += "\n## Checks\n\n"
        if plan.checks.isEmpty { out += "No problems found.\n" }
        for c in plan.checks.sorted(by: { $0.severity < $1.severity }) {
            out += "- **\(c.severity.rawValue)** `\(c.code)`: \(c.message) *Fix:* \(c.remedy)\n"
        }
        return out
    }

    /// The report's claims beside the computed values, for the terminal.
    public static func text(_ comparison: ReportComparison) -> String {
        var lines = ["The report's claims (V100 preset unless noted) beside wanlora's figures", ""]
        for row in comparison.rows {
            lines.append(row.claim)
            lines.append("  report:    \(row.report)")
            lines.append("  computed:  \(row.computed)")
            lines.append("  verdict:   \(row.verdict)")
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    public static func markdown(_ comparison: ReportComparison) -> String {
        var out =
            "## The report's claims beside wanlora's figures\n\n| "
            + "claim | report | computed | verdict |\n|---|---|---|---|\n"
        for row in comparison.rows {
            out +=
                "| \(escape(row.claim)) | \(escape(row.report)) | \(escape(row.computed)) | \(escape(row.verdict)) |\n"
        }
        return out
    }

    static func escape(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }

    static func checksText(_ checks: [PlanCheck]) -> String {
        guard !checks.isEmpty else { return "Checks\n  no problems found\n" }
        var lines = ["Checks"]
        for c in checks.sorted(by: { $0.severity < $1.severity }) {
            let mark = c.severity == .error ? "ERROR  " : c.severity == .warning ? "warning" : "note   "
            lines.append("  \(mark) [\(c.code)] \(c.message)")
            lines.append("          fix: \(c.remedy)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    struct Section {
        var title: String
        var rows: [(String, String)]
    }

    static func sections(_ p: Plan) -> [Section] {
        let s = p.setup
        let giB = { (b: Int) in String(format: "%.1f GiB", Double(b) / Double(1 << 30)) }
        let setup = Section(
            title: "wanlora plan: \(s.architecture), preset \(s.preset)",
            rows: [
                (
                    "GPUs",
                    "\(s.worldSize) × "
                        + "\(s.gpu) (\(String(format: "%.1f", s.gpuMemoryGiB)) GiB each), "
                        + "\(s.nodes) node\(s.nodes == 1 ? "" : "s") × \(s.gpusPerNode)"
                ),
                (
                    "parallelism",
                    "Ulysses \(s.ulyssesDegree) → \(s.dataParallelSize) data-parallel "
                        + "group\(s.dataParallelSize == 1 ? "" : "s"); FSDP \(s.fsdp ? "on" : "off")"
                ),
                (
                    "batch",
                    "micro \(s.microBatch) × accumulation \(s.gradAccumulation) "
                        + "× \(s.dataParallelSize) groups = \(s.effectiveBatch) samples a step"
                ),
                ("precision", "\(s.mixedPrecision) compute, \(s.weightsDtype) base weights, \(s.optimizer)"),
                (
                    "placement",
                    "UMT5 \(s.t5), VAE \(s.vae), inactive expert \(s.inactiveExpert); experts trained: \(s.expert)"
                ),
            ])
        let v = p.video
        let clip = Section(
            title: "Shapes",
            rows: [
                (
                    "video clip",
                    "\(v.frames) frames \(v.width)x\(v.height) "
                        + "→ latent \(v.latentFrames)×\(v.latentHeight)×\(v.latentWidth)×\(v.latentChannels) "
                        + "→ \(grouped(v.tokens)) tokens"
                ),
                ("image (1-frame clip)", "\(grouped(p.image.tokens)) tokens"),
                ("caption", "\(s.textLength) UMT5 tokens"),
                (
                    "model",
                    "\(p.model.experts) expert\(p.model.experts == 1 ? "" : "s") "
                        + "× \(grouped(p.model.expertParameters)) parameters (\(giB(p.model.expertBytesBF16)) "
                        + "each in bf16); d \(p.model.dim), FFN \(p.model.ffnDim), "
                        + "\(p.model.heads) heads, \(p.model.layers) layers"
                ),
                (
                    "encoders",
                    "UMT5-XXL \(grouped(p.model.textEncoderParameters)) "
                        + "parameters; VAE \(grouped(p.model.vaeParameters))"
                ),
            ])
        let l = p.lora
        let lora = Section(
            title: "LoRA",
            rows: [
                (
                    "targets, rank",
                    "\(l.targets.joined(separator: ", ")) at rank \(l.rank) → \(l.modulesPerExpert) modules an expert"
                ),
                (
                    "parameters",
                    "\(grouped(l.parametersPerExpert)) an expert; \(grouped(l.parametersTotal)) "
                        + "for \(l.experts) expert\(l.experts == 1 ? "" : "s")"
                ),
                (
                    "file size",
                    String(
                        format: "%.1f MB bf16 / %.1f MB fp32 an expert", Double(l.bytesPerExpertBF16) / 1e6,
                        Double(l.bytesPerExpertFP32) / 1e6)
                ),
            ])
        var memoryRows = p.memory.items.map { ($0.name, giB($0.bytes)) }
        memoryRows.append(
            (
                "peak (training step)",
                "\(giB(p.memory.trainingPhaseBytes))"
                    + (p.memory.encodePhaseBytes > p.memory.trainingPhaseBytes
                        ? "; encode phase \(giB(p.memory.encodePhaseBytes))" : "")
            ))
        memoryRows.append(
            (
                "usable on the card",
                "\(giB(p.memory.usableBytes)) → \(p.memory.fits ? "fits" : "DOES NOT FIT") "
                    + "(\(Int((p.memory.utilisation * 100).rounded()))%)"
            ))
        memoryRows.append(("image sample peak", giB(p.imageMemory.peakBytes)))
        let memory = Section(title: "Memory per GPU (one \(v.frames)-frame sample)", rows: memoryRows)
        let placement = placementSection(p)

        let f = p.throughput.videoFlops
        let t = p.throughput.video
        let flops = Section(
            title: "Work and time per sample",
            rows: [
                (
                    "video FLOPs",
                    String(
                        format: "%.2f PFLOP = forward %.2f + recompute %.2f + backward %.2f (%.0f%% self-attention)",
                        f.total.total / 1e15, f.forward.total / 1e15, f.recompute.total / 1e15, f.backward.total / 1e15,
                        f.selfAttentionShare * 100)
                ),
                (
                    "video sample",
                    String(
                        format: "%.1f s on %d GPU%@ = GEMM %.1f + attention %.1f + elementwise "
                            + "%.1f + Ulysses %.2f + FSDP %.2f + encode/offload %.2f",
                        t.totalSeconds, s.ulyssesDegree, s.ulyssesDegree == 1 ? "" : "s", t.gemmSeconds,
                        t.attentionSeconds, t.elementwiseSeconds,
                        t.ulyssesSeconds, t.fsdpExposedSeconds, t.encodeAndOffloadSeconds)
                ),
                (
                    "image sample",
                    String(
                        format: "%.2f s (%.3f PFLOP)", p.throughput.image.totalSeconds,
                        p.throughput.imageFlops.total.total / 1e15)
                ),
                (
                    "achieved",
                    String(
                        format: "%.0f TFLOP/s a GPU (%@)%@", p.throughput.videoTFLOPsPerGPU,
                        p.throughput.calibrated ? "calibrated" : "estimated efficiencies",
                        p.throughput.emulatedBF16 ? "; bf16 EMULATED" : "")
                ),
            ])
        let sc = p.schedule
        let schedule = Section(
            title: "Schedule (\(grouped(sc.dataset.videos)) videos + \(grouped(sc.dataset.images)) images)",
            rows: [
                ("optimizer step", String(format: "%.1f s (mean of the mix)", sc.secondsPerStep)),
                (
                    "steps",
                    "\(grouped(sc.stepsPerEpoch)) an epoch, \(grouped(sc.totalSteps)) "
                        + "in \(s.epochs) epoch\(s.epochs == 1 ? "" : "s")"
                ),
                ("epoch", hours(sc.epochHours)),
                (
                    "run",
                    "\(hours(sc.runHours)) wall, \(grouped(Int(sc.gpuHours.rounded()))) "
                        + "GPU-hours (\(Int((sc.videoShare * 100).rounded()))% on videos)"
                ),
                (
                    "experts",
                    p.model.experts > 1
                        ? String(format: "%.0f%% of samples train the high-noise expert", sc.highNoiseFraction * 100)
                        : "one transformer"
                ),
            ])
        let c = p.cache
        let mb = { (bytes: Int) in String(format: "%.2f MB", Double(bytes) / 1e6) }
        let cache = Section(
            title: "Cache (wanlora cache)",
            rows: [
                (
                    "size",
                    "\(gb(c.totalBytes)): \(mb(c.bytesPerVideo)) a video item (latent \(mb(c.latentBytesPerVideo))), "
                        + "\(mb(c.bytesPerImage)) an image item (latent \(mb(c.latentBytesPerImage)))"
                ),
                (
                    "text",
                    "\(mb(c.textBytesPerCaption)) a caption: \(c.textTokensPerCaption) UMT5 tokens × "
                        + "\(grouped(c.textBytesPerCaption / max(c.textTokensPerCaption, 1) / 2)) × 2 B, "
                        + "stored at the caption's own length "
                        + "(estimate: \(String(format: "%.0f", c.meanCaptionCharacters))-character captions at "
                        + "\(String(format: "%.1f", CacheModel.charactersPerToken)) characters a token)"
                ),
                ("disk free", c.diskFreeBytes.map(gb) ?? "unknown"),
                (
                    "build once",
                    String(
                        format: "%.1f h on the %d GPU%@ `wanlora cache` runs on (%.0f GPU-hours: %.2f s a video, "
                            + "%.2f s an image; %@ on the %@)",
                        c.buildHours, c.gpus, c.gpus == 1 ? "" : "s", c.buildGPUHours, c.secondsPerVideo,
                        c.secondsPerImage, CacheModel.rates.source, CacheModel.rates.gpu.name)
                ),
            ])
        let i = p.inference
        let sampling = Section(
            title: "wanlora sample (\(i.frames) frames, \(grouped(i.tokens)) tokens; per layout, calibrated on the "
                + "measured H200 step)",
            rows: p.sampling.map { e in
                (
                    e.label,
                    String(
                        format: "%.2f s a step, %.0f s a video (decode %.0f s), %.1f videos/h, ",
                        e.secondsPerStep, e.videoSeconds, e.decodeSeconds, e.videosPerHour)
                        + "\(giB(e.peakBytesPerGPU)) per GPU"
                        + (e.cfgBatch ? "" : ", guidance unbatched") + (e.fits ? "" : " (does not fit)")
                )
            })
        return [setup, clip, lora, memory, placement, flops, schedule, cache, sampling]
    }

    /// Where the frozen blocks and the kept activations are, the link's work, and the host memory.
    static func placementSection(_ p: Plan) -> Section {
        let w = p.placement
        let giB = { (b: Int) in String(format: "%.1f GiB", Double(b) / Double(1 << 30)) }
        var rows: [(String, String)] = []
        rows.append(
            (
                "GPU memory",
                "\(giB(p.memory.usableBytes)) usable of \(giB(p.memory.capacityBytes))"
                    + (p.memory.reservedBytes > 0
                        ? " (1 GiB kept for the CUDA context)" : " (hardware.gpu_memory_limit)")
                    + "; the engine's rule places the blocks under \(giB(w.limitBytes))"
            ))
        if !w.fitsRule {
            rows.append(
                (
                    "expert blocks",
                    "DO NOT FIT even all streamed: \(giB(w.engineFixedBytes)) fixed + "
                        + "\(giB(w.engineWorkingBytes)) activations + \(w.slots) slots "
                        + "× \(giB(w.blockBytes)) > \(giB(w.limitBytes))"
                ))
        } else if w.streams {
            rows.append(
                (
                    "expert blocks",
                    "\(w.residentBlocks) of \(w.blocks) on the GPU; \(w.streamedBlocks) streamed from pinned host "
                        + "memory (\(w.hostWeights.rawValue), \(giB(w.hostBlockBytes)) each) through \(w.slots) slots"
                ))
        } else {
            rows.append(("expert blocks", "all \(w.blocks) on the GPU"))
        }
        rows.append(
            ("kept activations", w.activationOffload ? "pinned host memory (all blocks but the last)" : "on the GPU"))
        if w.streams {
            let s = p.streaming
            let i = p.imageStreaming
            rows.append(
                (
                    "link, video step",
                    String(
                        format:
                            "%.2f s of block copies (%.0f ms each), %.2f s hidden behind %.0f "
                            + "ms / %.0f ms of compute a block forward / backward, %.2f s exposed",
                        s.linkSeconds, s.weightCopySeconds * 1000, s.hiddenSeconds, s.forwardBlockSeconds * 1000,
                        s.backwardBlockSeconds * 1000, s.exposedSeconds)
                ))
            rows.append(
                (
                    "link, image step",
                    String(format: "%.2f s of block copies, %.2f s exposed", i.linkSeconds, i.exposedSeconds)
                ))
        }
        let h = p.host
        for item in h.items { rows.append(("host: \(item.name)", giB(item.bytes))) }
        if h.loadingBytesPerProcess > h.trainingBytesPerProcess + h.reserveBytes / h.processes {
            rows.append(
                (
                    "host: while loading",
                    "\(giB(h.loadingBytesPerProcess)) (each expert is read whole before it is placed)"
                ))
        }
        let per = h.processes > 1 ? " (\(h.processes) processes on a node)" : ""
        var need =
            "\(giB(h.neededBytes))\(per)"
            + (h.neededBytes == h.processes * h.loadingBytesPerProcess
                ? " (loading)" : ", with \(giB(h.reserveBytes)) left free")
        if let available = h.availableBytes {
            need += "; \(giB(available)) available → \(h.fits ? "fits" : "DOES NOT FIT")"
        }
        rows.append(("host RAM needed", need))
        return Section(title: "Weights, activations and host memory", rows: rows)
    }

    static func hours(_ h: Double) -> String {
        h >= 48 ? String(format: "%.0f h (%.1f days)", h, h / 24) : String(format: "%.1f h", h)
    }
}
