import Config
import Foundation
import Planner
import Support

/// What `wanlora sample` asks for, beyond the configuration's `[sample]` section.
public struct SampleRequest: Sendable {
    public var config: WanLoRAConfig
    /// Folder that the configuration's relative paths are relative to (absolute).
    public var baseDir: String
    /// Output folder (absolute): sample-job.json, videos/, index.html.
    public var outputDir: String
    public var prompts: [SamplePrompt]
    /// LoRA files (absolute paths) and their scales; nil: that expert runs without one.
    public var loraHigh: (path: String, scale: Double)?
    public var loraLow: (path: String, scale: Double)?
    /// "auto", "cpu" or "cuda".
    public var device: String
    /// nil: the engine picks the fastest placement that fits the card.
    public var inactiveExpert: InactiveExpertPlacement?
    public var vaeTiling: Bool?
    public var textEncoderOnGPU: Bool
    public var overwrite: Bool
    public var crf: Int
    /// The Hugging Face hub cache in which model.checkpoint may name a repo (Support's `ModelSource`).
    public var hubCache: String = ModelSource.hubCache()

    public init(
        config: WanLoRAConfig, baseDir: String, outputDir: String, prompts: [SamplePrompt],
        loraHigh: (path: String, scale: Double)? = nil, loraLow: (path: String, scale: Double)? = nil,
        device: String = "auto", inactiveExpert: InactiveExpertPlacement? = nil, vaeTiling: Bool? = nil,
        textEncoderOnGPU: Bool = true, overwrite: Bool = false, crf: Int = 18
    ) {
        self.config = config
        self.baseDir = baseDir
        self.outputDir = outputDir
        self.prompts = prompts
        self.loraHigh = loraHigh
        self.loraLow = loraLow
        self.device = device
        self.inactiveExpert = inactiveExpert
        self.vaeTiling = vaeTiling
        self.textEncoderOnGPU = textEncoderOnGPU
        self.overwrite = overwrite
        self.crf = crf
    }
}

/// A request that cannot become a job.
public struct SampleJobError: ActionableError, Equatable {
    public let problem: String
    public let remedy: String
}

public enum SampleJobBuilder {
    /// The job for `request`, with the planner's memory candidates for `hardware.gpu`.
    public static func build(_ request: SampleRequest) throws(SampleJobError) -> SampleJob {
        let config = request.config
        guard config.model.architecture == .wan22T2VA14B else {
            throw SampleJobError(
                problem: "wanlora sample generates with Wan2.2-T2V-A14B (two experts); "
                    + "the configuration names \(config.model.architecture.rawValue).",
                remedy: "Set model.architecture = \"Wan2.2-T2V-A14B\".")
        }
        guard !config.model.checkpoint.isEmpty else {
            throw SampleJobError(
                problem: "No model folder: model.checkpoint is empty.",
                remedy: "Set model.checkpoint in the configuration, or pass --model DIR "
                    + "(the Wan2.2-T2V-A14B folder, official or diffusers layout, or a Hugging Face repo id "
                    + "such as Wan-AI/Wan2.2-T2V-A14B-Diffusers in the local hub cache).")
        }
        guard !request.prompts.isEmpty else {
            throw SampleJobError(
                problem: "No prompt to sample.", remedy: "Pass --prompt TEXT, --prompts FILE or --val-prompts N.")
        }
        let architecture = Architecture.wan22T2VA14B
        let sample = config.sample
        func expertFile(_ path: String) -> String? {
            path.isEmpty ? nil : PathMath.absolute(path, base: request.baseDir)
        }
        let geometry: ClipGeometry
        do {
            geometry = try ClipGeometry(
                frames: sample.frames, width: sample.width, height: sample.height, architecture: architecture)
        } catch let error as PlanError {
            throw SampleJobError(problem: error.problem, remedy: error.remedy)
        } catch {
            throw SampleJobError(problem: "\(error)", remedy: "Check sample.frames and sample.resolution.")
        }
        let textLength = architecture.textEncoder.maxTokens

        // Ids name the files: the file's own where it gave one, else the position.
        let digits = max(4, String(request.prompts.count).count)
        var ids: [String: String] = [:]
        var prompts: [SampleJob.Prompt] = []
        for (index, prompt) in request.prompts.enumerated() {
            let id =
                prompt.id ?? String(repeating: "0", count: max(0, digits - String(index + 1).count)) + String(index + 1)
            guard id.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", options: .regularExpression) != nil else {
                throw SampleJobError(
                    problem: "\(prompt.origin): the id \"\(id)\" cannot name a file.",
                    remedy: "Use 1–64 letters, digits, '.', '_' or '-' (starting "
                        + "with a letter or digit), or leave the id empty.")
            }
            if let first = ids[id] {
                throw SampleJobError(
                    problem: "\(prompt.origin) repeats the id \"\(id)\" of \(first).",
                    remedy: "Give every prompt its own id.")
            }
            ids[id] = prompt.origin
            prompts.append(
                SampleJob.Prompt(
                    id: id, prompt: prompt.text, category: prompt.category,
                    seed: prompt.seed ?? (sample.seed + index)))
        }

        let plans = SampleMemoryModel.candidates(
            architecture: architecture, geometry: geometry, textLength: textLength,
            inactiveExpert: request.inactiveExpert, vaeTiling: request.vaeTiling,
            textEncoderOnGPU: request.textEncoderOnGPU)
        let candidates = plans.map { plan in
            SampleJob.Candidate(
                inactiveExpert: plan.inactiveExpert.rawValue, vaeTiling: plan.vaeTiling, peakBytes: plan.peakBytes,
                items: plan.items.map {
                    SampleJob.Item(name: $0.name, phase: $0.phase.rawValue, bytes: $0.bytes, basis: $0.basis)
                })
        }
        let alternatives = SampleMemoryModel.alternatives(
            architecture: architecture, current: geometry, textLength: textLength
        )
        .map { SampleJob.Alternative(label: $0.label, peakBytes: $0.peakBytes) }

        return SampleJob(
            schemaVersion: SampleJob.currentSchemaVersion, kind: "sample", device: request.device,
            model: .init(
                path: ModelSource.anchored(config.model.checkpoint, base: request.baseDir, hubCache: request.hubCache),
                layout: config.model.layout.rawValue,
                dtype: "bfloat16", boundary: config.model.boundary, numTrainTimesteps: 1000,
                highNoiseFile: expertFile(config.model.highNoiseFile),
                lowNoiseFile: expertFile(config.model.lowNoiseFile)),
            sampler: .init(
                solver: sample.solver.rawValue, schedule: sample.schedule.rawValue, steps: sample.steps,
                shift: sample.shift, guidanceHigh: sample.guidanceHigh, guidanceLow: sample.guidanceLow,
                negativePrompt: sample.negativePrompt, textLength: textLength, attention: sample.attention.rawValue),
            video: .init(
                width: sample.width, height: sample.height, frames: sample.frames, fps: sample.fps, crf: request.crf),
            loras: .init(
                high: request.loraHigh.map { .init(path: $0.path, scale: $0.scale) },
                low: request.loraLow.map { .init(path: $0.path, scale: $0.scale) }),
            memory: .init(
                textEncoderDevice: request.textEncoderOnGPU ? "gpu" : "cpu", planGpu: config.hardware.gpu,
                reservedBytes: MemoryModel.reservedBytes, candidates: candidates, alternatives: alternatives),
            output: .init(dir: request.outputDir, overwrite: request.overwrite),
            prompts: prompts
        )
    }
}
