import Foundation
import Support

/// The state of one run folder as `wanlora runs` shows it, read from its events file.
public struct RunStatus: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        /// A wanlora process (or the engine it started) holds the run's lock.
        case running
        case completed
        /// The engine reported an error (bad data, missing model file, …).
        case failed
        /// Stopped by Ctrl-C after a checkpoint: `--resume` continues.
        case interrupted
        /// Stopped by a scheduler or torchrun (SIGTERM, SIGUSR1) after a step, its checkpoint written
        /// in the grace or the last one kept: `--resume` (or the requeued job) continues.
        case preempted
        /// The loss became NaN/Inf; the last good checkpoint is kept.
        case diverged
        /// The engine ended without its final event (killed, out of memory, power cut): resumable
        /// from the newest checkpoint.
        case crashed
        /// The folder has a config but no events yet.
        case new
    }

    public var name: String
    public var path: String
    /// The stage whose events are newest: train, or cache when nothing was trained yet.
    public var stage: EngineLaunch.Stage
    public var state: State
    /// Optimizer steps done (the newest `step`, `checkpoint` or `run_finished` event).
    public var step: Int?
    public var totalSteps: Int?
    public var lastLoss: Double?
    public var lastValLoss: Double?
    /// Time of the newest event (UTC, ISO 8601).
    public var updated: String?
    public var checkpoints: Int
    /// Cache stage: items done of the total in the newest progress or finish event.
    public var cachedItems: Int?

    /// Reads the status of `folder`; nil when it is no run folder (no config, no events).
    public static func read(_ folder: RunFolder) -> RunStatus? {
        let fm = FileManager.default
        let trainEvents = folder.eventsPath(.train)
        let cacheEvents = folder.eventsPath(.cache)
        let hasTrain = fm.fileExists(atPath: trainEvents)
        let hasCache = fm.fileExists(atPath: cacheEvents)
        guard hasTrain || hasCache || fm.fileExists(atPath: folder.configPath) else { return nil }
        func modified(_ path: String) -> Date {
            ((try? fm.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? .distantPast
        }
        let stage: EngineLaunch.Stage =
            hasTrain && (!hasCache || modified(trainEvents) >= modified(cacheEvents)) ? .train : .cache
        let events = folder.events(stage)
        var status = RunStatus(
            name: folder.name, path: folder.path, stage: stage, state: .new, step: nil, totalSteps: nil,
            lastLoss: nil, lastValLoss: nil, updated: events.last?.time, checkpoints: folder.checkpoints().count,
            cachedItems: nil)
        // The events file is appended by every start (resume): the state is that of the last start.
        let lastStart = events.lastIndex { if case .runStarted = $0.body { return true } else { return false } }
        var finished: EngineEvent.RunFinished?
        var stopped: EngineEvent.Stopped?
        for (index, event) in events.enumerated() {
            switch event.body {
            case .trainPlan(let plan): status.totalSteps = plan.totalSteps
            case .step(let s):
                status.step = s.step
                status.totalSteps = s.totalSteps
                status.lastLoss = s.loss
            case .eval(let e): status.lastValLoss = e.valLoss
            case .checkpoint(let c): status.step = max(status.step ?? 0, c.step)
            case .stopped(let s): if let lastStart, index > lastStart { stopped = s }
            case .progress(let p): status.cachedItems = p.done
            case .runFinished(let f):
                if let lastStart, index > lastStart { finished = f }
                if f.stage == .train, let done = f.summary.stepsDone { status.step = done }
                if f.stage == .cache, let new = f.summary.itemsNew { status.cachedItems = new }
            default: break
            }
        }
        if RunLock.isHeld(folder) {
            status.state = .running
        } else if let finished {
            status.state =
                switch finished.status {
                case .completed: .completed
                case .failed: .failed
                case .interrupted: stopped?.reason == "preempted" ? .preempted : .interrupted
                case .diverged: .diverged
                }
        } else if lastStart != nil {
            status.state = .crashed
        }
        return status
    }

    /// The runs under `runsDir` (one folder each), sorted by name.
    public static func list(runsDir: String) throws -> [RunStatus] {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: runsDir, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RunError(
                problem: "The runs folder \(runsDir) does not exist.",
                remedy: "Pass the folder that holds the run folders (--runs-dir), "
                    + "or the configuration whose run.runs_dir it is (--config); `wanlora train` creates it.")
        }
        let names = try fm.contentsOfDirectory(atPath: runsDir).sorted()
        return names.compactMap { name in
            guard !name.hasPrefix(".") else { return nil }
            return read(RunFolder(path: (runsDir as NSString).appendingPathComponent(name)))
        }
    }

    /// A fixed-width table of runs for the terminal.
    public static func table(_ runs: [RunStatus]) -> String {
        let header = ["run", "stage", "state", "steps", "last loss", "val loss", "checkpoints", "updated (UTC)"]
        let rows = runs.map { r -> [String] in
            let steps: String
            switch r.stage {
            case .train:
                steps =
                    r.step.map { step in
                        NumberFormat.grouped(step) + (r.totalSteps.map { "/" + NumberFormat.grouped($0) } ?? "")
                    } ?? "–"
            case .cache:
                steps = r.cachedItems.map { NumberFormat.grouped($0) + " items" } ?? "–"
            }
            return [
                r.name, r.stage.rawValue, r.state.rawValue, steps,
                r.lastLoss.map { String(format: "%.4f", $0) } ?? "–",
                r.lastValLoss.map { String(format: "%.4f", $0) } ?? "–",
                String(r.checkpoints),
                r.updated.map { String($0.prefix(19)).replacingOccurrences(of: "T", with: " ") } ?? "–",
            ]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n") + "\n"
    }

    /// The runs as JSON (one object per run), for scripts.
    public static func json(_ runs: [RunStatus]) -> JSONValue {
        .array(
            runs.map { r in
                func number(_ d: Double?) -> JSONValue { d.map { .double($0) } ?? .null }
                func int(_ i: Int?) -> JSONValue { i.map { .int($0) } ?? .null }
                return .object([
                    JSONMember("name", .string(r.name)), JSONMember("path", .string(r.path)),
                    JSONMember("stage", .string(r.stage.rawValue)), JSONMember("state", .string(r.state.rawValue)),
                    JSONMember("step", int(r.step)), JSONMember("total_steps", int(r.totalSteps)),
                    JSONMember("last_loss", number(r.lastLoss)), JSONMember("last_val_loss", number(r.lastValLoss)),
                    JSONMember("checkpoints", .int(r.checkpoints)), JSONMember("cached_items", int(r.cachedItems)),
                    JSONMember("updated", r.updated.map { .string($0) } ?? .null),
                ])
            })
    }
}
