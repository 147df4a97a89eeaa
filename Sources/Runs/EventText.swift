import Foundation
import Support

/// Human-readable text of engine events: the one-line progress of a stage, and a line for each
/// event worth a line of its own. Every number has its unit.
public enum EventText {
    /// The progress line of a training step:
    /// `step 120/3,000 (4%) · loss 0.1234 · lr 1.00e-4 · 24.3 s/step · ETA 19 h 26 min · GPU 61.3 GiB peak`.
    public static func progressLine(_ s: EngineEvent.Step) -> String {
        var parts = [
            "step \(NumberFormat.grouped(s.step))/\(NumberFormat.grouped(s.totalSteps))"
                + " (\(percent(s.step, of: s.totalSteps)))"
        ]
        parts.append("loss " + loss(s.loss))
        parts.append("lr " + scientific(s.lr))
        parts.append(seconds(s.secondsPerStep) + "/step")
        parts.append("ETA " + duration(s.etaSeconds))
        if let peak = s.gpuMemoryPeakBytes {
            parts.append("GPU " + gib(peak) + " peak")
        } else {
            parts.append("RAM " + gib(s.hostMemoryPeakBytes) + " peak")
        }
        return parts.joined(separator: " · ")
    }

    /// The progress line of the cache stage, e.g.
    /// `cache latents:train 120/6,000 items (2%) · 14.5 items/s · ETA 6 min 45 s`.
    public static func progressLine(_ p: EngineEvent.Progress) -> String {
        var line =
            "\(p.stage.rawValue) \(p.phase) \(NumberFormat.grouped(p.done))/\(NumberFormat.grouped(p.total)) items"
            + " (\(percent(p.done, of: p.total)))"
        if let rate = p.itemsPerSecond, rate > 0 {
            line += " · \(NumberFormat.decimal(rate, rate >= 10 ? 1 : 2)) items/s"
            if p.done < p.total { line += " · ETA " + duration(Double(p.total - p.done) / rate) }
        }
        return line
    }

    /// A line for an event that deserves one (nil for `step` and `progress`, which update the
    /// progress line instead, for the sample and evaluate events, which their commands render, and
    /// for unknown types).
    public static func line(_ event: EngineEvent) -> String? {
        switch event.body {
        case .runStarted(let r):
            var text =
                "\(r.stage.rawValue) \"\(r.runName)\" started on \(r.deviceName == "cpu" ? "the CPU" : r.deviceName)"
                + (r.worldSize > 1 ? " × \(r.worldSize) processes" : "")
                + " (engine \(r.engineVersion), torch \(r.torchVersion), diffusers \(r.diffusersVersion))"
            if let step = r.resumedFromStep { text += ", resuming from step \(NumberFormat.grouped(step))" }
            return text
        case .cachePlan(let c):
            let splits = c.splits.keys.sorted().map { "\($0) \(NumberFormat.grouped(c.splits[$0]!))" }.joined(
                separator: ", ")
            return "cache plan: \(NumberFormat.grouped(c.items)) items (\(splits)), "
                + "\(NumberFormat.grouped(c.itemsCached)) already cached;"
                + " up to \(bytes(c.estimatedBytes)) to write, \(bytes(c.freeBytes)) free at \(c.cacheDir)"
        case .trainPlan(let t):
            let experts = t.experts.map { "\($0) \(NumberFormat.grouped(t.trainableParameters[$0] ?? 0))" }.joined(
                separator: ", ")
            var text =
                "training plan: \(NumberFormat.grouped(t.totalSteps)) steps of \(t.samplesPerStep) samples"
                + " (\(NumberFormat.decimal(t.epochs, 2)) epochs of \(NumberFormat.grouped(t.trainSamples)) items),"
                + " LoRA parameters \(experts); \(t.optimizer), mixed precision \(t.mixedPrecision)"
                + (t.gradientCheckpointing ? ", gradient checkpointing" : "")
                + "; \(NumberFormat.grouped(t.valSamples)) validation items"
            if let n = t.overfitSamples { text += "; overfit test on \(NumberFormat.grouped(n)) items" }
            return text
        case .eval(let e):
            var text =
                "eval at step \(NumberFormat.grouped(e.step)) (\(e.split), "
                + "\(NumberFormat.grouped(e.samples)) items): loss \(loss(e.valLoss))"
            let experts = [("high", e.valLossHigh), ("low", e.valLossLow)].compactMap { name, value in
                value.map { "\(name) \(loss($0))" }
            }
            if !experts.isEmpty { text += " (" + experts.joined(separator: ", ") + ")" }
            return text
        case .checkpoint(let c):
            return "checkpoint at step \(NumberFormat.grouped(c.step)): \(c.path) (\(bytes(c.bytes)))"
                + (c.removed.isEmpty ? "" : "; removed \(c.removed.count) older")
        case .stopped(let st):
            return "\(st.reason) by \(st.signal ?? "a signal") after step \(NumberFormat.grouped(st.step)): "
                + (st.saved ? "checkpoint written" : "no new checkpoint")
                + (st.checkpoint.map { "; continue from \($0)" } ?? "")
        case .nonFinite(let n):
            return "non-finite loss at step \(NumberFormat.grouped(n.step)): "
                + (n.action == "skipped" ? "step skipped" : "rolled back to the last checkpoint, learning rate lowered")
        case .warning(let w):
            return "warning (\(w.code)): \(w.message)"
        case .error(let e):
            var text = "engine error (\(e.code)): \(e.problem)"
            if let step = e.step { text += " [step \(NumberFormat.grouped(step))]" }
            return text
        case .runFinished(let f):
            return finishedLine(f)
        case .step, .progress, .samplePlan, .sampleStep, .sampleVideo, .evaluatePlan, .evaluateProgress, .other:
            return nil
        }
    }

