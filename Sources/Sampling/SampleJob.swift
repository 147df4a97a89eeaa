import Config
import Foundation
import Planner
import Support

/// The engine's sample job (`sample-job.json`): everything the `sample` stage needs, every key
/// present (docs/engine-contract.md §7). Swift writes it; `python -m wanlora_engine sample` reads it.
public struct SampleJob: Sendable, Equatable, Codable {
    public static let currentSchemaVersion = 2

    public var schemaVersion: Int
    public var kind: String
    /// "auto", "cpu" or "cuda".
    public var device: String
    public var model: Model
    public var sampler: Sampler
    public var video: Video
    public var loras: LoRAs
    public var memory: Memory
    public var output: Output
    public var prompts: [Prompt]

    public struct Model: Sendable, Equatable, Codable {
        /// An absolute folder, or a Hugging Face repo id the engine finds in the local hub cache.
        public var path: String
        public var layout: String
        /// Weights on the GPU: "bfloat16" (a CPU run uses float32 whatever this says).
        public var dtype: String
        public var boundary: Double
        public var numTrainTimesteps: Int
        /// Single-file expert checkpoints (absolute) that replace the folder's experts; nil: none.
        @ExplicitNull public var highNoiseFile: String?
        @ExplicitNull public var lowNoiseFile: String?
    }

    public struct Sampler: Sendable, Equatable, Codable {
        public var solver: String
        public var schedule: String
        public var steps: Int
        public var shift: Double
        public var guidanceHigh: Double
        public var guidanceLow: Double
        public var negativePrompt: String
        /// UMT5 tokens of a prompt (the model reads at most 512).
        public var textLength: Int
        /// The fast blocks' attention kernel (`sample.attention`: auto, cudnn, fa3, flash, efficient, math).
        public var attention: String
    }

    public struct Video: Sendable, Equatable, Codable {
        public var width: Int
        public var height: Int
        public var frames: Int
        public var fps: Int
        /// x264 constant rate factor (18: visually lossless).
        public var crf: Int
    }

    public struct LoRA: Sendable, Equatable, Codable {
        public var path: String
        public var scale: Double
    }

    public struct LoRAs: Sendable, Equatable, Codable {
        @ExplicitNull public var high: LoRA?
        @ExplicitNull public var low: LoRA?
    }

    public struct Candidate: Sendable, Equatable, Codable {
        public var inactiveExpert: String
        public var vaeTiling: Bool
        public var peakBytes: Int
        public var items: [Item]

        /// The items of the phase that makes the peak, largest first.
        public var peakItems: [Item] {
            let phases = Dictionary(grouping: items, by: \.phase)
            let peak = phases.max { $0.value.map(\.bytes).reduce(0, +) < $1.value.map(\.bytes).reduce(0, +) }
            return (peak?.value ?? []).sorted { $0.bytes > $1.bytes }
        }
    }

    public struct Item: Sendable, Equatable, Codable {
        public var name: String
        public var phase: String
        public var bytes: Int
        public var basis: String
    }

    public struct Alternative: Sendable, Equatable, Codable {
        public var label: String
        public var peakBytes: Int
    }

    public struct Memory: Sendable, Equatable, Codable {
        /// "gpu": UMT5 encodes on the GPU before the experts arrive; "cpu": it never uses the GPU.
        public var textEncoderDevice: String
        /// The catalog GPU the candidates were planned for (`hardware.gpu`).
        @ExplicitNull public var planGpu: String?
        /// Bytes of the card kept free for the CUDA context and fragmentation.
        public var reservedBytes: Int
        /// Placements in order of preference; the engine takes the first that fits the real card.
        public var candidates: [Candidate]
        public var alternatives: [Alternative]
    }

    public struct Output: Sendable, Equatable, Codable {
        public var dir: String
        /// Replace videos of the folder whose settings differ (else the engine refuses).
        public var overwrite: Bool
    }

    public struct Prompt: Sendable, Equatable, Codable {
        /// Names the files: videos/ID.mp4, ID.jpg, ID.json.
        public var id: String
        public var prompt: String
        @ExplicitNull public var category: String?
        public var seed: Int
    }

    /// The file as the engine reads it (`JobJSON`: sorted snake_case keys, every key present).
    public func jsonData() throws -> Data { try JobJSON.data(self) }

    public static func decode(_ data: Data) throws -> SampleJob { try JobJSON.decode(SampleJob.self, from: data) }

    /// The placement the engine will take on a card with `usableBytes` free (total − reserved):
    /// the first candidate whose planned peak fits, or nil when none does.
    public func placement(fitting usableBytes: Int) -> Candidate? {
        memory.candidates.first { $0.peakBytes <= usableBytes }
    }

    /// Steps of each expert for this job's schedule (the same rule as the engine's solvers.py).
    public var stepsPerExpert: (high: Int, low: Int) {
        let schedule = SampleSchedule(rawValue: sampler.schedule) ?? .wan
        let timesteps = FlowSchedule.timesteps(
            schedule, steps: sampler.steps, shift: sampler.shift, trainTimesteps: model.numTrainTimesteps)
        let high = timesteps.filter { $0 >= model.boundary * Double(model.numTrainTimesteps) }.count
        return (high, timesteps.count - high)
    }
}

/// The timesteps of the sampling schedules, as the engine computes them (engine/wanlora_engine/solvers.py),
/// so the CLI can say which steps each expert takes before anything runs.
public enum FlowSchedule {
    public static func shifted(_ u: Double, _ shift: Double) -> Double { shift * u / (1 + (shift - 1) * u) }

    public static func timesteps(_ schedule: SampleSchedule, steps: Int, shift: Double, trainTimesteps t: Int)
        -> [Double]
    {
        let total = Double(t)
        func linspace(_ a: Double, _ b: Double, _ n: Int) -> [Double] {
            n == 1 ? [a] : (0..<n).map { a + (b - a) * Double($0) / Double(n - 1) }
        }
        switch schedule {
        case .wan:
            let start = Double(Float(1 - 1 / total))
            return linspace(start, 0, steps + 1).dropLast().map { (shifted($0, shift) * total).rounded(.towardZero) }
        case .diffusersUnipc:
            var sigmas = linspace(1, 1 / total, steps + 1).dropLast().map { shifted($0, shift) }
            if abs(sigmas[0] - 1) < 1e-6 { sigmas[0] -= 1e-6 }
            return sigmas.map { ($0 * total).rounded(.towardZero) }
        case .diffusersEuler:
            let sigmaMin = Double(Float(shift) * Float(1 / total) / (1 + (Float(shift) - 1) * Float(1 / total)))
            return linspace(total, sigmaMin * total, steps).map {
                Double(Float(shifted($0 / total, shift)) * Float(total))
            }
        }
    }
}
