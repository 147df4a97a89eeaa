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
        return try EngineInstallation.locate(
            explicit: explicit, environment: ProcessInfo.processInfo.environment,
            searchFrom: searchFrom)
    }
}

/// Ctrl-C and SIGTERM while an engine runs (train, cache, sample, evaluate): each one is one step of the
/// engine's teardown (SIGINT: stop after the current step or video, keeping what is finished; SIGTERM: stop
/// at once; SIGKILL). wanlora itself ignores them meanwhile, so it stays to report how the engine ended.
final class StopForwarding {
    private var sources: [DispatchSourceSignal] = []

    /// `requestStop` takes the next teardown step; `announce` tells the user which one was taken.
    init(
        requestStop: @escaping @Sendable () -> EngineProcess.StopAction,
        announce: @escaping @Sendable (EngineProcess.StopAction) -> Void
    ) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { announce(requestStop()) }
            source.resume()
            sources.append(source)
        }
    }

    /// For sample and evaluate: the first Ctrl-C says what stays on disk (`kept`).
    convenience init(stage: EngineStage, kept: String) {
        self.init(
            requestStop: { stage.requestStop() },
            announce: { action in
                if action == .interrupt { Console.err("stopping: \(kept) (Ctrl-C again: SIGTERM, then SIGKILL)") }
            })
    }

    /// Restores the default handling of the signals.
    func end() {
        for source in sources { source.cancel() }
        sources.removeAll()
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
