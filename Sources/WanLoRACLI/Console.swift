// swift-format-ignore-file: AmbiguousTrailingClosureOverload
// reportingErrors has a sync and an async overload: the caller's context (run() or async run()) picks one.

import ArgumentParser
import Foundation
import Support

/// Where the CLI writes: results on stdout, progress and diagnostics on stderr.
enum Console {
    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func err(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static var stderrIsTerminal: Bool { isatty(2) == 1 }

    /// Progress on stderr: an animated line on a terminal, a plain line at most every two
    /// seconds in a pipe, JSON lines with `--progress json`; nothing with `quiet`.
    static func progress(style: ProgressStyle) -> ProgressReporter {
        let style = style.resolved
        let throttle = ProgressThrottle()
        return ProgressReporter { event in
            guard style != .none, throttle.shouldEmit(event, interval: style == .terminal ? 0.1 : 2) else { return }
            let elapsed = throttle.elapsed(event.stage)
            let rate = ProgressRate(completed: event.completed, total: event.total, elapsed: elapsed)
            switch style {
            case .none, .auto: return
            case .json:
                var object: [String: Any] = [
                    "event": "progress", "stage": event.stage, "completed": event.completed, "unit": event.unit,
                ]
                if let total = event.total { object["total"] = total }
                object["elapsed_s"] = (elapsed * 1000).rounded() / 1000
                if let perSecond = rate.perSecond, elapsed >= 0.5 {
                    object["rate_per_s"] = (perSecond * 1000).rounded() / 1000
                }
                if let secondsLeft = rate.secondsLeft, elapsed >= 0.5 { object["eta_s"] = secondsLeft.rounded() }
                if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                    FileHandle.standardError.write(data + Data("\n".utf8))
                }
            case .terminal, .plain:
                var line = "\(event.stage): \(describe(event.completed, unit: event.unit))"
                if let total = event.total, total > 0 {
                    let share = Double(event.completed) / Double(total)
                    let done =
                        event.unit == "bytes"
                        ? describe(event.completed, unit: event.unit) : NumberFormat.grouped(event.completed)
                    line =
                        "\(event.stage): \(done) of \(describe(total, unit: event.unit)) "
                        + "(\(NumberFormat.percent(share, 0)))"
                    if style == .terminal {
                        line = "\(event.stage) \(bar(share)) " + line.dropFirst(event.stage.count + 2)
                    }
                }
                if let perSecond = rate.perSecond, elapsed >= 1 {
                    line += " · " + describeRate(perSecond, unit: event.unit)
                    if let secondsLeft = rate.secondsLeft, event.completed != event.total {
                        line += " · ETA " + NumberFormat.duration(secondsLeft)
                    }
                }
                if style == .terminal {
                    FileHandle.standardError.write(
                        Data(("\r\u{1B}[K" + line + (event.completed == event.total ? "\n" : "")).utf8))
                } else {
                    err(line)
                }
            }
        }
    }

    /// `[██████░░░░░░░░░░]`, 16 cells.
    static func bar(_ share: Double) -> String {
        let cells = 16
        let filled = min(cells, max(0, Int((share * Double(cells)).rounded(.down))))
        return "[" + String(repeating: "█", count: filled) + String(repeating: "░", count: cells - filled) + "]"
    }

    static func describeRate(_ perSecond: Double, unit: String) -> String {
        if unit == "bytes" { return NumberFormat.decimal(perSecond / 1_048_576, 1) + " MiB/s" }
        return NumberFormat.decimal(perSecond, perSecond < 10 ? 2 : 1) + " \(unit)/s"
    }

    static func describe(_ value: Int, unit: String) -> String {
        unit == "bytes"
            ? NumberFormat.decimal(Double(value) / 1_048_576, 1) + " MiB" : NumberFormat.grouped(value) + " " + unit
    }
}

/// Lets through the first and last event of a stage and at most one per interval in between.
final class ProgressThrottle: @unchecked Sendable {
    private let lock = NSLock()
    private var last: [String: Date] = [:]
    private var lastCompleted: [String: Int] = [:]
    private var started: [String: Date] = [:]

    /// Seconds since the first event of `stage` (rates and ETAs are measured from there).
    func elapsed(_ stage: String) -> Double {
        lock.lock()
        defer { lock.unlock() }
        return Date().timeIntervalSince(started[stage] ?? Date())
    }

    func shouldEmit(_ event: ProgressEvent, interval: TimeInterval) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        let finished = event.total.map { event.completed >= $0 } ?? false
        if started[event.stage] == nil { started[event.stage] = now }
        if lastCompleted[event.stage] == event.completed { return false }
        if let previous = last[event.stage], !finished, now.timeIntervalSince(previous) < interval { return false }
        last[event.stage] = now
        lastCompleted[event.stage] = event.completed
        return true
    }
}

/// Runs a command body and turns library errors into two plain lines and exit code 1.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as any ActionableError {
        Console.err("error: \(error.problem)\nhow to fix: \(error.remedy)")
        throw ExitCode.failure
    }
}

/// The same for async command bodies.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as any ActionableError {
        Console.err("error: \(error.problem)\nhow to fix: \(error.remedy)")
        throw ExitCode.failure
    }
}