    static func finishedLine(_ f: EngineEvent.RunFinished) -> String {
        var text = "\(f.stage.rawValue) \(f.status.rawValue) after \(duration(f.seconds))"
        let s = f.summary
        switch f.stage {
        case .cache:
            if let new = s.itemsNew {
                text += ": " + count(new, "item") + " cached"
                if let skipped = s.itemsSkippedNew, skipped > 0 {
                    text += ", \(NumberFormat.grouped(skipped)) skipped (see the warnings)"
                }
                if let truncated = s.truncatedCaptionsNew, truncated > 0, let length = s.textLength {
                    text += ", " + count(truncated, "caption") + " cut at \(length) tokens"
                }
                if let size = s.cacheBytes { text += "; cache \(bytes(size))" }
            }
        case .train:
            if let done = s.stepsDone, let total = s.totalSteps {
                text += ": \(NumberFormat.grouped(done))/\(NumberFormat.grouped(total)) steps"
            }
            if let val = s.finalValLoss { text += ", final val loss \(loss(val))" }
            if let peak = s.gpuMemoryPeakBytes {
                text += ", GPU peak \(gib(peak))"
            } else if let host = s.hostMemoryPeakBytes {
                text += ", RAM peak \(gib(host))"
            }
            if let o = s.overfit {
                text +=
                    "; overfit test on \(o.samples) items: "
                    + "eval loss \(loss(o.evalLossStart)) → \(loss(o.evalLossEnd)), "
                    + (o.lossFell ? "the loss fell" : "the loss did NOT fall")
            }
        case .sample, .evaluate:
            break
        }
        return text
    }

    // MARK: - Units

    /// "1 item", "2,000 items".
    static func count(_ n: Int, _ noun: String) -> String { NumberFormat.grouped(n) + " " + noun + (n == 1 ? "" : "s") }

    public static func loss(_ value: Double?) -> String {
        guard let value else { return "NaN/inf" }
        return String(format: "%.4f", value)
    }

    /// 0.0001 → "1.00e-4", 0 → "0".
    public static func scientific(_ value: Double) -> String {
        guard value != 0, value.isFinite else { return value == 0 ? "0" : "\(value)" }
        let exponent = Int(floor(log10(abs(value))))
        let mantissa = value / pow(10, Double(exponent))
        return String(format: "%.2f", mantissa) + "e\(exponent)"
    }

    /// 0.0325 → "0.033 s", 24.3 → "24.3 s", 612 → "10 min 12 s".
    public static func seconds(_ value: Double) -> String {
        if value < 1 { return String(format: "%.3f s", value) }
        if value < 60 { return String(format: "%.1f s", value) }
        return duration(value)
    }

    /// A duration for people: "12 s", "6 min 45 s", "19 h 26 min", "3 d 4 h".
    public static func duration(_ value: Double) -> String {
        guard value.isFinite, value >= 0 else { return "unknown" }
        let total = Int(value.rounded())
        if total < 60 { return "\(total) s" }
        if total < 3600 { return "\(total / 60) min \(total % 60) s" }
        if total < 86400 { return "\(total / 3600) h \((total % 3600) / 60) min" }
        return "\(total / 86400) d \((total % 86400) / 3600) h"
    }

    /// Bytes in binary units: "117.1 KiB", "61.3 GiB".
    public static func bytes(_ value: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var size = Double(value)
        var unit = 0
        while size >= 1024 && unit < units.count - 1 {
            size /= 1024
            unit += 1
        }
        return unit == 0 ? "\(value) B" : String(format: "%.1f ", size) + units[unit]
    }

    static func gib(_ value: Int) -> String { String(format: "%.2f GiB", Double(value) / 1_073_741_824) }

    static func percent(_ done: Int, of total: Int) -> String {
        total > 0 ? "\(Int((Double(done) / Double(total) * 100).rounded(.down)))%" : "–"
    }
}
