import ArgumentParser
import Dispatch
import Foundation

/// Ctrl-C handling for long commands: the first SIGINT (or SIGTERM) cancels the work, which stops
/// its child processes (SIGTERM, then SIGKILL) and lets it record where it stopped; a second one
/// exits at once with status 130.
enum Interrupts {
    static func cancellingOnSignals<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await body() }
        let counter = SignalCounter()
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                if counter.increment() == 1 {
                    Console.err(
                        "\nstopping: waiting for running ffmpeg processes to end (Ctrl-C again to quit at once)")
                    task.cancel()
                } else {
                    exit(130)
                }
            }
            source.resume()
            sources.append(source)
        }
        defer {
            for source in sources { source.cancel() }
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
        }
        do {
            return try await task.value
        } catch is CancellationError {
            // Stopped before the work could record anything worth resuming from.
            Console.err("stopped before anything was written; run the same command again to start over")
            throw ExitCode(130)
        }
    }
}

final class SignalCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    func increment() -> Int {
        lock.lock()
        defer { lock.unlock() }
        count += 1
        return count
    }
}
