import Config
import Foundation
import Support

/// The engine's morphemes stage (`python -m wanlora_engine morphemes`): Kiwi analyses a caption file
/// written by `Statistics.DistinctCaptions` into a result file and a vocabulary that
/// `Statistics.MorphemeTable.read` loads. Its events (docs/engine-contract.md) become progress here.
public struct MorphemeJob: Sendable {
    /// How captions are analysed: each distinct space-separated word on its own, or each caption whole.
    /// The registry's `analyze.morpheme_unit` choices.
    public typealias Unit = MorphemeUnit

    /// What the engine reported at the end.
    public struct Summary: Sendable, Equatable, Decodable {
        /// E.g. `Kiwi 0.24.1`.
        public var analyser: String
        public var captions: Int
        public var morphemes: Int
        public var contentWords: Int
        public var morphemeTypes: Int
        public var contentWordTypes: Int
        public var unit: String
        public var workers: Int
        public var modelLoadSeconds: Double
        public var seconds: Double
        /// The engine process's peak resident memory.
        public var peakRssBytes: Int
    }

    public var captionsPath: String
    public var resultPath: String
    public var vocabularyPath: String
    public var logPath: String
    public var unit: Unit
    /// Kiwi's threads (0: one per core).
    public var workers: Int

    public init(
        captionsPath: String, resultPath: String, vocabularyPath: String, logPath: String, unit: Unit,
        workers: Int
    ) {
        self.captionsPath = captionsPath
        self.resultPath = resultPath
        self.vocabularyPath = vocabularyPath
        self.logPath = logPath
        self.unit = unit
        self.workers = workers
    }

    /// The engine's command line.
    public func launch(engine: EngineInstallation) -> EngineLaunch {
        EngineLaunch(
            executable: engine.python,
            arguments: [
                "-m", "wanlora_engine", "morphemes", "--input", captionsPath, "--output", resultPath,
                "--vocabulary", vocabularyPath, "--unit", unit.rawValue, "--workers", String(workers),
            ], processes: 1)
    }

    private struct Event: Decodable {
        var event: String
        var done: Int?
        var total: Int?
        var problem: String?
        var remedy: String?
    }

    /// Runs the stage to its end; progress goes to `progress` as `stage` counts of captions.
    public func run(engine: EngineInstallation, progress: ProgressReporter, stage: String = "analyse morphemes (Kiwi)")
        throws(MorphemeJobError) -> Summary
    {
        let process = EngineProcess(
            launch: launch(engine: engine), logPath: logPath,
            grace: EngineProcess.Grace(afterInterrupt: { 5 }, afterTerminate: 5))
        let state = JobState()
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let termination: EngineProcess.Termination
        do {
            termination = try process.run(onLine: { line in
                let data = Data(line.utf8)
                guard let event = try? decoder.decode(Event.self, from: data) else { return }
                switch event.event {
                case "morpheme_progress":
                    progress.report(
                        ProgressEvent(
                            stage: stage, completed: event.done ?? 0, total: event.total,
                            unit: "captions"))
                case "morpheme_summary":
                    state.set(summary: try? decoder.decode(Summary.self, from: data))
                case "error":
                    state.set(
                        error: MorphemeJobError(
                            problem: event.problem ?? "the morpheme analysis failed",
                            remedy: event.remedy ?? "see \(logPath)"))
                default:
                    break
                }
            })
        } catch let error as RunError {
            throw MorphemeJobError(problem: error.problem, remedy: error.remedy)
        } catch {
            throw MorphemeJobError(
                problem: "Cannot run the engine's morpheme analysis: \(error).",
                remedy: "See the engine log \(logPath).")
        }
        if let error = state.error { throw error }
        guard termination == .exited(0), let summary = state.summary else {
            let tail = process.logTail.suffix(5).joined(separator: "\n  ")
            throw MorphemeJobError(
                problem: "The engine's morpheme analysis ended with \(termination) and no summary"
                    + (tail.isEmpty ? "." : ":\n  \(tail)"),
                remedy:
                    "See the engine log \(logPath); `make -C engine venv` installs Kiwi (kiwipiepy, kiwipiepy-model).")
        }
        return summary
    }

    private final class JobState: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var summary: Summary?
        private(set) var error: MorphemeJobError?
        func set(summary: Summary?) { lock.withLock { self.summary = summary } }
        func set(error: MorphemeJobError) { lock.withLock { self.error = error } }
    }
}

/// The morpheme analysis could not run or failed.
public struct MorphemeJobError: ActionableError, Equatable {
    public let problem: String
    public let remedy: String
    public init(problem: String, remedy: String) {
        self.problem = problem
        self.remedy = remedy
    }
}
