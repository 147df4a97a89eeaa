import Foundation

/// One JSON-lines event of the engine's `sample` stage, decoded (docs/engine-contract.md §3, §7).
/// Unknown event types and fields are kept apart, never an error: the engine may add some.
public enum SampleEngineEvent: Sendable, Equatable {
    case started(device: String, deviceName: String)
    case plan(Plan)
    case progress(phase: String, done: Int, total: Int)
    case step(Step)
    case video(Video)
    case warning(code: String, message: String)
    case error(code: String, problem: String, remedy: String)
    case finished(status: String, seconds: Double, videosNew: Int?, videosExisting: Int?)
    case other(String)

    public struct Plan: Sendable, Equatable, Decodable {
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

    public struct Step: Sendable, Equatable, Decodable {
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

    public struct Video: Sendable, Equatable, Decodable {
        public var video: Int
        public var videos: Int
        public var id: String
        public var category: String?
        public var path: String
        public var seconds: Double
        public var seed: Int
        public var existing: Bool
    }

    private struct Envelope: Decodable {
        var event: String
    }

    private struct Fields: Decodable {
        var device: String?
        var deviceName: String?
        var phase: String?
        var done: Int?
        var total: Int?
        var code: String?
        var message: String?
        var problem: String?
        var remedy: String?
        var status: String?
        var seconds: Double?
        var summary: Summary?

        struct Summary: Decodable {
            var videosNew: Int?
            var videosExisting: Int?
        }
    }

    /// Decodes one line of the engine's stdout; nil for a line that is not a JSON event.
    public static func decode(_ line: String) -> SampleEngineEvent? {
        let data = Data(line.utf8)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard let envelope = try? decoder.decode(Envelope.self, from: data) else { return nil }
        do {
            switch envelope.event {
            case "sample_plan": return .plan(try decoder.decode(Plan.self, from: data))
            case "sample_step": return .step(try decoder.decode(Step.self, from: data))
            case "sample_video": return .video(try decoder.decode(Video.self, from: data))
            default: break
            }
            let f = try decoder.decode(Fields.self, from: data)
            switch envelope.event {
            case "run_started": return .started(device: f.device ?? "?", deviceName: f.deviceName ?? "?")
            case "progress": return .progress(phase: f.phase ?? "", done: f.done ?? 0, total: f.total ?? 0)
            case "warning": return .warning(code: f.code ?? "", message: f.message ?? "")
            case "error": return .error(code: f.code ?? "", problem: f.problem ?? "", remedy: f.remedy ?? "")
            case "run_finished":
                return .finished(status: f.status ?? "", seconds: f.seconds ?? 0, videosNew: f.summary?.videosNew,
                                 videosExisting: f.summary?.videosExisting)
            default: return .other(envelope.event)
            }
        } catch {
            return .other(envelope.event)
        }
    }
}
