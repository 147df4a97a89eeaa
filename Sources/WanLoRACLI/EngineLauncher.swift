import Foundation
import Support

// NOTE(lead): a small stand-in for the `Runs` library (branch `runs`), which launches the engine
// and renders its events for `cache` and `train`. When `Runs` is on main, `wanlora sample` should
// use its launcher (engine discovery, teardown, stderr tail) and this file can go.

/// Starts `python -m wanlora_engine …` and hands each line of its stdout (the JSON events) to a
/// callback; keeps the last lines of its stderr (the human log) for error messages.
struct EngineLauncher {
    /// The Python interpreter that has the engine installed (engine/.venv/bin/python).
    var python: String
    /// The engine's source folder, put on PYTHONPATH (nil: the interpreter has it installed).
    var engineDir: String?

    /// `--engine-python`, then $WANLORA_ENGINE_PYTHON, then engine/.venv/bin/python next to the
    /// binary's checkout or the current folder.
    static func locate(explicit: String?) throws -> EngineLauncher {
        if let explicit = explicit ?? ProcessInfo.processInfo.environment["WANLORA_ENGINE_PYTHON"], !explicit.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: explicit) else {
                throw GeneralError("The engine's Python \(explicit) is not an executable file.",
                                   remedy: "Pass the python of the engine's venv, e.g. --engine-python engine/.venv/bin/python.")
            }
            return EngineLauncher(python: explicit, engineDir: nil)
        }
        var starts = [FileManager.default.currentDirectoryPath]
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        starts.append(executable.deletingLastPathComponent().path)
        for start in starts {
            var folder = URL(fileURLWithPath: start)
            while true {
                let engine = folder.appendingPathComponent("engine")
                let python = engine.appendingPathComponent(".venv/bin/python").path
                if FileManager.default.isExecutableFile(atPath: python),
                   FileManager.default.fileExists(atPath: engine.appendingPathComponent("wanlora_engine").path) {
                    return EngineLauncher(python: python, engineDir: engine.path)
                }
                let parent = folder.deletingLastPathComponent()
                if parent.path == folder.path { break }
                folder = parent
            }
        }
        throw GeneralError("The engine's Python environment (engine/.venv) was not found next to this wanlora or the current folder.",
                           remedy: "Create it with `make -C engine venv` in the wanlora checkout, or pass --engine-python PATH (or set WANLORA_ENGINE_PYTHON).")
    }

    /// Runs the engine to its end; `onLine` sees every stdout line as it comes. SIGINT and SIGTERM
    /// of wanlora are passed on as SIGTERM, so the engine stops cleanly (it keeps finished work).
    func run(_ arguments: [String], onLine: (String) -> Void) throws -> (status: Int32, stderrTail: [String]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-m", "wanlora_engine"] + arguments
        var environment = ProcessInfo.processInfo.environment
        if let engineDir {
            environment["PYTHONPATH"] = [engineDir, environment["PYTHONPATH"]].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ":")
        }
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do {
            try process.run()
        } catch {
            throw GeneralError("Could not start the engine (\(python)): \(error.localizedDescription).",
                               remedy: "Recreate the venv with `make -C engine venv`.")
        }

        let forward = SignalForwarder(pid: process.processIdentifier)
        defer { forward.stop() }
        let tail = LineTail(keep: 40)
        let stderrDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let handle = err.fileHandleForReading
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                tail.append(chunk)
            }
            stderrDone.signal()
        }

        var buffer = Data()
        let handle = out.fileHandleForReading
        while true {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                if !line.isEmpty { onLine(line) }
            }
        }
        if !buffer.isEmpty { onLine(String(decoding: buffer, as: UTF8.self)) }
        process.waitUntilExit()
        stderrDone.wait()
        return (process.terminationStatus, tail.lines)
    }
}

/// The last lines of a byte stream.
final class LineTail: @unchecked Sendable {
    private let lock = NSLock()
    private var pending = Data()
    private var kept: [String] = []
    private let keep: Int

    init(keep: Int) { self.keep = keep }

    func append(_ data: Data) {
        lock.lock()
        defer { lock.unlock() }
        pending.append(data)
        while let newline = pending.firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) {
            let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
            pending.removeSubrange(pending.startIndex...newline)
            if !line.trimmingCharacters(in: .whitespaces).isEmpty { kept.append(line) }
            if kept.count > keep { kept.removeFirst(kept.count - keep) }
        }
    }

    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return kept + (pending.isEmpty ? [] : [String(decoding: pending, as: UTF8.self)])
    }
}

/// While alive, SIGTERM sent to wanlora reaches the child as SIGTERM, and so does SIGINT when
/// wanlora has no terminal (on a terminal, Ctrl-C reaches the child directly: its process group).
final class SignalForwarder: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []

    init(pid: Int32) {
        let terminal = isatty(0) == 1
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                if signalNumber == SIGTERM || !terminal { kill(pid, SIGTERM) }
            }
            source.resume()
            sources.append(source)
        }
    }

    func stop() {
        for source in sources { source.cancel() }
        sources.removeAll()
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
