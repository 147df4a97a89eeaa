import Foundation

/// One JSON-lines event of the engine (docs/engine-contract.md §3), of every stage: cache, train,
/// sample and evaluate decode through this one type.
///
/// Decoding follows the contract: unknown fields are ignored, an unknown event type decodes as
/// `.other` (a newer engine may add types), and numbers the engine could not write (NaN,
/// infinity) arrive as null, so every float that a diverging run can produce is optional.
public struct EngineEvent: Sendable, Equatable {
    /// The `event` field.
    public var type: String
    public var schemaVersion: Int
    /// UTC, ISO 8601 with milliseconds.
    public var time: String
    /// Seconds since the engine process started the stage.
    public var elapsedSeconds: Double
    public var body: Body

    public enum Body: Sendable, Equatable {
        case runStarted(RunStarted)
        case cachePlan(CachePlan)
        case progress(Progress)
        case trainPlan(TrainPlan)
        case step(Step)
        case eval(Eval)
        case checkpoint(Checkpoint)
        /// Training stopped on a signal (Ctrl-C, a scheduler's SIGTERM or SIGUSR1) after a step.
        case stopped(Stopped)
        /// A non-finite loss answered by skipping the step or rolling back (training.on_nonfinite).
        case nonFinite(NonFinite)
        case warning(Warning)
        case error(ErrorReport)
        case runFinished(RunFinished)
        case samplePlan(SamplePlan)
        case sampleStep(SampleStep)
        case sampleVideo(SampleVideo)
        case evaluatePlan(EvaluatePlan)
        case evaluateProgress(EvaluateProgress)
        /// A type this wanlora does not know (decoders ignore it).
        case other
    }

    public enum Stage: String, Sendable, Codable, Equatable {
        case cache, train, sample, evaluate
    }

    public struct RunStarted: Sendable, Equatable, Decodable {
        public var stage: Stage
        public var runName: String
        public var engineVersion: String
        public var torchVersion: String
        public var diffusersVersion: String
        public var device: String
        public var deviceName: String
        public var worldSize: Int
        public var configPath: String
        public var resumedFromStep: Int?
    }

    public struct CachePlan: Sendable, Equatable, Decodable {
        public var splits: [String: Int]
        public var items: Int
        public var itemsCached: Int
        public var estimatedBytes: Int
        public var freeBytes: Int
        public var cacheDir: String
    }

    public struct Progress: Sendable, Equatable, Decodable {
        public var stage: Stage
        /// `latents:<split>` while encoding, `done:<split>` when a split is finished.
        public var phase: String
        public var done: Int
        public var total: Int
        public var itemsPerSecond: Double?
    }

    public struct TrainPlan: Sendable, Equatable, Decodable {
        public var experts: [String]
        public var trainableParameters: [String: Int]
        public var trainSamples: Int
        public var valSamples: Int
        public var totalSteps: Int
        public var samplesPerStep: Int
        public var epochs: Double
        public var optimizer: String
        public var mixedPrecision: String
        public var gradientCheckpointing: Bool
        public var overfitSamples: Int?
    }

    public struct Step: Sendable, Equatable, Decodable {
        public var step: Int
        public var totalSteps: Int
        public var epoch: Double
        public var loss: Double?
        public var lossHigh: Double?
        public var lossLow: Double?
        public var samplesHigh: Int
        public var samplesLow: Int
        public var lr: Double
        public var gradNorm: Double?
        public var secondsPerStep: Double
        public var samplesPerSecond: Double
        public var gpuMemoryAllocatedBytes: Int?
        public var gpuMemoryPeakBytes: Int?
        public var hostMemoryPeakBytes: Int
        public var etaSeconds: Double
    }

    public struct Eval: Sendable, Equatable, Decodable {
        public var step: Int
        public var split: String
        public var samples: Int
        public var valLoss: Double?
        public var valLossHigh: Double?
        public var valLossLow: Double?
        public var lossesByTimestep: [String: Double?]
    }

    public struct Checkpoint: Sendable, Equatable, Decodable {
        public var step: Int
        public var path: String
        public var bytes: Int
        public var removed: [String]
    }

