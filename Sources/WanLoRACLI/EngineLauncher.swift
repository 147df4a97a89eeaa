import Dispatch
import Foundation
import Runs

/// Where the engine's Python is, for every command that starts it: `--engine-python`, then
/// $WANLORA_ENGINE_PYTHON, then `engine/.venv/bin/python` above the running binary or the working
/// folder (`Runs.EngineInstallation.locate`).
enum EngineLocator {
    static func installation(explicit: String?) throws -> EngineInstallation {
        var searchFrom: [String] = []
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            searchFrom.append((executable as NSString).deletingLastPathComponent)
        } else if let executable = Bundle.main.executablePath {
            searchFrom.append((executable as NSString).deletingLastPathComponent)
        }
        searchFrom.append(FileManager.default.currentDirectoryPath)
        return try EngineInstallation.locate(explicit: explicit, environment: ProcessInfo.processInfo.environment,
                                             searchFrom: searchFrom)
    }
}

/// Ctrl-C and SIGTERM while an engine stage runs (sample, evaluate): each is one step of the engine's
/// teardown (SIGINT: stop, keeping what is finished; then SIGTERM; then SIGKILL). wanlora ignores them
/// meanwhile, so it stays to say how the engine ended.
final class EngineStopForwarding {
    private var sources: [DispatchSourceSignal] = []

    /// `kept`: what the first Ctrl-C leaves on disk, for the message.
    init(process: EngineProcess, kept: String) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if process.requestStop() == .interrupt {
                    Console.err("stopping: \(kept) (Ctrl-C again: SIGTERM, then SIGKILL)")
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    func end() {
        for source in sources { source.cancel() }
        sources.removeAll()
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
