import Dispatch
import Foundation
import Runs
import Support

/// Renders engine events on the console. Events arrive on reader threads, messages about
/// signals on others: one lock keeps lines whole and the progress line redrawn last.
final class RunConsole: @unchecked Sendable {
    private let mode: ProgressStyle
    private let verbose: Bool
    private let lock = NSLock()
    /// The progress line being shown (terminal mode), so other lines can be printed above it.
    private var progressLine: String?
    private var lastDraw = Date.distantPast

    init(mode: ProgressStyle, verbose: Bool) {
        self.mode = mode.resolved
        self.verbose = verbose
    }

    var observer: StageObserver {
        var stderrLine: (@Sendable (String) -> Void)?
        if verbose {
            stderrLine = { [self] (line: String) -> Void in self.message("engine: " + line) }
        }
        return StageObserver(
            event: { [self] event, line in self.show(event, line: line) },
            strayLine: { [self] line in self.message("engine stdout (not an event): \(line)") },
            stderrLine: stderrLine,
            escalation: { [self] action in self.escalated(action) },
            warning: { [self] text in self.message("warning: " + text) }
        )
    }

    private func escalated(_ action: EngineProcess.StopAction) {
        switch action {
        case .terminate: message("the engine did not stop within the grace period: SIGTERM sent (stops at once)")
        case .kill: message("the engine still runs: SIGKILL sent to it and its workers")
        case .interrupt, .none: break
        }
    }

    func show(_ event: EngineEvent, line: String) {
        switch mode {
        case .json:
            lock.lock()
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
            lock.unlock()
        case .none:
            return
        case .plain:
            switch event.body {
            case .step(let s): write(EventText.progressLine(s) + "\n")
            case .progress(let p): write(EventText.progressLine(p) + "\n")
            default: if let text = EventText.line(event) { write(text + "\n") }
            }
        case .terminal, .auto:
            switch event.body {
            case .step(let s): redraw(EventText.progressLine(s), force: true)
            case .progress(let p): redraw(EventText.progressLine(p), force: p.done == p.total)
            case .runFinished:
                // The last progress line stays where it is; the summary goes below it.
                finish()
                if let text = EventText.line(event) { message(text) }
            default: if let text = EventText.line(event) { message(text) }
            }
        }
    }

    /// A line of its own on stderr (above the progress line on a terminal).
    func message(_ text: String) {
        guard mode != .none || text.hasPrefix("the engine") else { return }
        write(text + "\n")
    }

    /// Ends the progress line so that what follows starts on a new line.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if let line = progressLine {
            // Show the newest state (a throttled redraw may have skipped it), then end the line.
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + fit(line) + "\n").utf8))
            progressLine = nil
        }
    }

    private func write(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        if mode == .terminal, let current = progressLine {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + text + fit(current)).utf8))
        } else {
            FileHandle.standardError.write(Data(text.utf8))
        }
    }

    private func redraw(_ line: String, force: Bool) {
        lock.lock()
        defer { lock.unlock() }
        progressLine = line
        // At most ten redraws a second; a finished split or a step always shows.
        guard force || Date().timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = Date()
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + fit(line)).utf8))
    }

    /// A line no wider than the terminal, so that redrawing it in place never wraps.
    private func fit(_ line: String) -> String {
        var size = winsize()
        let columns = ioctl(2, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : 200
        return line.count < columns ? line : String(line.prefix(max(columns - 2, 10))) + "…"
    }
}