    public struct Stopped: Sendable, Equatable, Decodable {
        /// `interrupted` (SIGINT: Ctrl-C) or `preempted` (SIGTERM, SIGUSR1: a scheduler, torchrun).
        public var reason: String
        public var signal: String?
        public var step: Int
        /// Whether the stopped step's checkpoint was written (false: it would not fit in the grace,
        /// or the step was saved already; `checkpoint` is the newest whole one either way).
        public var saved: Bool
        public var checkpoint: String?
    }

    public struct NonFinite: Sendable, Equatable {
        /// `skipped` or `rollback`.
        public var action: String
        public var step: Int
        public var problem: String
    }

    public struct Warning: Sendable, Equatable, Decodable {
        public var code: String
        public var message: String
    }

    public struct ErrorReport: Sendable, Equatable, Decodable {
        public var code: String
        public var problem: String
        public var remedy: String
        public var step: Int?
        public var lastCheckpoint: String?
        public var traceback: [String]?
    }

    public struct RunFinished: Sendable, Equatable, Decodable {
        public var stage: Stage
        public var status: Status
        public var step: Int?
        public var seconds: Double
        /// The outputs that are one path each (sample's list of `videos` is left out: its sidecars list them).
        public var outputs: [String: String]
        public var summary: Summary

        private enum CodingKeys: String, CodingKey {
            case stage, status, step, seconds, outputs, summary
        }

        /// One value of `outputs`: a path, or something else (nil).
        private struct OutputPath: Decodable {
            var path: String?
            init(from decoder: any Decoder) throws {
                path = try? decoder.singleValueContainer().decode(String.self)
            }
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            stage = try container.decode(Stage.self, forKey: .stage)
            status = try container.decode(Status.self, forKey: .status)
            step = try container.decodeIfPresent(Int.self, forKey: .step)
            seconds = try container.decode(Double.self, forKey: .seconds)
            // A dictionary keeps the engine's names (`high_noise_comfyui`): no snake-case conversion.
            outputs = try container.decode([String: OutputPath].self, forKey: .outputs).compactMapValues(\.path)
            summary = try container.decode(Summary.self, forKey: .summary)
        }

        public enum Status: String, Sendable, Equatable, Decodable {
            case completed, interrupted, diverged, failed
        }

        /// The fields of `summary` that wanlora shows (train and cache summaries share one type;
        /// a field the stage does not write is nil).
        public struct Summary: Sendable, Equatable, Decodable {
            public var stepsDone: Int?
            public var totalSteps: Int?
            public var samplesSeen: Int?
            public var gpuMemoryPeakBytes: Int?
            public var hostMemoryPeakBytes: Int?
            public var finalValLoss: Double?
            public var overfit: Overfit?
            public var itemsNew: Int?
            public var itemsSkippedNew: Int?
            public var truncatedCaptionsNew: Int?
            public var bytesWritten: Int?
            public var cacheBytes: Int?
            public var textLength: Int?
            public var videosNew: Int?
            public var videosExisting: Int?
        }

        public struct Overfit: Sendable, Equatable, Decodable {
            public var samples: Int
            public var evalLossStart: Double?
            public var evalLossEnd: Double?
            public var trainLossFirst: Double?
            public var trainLossLast: Double?
            public var lossFell: Bool
        }
    }
}

extension EngineEvent {
    /// `sample_plan`: the placement the sample stage took, before any model is loaded.
    public struct SamplePlan: Sendable, Equatable, Decodable {
        public var videos: Int
        public var videosExisting: Int
        public var steps: Int
        public var stepsHigh: Int
        public var stepsLow: Int
        public var solver: String
        public var scheduleKind: String
        public var inactiveExpert: String
        public var vaeTiling: Bool
        public var plannedPeakBytes: Int?
        public var deviceTotalBytes: Int?
    }

    /// `sample_step`: one denoising step of one video.
    public struct SampleStep: Sendable, Equatable, Decodable {
        public var video: Int
        public var videos: Int
        public var id: String
        public var step: Int
        public var steps: Int
        public var timestep: Double
        public var expert: String
        public var guidance: Double
        public var seconds: Double
        public var secondsPerStep: Double
        public var etaSeconds: Double
    }

