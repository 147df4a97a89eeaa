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
        let throttle = ProgressThrottle()
        return ProgressReporter { event in
            guard style != .none, throttle.shouldEmit(event, interval: style == .terminal ? 0.1 : 2) else { return }
            switch style {
            case .none: return
            case .json:
                var object: [String: Any] = ["event": "progress", "stage": event.stage, "completed": event.completed, "unit": event.unit]
                if let total = event.total { object["total"] = total }
                if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                    FileHandle.standardError.write(data + Data("\n".utf8))
                }
            case .terminal, .plain:
                var line = "\(event.stage): \(describe(event.completed, unit: event.unit))"
                if let total = event.total, total > 0 {
                    let done = event.unit == "bytes" ? describe(event.completed, unit: event.unit) : NumberFormat.grouped(event.completed)
                    line = "\(event.stage): \(done) of \(describe(total, unit: event.unit)) (\(NumberFormat.percent(Double(event.completed) / Double(total), 0)))"
                }
                if style == .terminal {
                    FileHandle.standardError.write(Data(("\r\u{1B}[K" + line + (event.completed == event.total ? "\n" : "")).utf8))
                } else {
                    err(line)
                }
            }
        }
    }

    static func describe(_ value: Int, unit: String) -> String {
        unit == "bytes" ? NumberFormat.decimal(Double(value) / 1_048_576, 1) + " MiB" : NumberFormat.grouped(value) + " " + unit
    }
}

enum ProgressStyle: String, CaseIterable {
    case terminal, plain, json, none

    static func automatic(quiet: Bool) -> ProgressStyle {
        quiet ? .none : (Console.stderrIsTerminal ? .terminal : .plain)
    }
}

/// Lets through the first and last event of a stage and at most one per interval in between.
final class ProgressThrottle: @unchecked Sendable {
    private let lock = NSLock()
    private var last: [String: Date] = [:]
    private var lastCompleted: [String: Int] = [:]

    func shouldEmit(_ event: ProgressEvent, interval: TimeInterval) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        let finished = event.total.map { event.completed >= $0 } ?? false
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

import ArgumentParser
