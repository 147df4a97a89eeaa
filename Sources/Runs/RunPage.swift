import Foundation
import Support

/// `RUN/run.html` (`wanlora runs --html`): a run's training curves from its `events.jsonl`, one self-contained
/// page (inline SVG, no scripts, no network): the training loss (both experts), the validation loss overall
/// and by timestep, the learning rate, memory and throughput. A series the events do not carry (an older
/// engine, a CPU run without GPU memory, no validation split) is named as not recorded instead of drawn.
public enum RunPage {
    /// Where the page of `folder` goes.
    public static func path(of folder: RunFolder) -> String {
        (folder.path as NSString).appendingPathComponent("run.html")
    }

    /// The page of `folder` from its training events and status.
    public static func html(_ folder: RunFolder) -> String {
        html(name: folder.name, events: folder.events(.train), status: RunStatus.read(folder))
    }

    typealias Points = [(x: Double, y: Double)]

    /// The page of a run named `name` from its training events (in file order: a resumed run's later start
    /// replaces the steps it repeats).
    public static func html(name: String, events: [EngineEvent], status: RunStatus?) -> String {
        var steps: [Int: EngineEvent.Step] = [:]
        var evals: [Int: EngineEvent.Eval] = [:]
        var plan: EngineEvent.TrainPlan?
        var started: EngineEvent.RunStarted?
        for event in events {
            switch event.body {
            case .step(let step): steps[step.step] = step
            case .eval(let eval): evals[eval.step] = eval
            case .trainPlan(let value): plan = value
            case .runStarted(let value) where value.stage == .train: started = value
            default: break
            }
        }
        let ordered = steps.keys.sorted().map { steps[$0]! }
        let orderedEvals = evals.keys.sorted().map { evals[$0]! }
        func series(_ value: (EngineEvent.Step) -> Double?) -> Points {
            ordered.compactMap { step in value(step).flatMap { $0.isFinite ? (Double(step.step), $0) : nil } }
        }
        func evalSeries(_ value: (EngineEvent.Eval) -> Double?) -> Points {
            orderedEvals.compactMap { eval in value(eval).flatMap { $0.isFinite ? (Double(eval.step), $0) : nil } }
        }
        let esc = HTMLText.escape
        var body = "<h1>Run \(esc(name))</h1>"
        var facts: [String] = []
        if let status {
            facts.append("state \(status.state.rawValue)")
            if let step = status.step {
                facts.append(
                    "step \(NumberFormat.grouped(step))"
                        + (status.totalSteps.map { " of " + NumberFormat.grouped($0) } ?? ""))
            }
            if let updated = status.updated { facts.append("last event \(esc(updated))") }
        }
        if let started {
            facts.append("\(esc(started.deviceName)) × \(started.worldSize), engine \(esc(started.engineVersion))")
        }
        if let plan {
            facts.append(
                "\(NumberFormat.grouped(plan.trainSamples)) training and \(NumberFormat.grouped(plan.valSamples)) "
                    + "validation items, \(plan.samplesPerStep) per step, optimizer \(esc(plan.optimizer))")
        }
        body += "<p class=\"meta\">\(facts.joined(separator: " · "))</p>"
        if ordered.isEmpty {
            body += "<p>No training steps in <code>events.jsonl</code> yet: nothing to draw.</p>"
        }
        let digits: (Double) -> String = { NumberFormat.decimal($0, 4) }
        let gib: (Double) -> String = { NumberFormat.decimal($0 / Double(1 << 30), 2) + " GiB" }
        body += figure(
            "Training loss (the engine's average since its previous step event)",
            [
                ("both experts", series(\.loss)), ("high-noise expert", series(\.lossHigh)),
                ("low-noise expert", series(\.lossLow)),
            ], yText: digits, absent: "the step events carry no loss")
        body += figure(
            "Validation loss at the fixed timesteps (\(orderedEvals.count) evaluations)",
            [
                ("all timesteps", evalSeries(\.valLoss)), ("high-noise expert", evalSeries(\.valLossHigh)),
                ("low-noise expert", evalSeries(\.valLossLow)),
            ], yText: digits,
            absent: "no eval events (no validation split, or no evaluation reached yet)")
        let timesteps = Set(orderedEvals.flatMap(\.lossesByTimestep.keys)).sorted {
            (Int($0) ?? 0, $0) < (Int($1) ?? 0, $1)
        }
        body += figure(
            "Validation loss by timestep t",
            timesteps.map { t in ("t = \(t)", evalSeries { $0.lossesByTimestep[t] ?? nil }) }, yText: digits,
            absent: "the eval events carry no losses by timestep")
        if let last = orderedEvals.last, !timesteps.isEmpty {
            body += "<div class=\"scroll\"><table><thead><tr><th>timestep t</th>"
            body += timesteps.map { "<th>\(esc($0))</th>" }.joined() + "</tr></thead><tbody><tr>"
            body += "<th>step \(NumberFormat.grouped(last.step))</th>"
            body += timesteps.map { "<td>\(NumberFormat.decimal(last.lossesByTimestep[$0] ?? nil, 4))</td>" }.joined()
            body += "</tr></tbody></table></div>"
        }
        body += figure(
            "Learning rate", [("lr", series { $0.lr })], yText: { String(format: "%.2e", $0) },
            absent: "the step events carry no learning rate")
        body += figure(
            "Memory (peak since the previous step event)",
            [
                ("GPU peak", series { $0.gpuMemoryPeakBytes.map(Double.init) }),
                ("GPU allocated", series { $0.gpuMemoryAllocatedBytes.map(Double.init) }),
                ("host peak", series { Double($0.hostMemoryPeakBytes) }),
            ], yText: gib,
            absent: "the step events carry no memory figures")
        body += figure(
            "Throughput (samples per second)", [("samples/s", series { $0.samplesPerSecond })],
            yText: { NumberFormat.decimal($0, 2) }, absent: "the step events carry no throughput")
        body += figure(
            "Seconds per step", [("s/step", series { $0.secondsPerStep })],
            yText: { NumberFormat.decimal($0, 2) }, absent: "the step events carry no step time")
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Run \(esc(name))</title>
            <style>
            body{font-family:\(HTMLText.fontFamily);margin:0 auto;max-width:980px;padding:12px;line-height:1.45;\
            color:#111}
            h1{font-size:1.5em}.meta,.note{color:#555;font-size:.9em;overflow-wrap:anywhere}
            figure{margin:1.2em 0}figcaption{font-weight:500;margin-bottom:.3em}
            .scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.9em}
            th,td{border-bottom:1px solid #eee;padding:3px 8px;white-space:nowrap}td{text-align:right}
            code{font-size:.85em;background:#f3f4f6;border-radius:3px;padding:0 3px}
            </style></head><body>
            \(body)
            </body></html>

            """
    }

    /// A chart of the series that have points; the series without points are named under it.
    static func figure(
        _ caption: String, _ series: [(name: String, points: Points)], yText: (Double) -> String, absent: String
    ) -> String {
        let missing = series.filter(\.points.isEmpty).map(\.name)
        var html = "<figure><figcaption>\(HTMLText.escape(caption))</figcaption>"
        if let chart = SVGChart.lines(series.map { ($0.name, $0.points) }, xTitle: "step", yText: yText) {
            html += chart
            if !missing.isEmpty {
                html += "<p class=\"note\">Not recorded: \(HTMLText.escape(missing.joined(separator: ", "))).</p>"
            }
        } else {
            html += "<p class=\"note\">Not recorded: \(HTMLText.escape(absent)).</p>"
        }
        return html + "</figure>"
    }
}