    /// `sample_video`: a video was written (or was already there with the same settings).
    public struct SampleVideo: Sendable, Equatable, Decodable {
        public var video: Int
        public var videos: Int
        public var id: String
        public var category: String?
        public var path: String
        public var seconds: Double
        public var seed: Int
        public var existing: Bool
    }

    /// `evaluate_plan`: the inputs the evaluate stage found, before the networks load.
    public struct EvaluatePlan: Sendable, Equatable, Decodable {
        public var metrics: [String]
        public var generatedVideos: Int
        public var referenceVideos: Int
        public var referenceRows: Int
        /// Category → generated and reference videos.
        public var categories: [String: CategoryCounts]

        public struct CategoryCounts: Sendable, Equatable, Decodable {
            public var generated: Int
            public var reference: Int
        }
    }

    /// `evaluate_progress`: videos whose features are done.
    public struct EvaluateProgress: Sendable, Equatable, Decodable {
        /// `generated`, `reference`, or `metrics` at the end.
        public var phase: String
        public var done: Int
        public var total: Int
        public var videosPerSecond: Double?
    }
}

/// A line of the engine's stdout that is not an event of the contract.
public struct EventDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: String
    public var reason: String
    public var description: String { "not an engine event (\(reason)): \(line.prefix(200))" }
}

extension EngineEvent {
    private struct Header: Decodable {
        var event: String
        var schemaVersion: Int
        var time: String
        var elapsedS: Double
    }

    /// Decodes one line of the engine's stdout or events file.
    public init(line: String) throws(EventDecodingError) {
        let data = Data(line.utf8)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            let header = try decoder.decode(Header.self, from: data)
            type = header.event
            schemaVersion = header.schemaVersion
            time = header.time
            elapsedSeconds = header.elapsedS
            func decode<T: Decodable>(_: T.Type) throws -> T { try decoder.decode(T.self, from: data) }
            switch header.event {
            case "run_started": body = .runStarted(try decode(RunStarted.self))
            case "cache_plan": body = .cachePlan(try decode(CachePlan.self))
            case "progress": body = .progress(try decode(Progress.self))
            case "train_plan": body = .trainPlan(try decode(TrainPlan.self))
            case "step": body = .step(try decode(Step.self))
            case "eval": body = .eval(try decode(Eval.self))
            case "checkpoint": body = .checkpoint(try decode(Checkpoint.self))
            case "stopped": body = .stopped(try decode(Stopped.self))
            case "nonfinite_skipped", "nonfinite_rollback":
                struct Fields: Decodable {
                    var step: Int
                    var problem: String
                }
                let fields = try decode(Fields.self)
                body = .nonFinite(
                    NonFinite(
                        action: header.event == "nonfinite_skipped" ? "skipped" : "rollback",
                        step: fields.step, problem: fields.problem))
            case "warning": body = .warning(try decode(Warning.self))
            case "error": body = .error(try decode(ErrorReport.self))
            case "run_finished": body = .runFinished(try decode(RunFinished.self))
            case "sample_plan": body = .samplePlan(try decode(SamplePlan.self))
            case "sample_step": body = .sampleStep(try decode(SampleStep.self))
            case "sample_video": body = .sampleVideo(try decode(SampleVideo.self))
            case "evaluate_plan": body = .evaluatePlan(try decode(EvaluatePlan.self))
            case "evaluate_progress": body = .evaluateProgress(try decode(EvaluateProgress.self))
            default: body = .other
            }
        } catch let error as DecodingError {
            throw EventDecodingError(line: line, reason: Self.describe(error))
        } catch {
            throw EventDecodingError(line: line, reason: "\(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let prefix = path(context)
            return "missing field \(prefix.isEmpty ? key.stringValue : prefix + "." + key.stringValue)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "field \(path(context)) has the wrong type"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not JSON" : "field \(path(context)) is invalid"
        @unknown default:
            return "\(error)"
        }
    }
}
