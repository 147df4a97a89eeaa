import ArgumentParser
import Config
import Foundation
import Planner
import Runs
import Sampling
import Support

/// `wanlora sample`: text-to-video with both experts and their LoRAs, driven through the engine.
struct SampleCommand: ParsableCommand {
    private static let defaults = WanLoRAConfig.defaults.sample
    private static let defaultBoundary = WanLoRAConfig.defaults.model.boundary

    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract:
            "Generate videos with Wan2.2-T2V-A14B and your LoRAs: "
            + "one MP4 and JSON sidecar per prompt, an HTML gallery.",
        discussion: """
            Each prompt becomes OUT/videos/ID.mp4 (H.264), ID.jpg (a poster frame) and ID.json (every setting, \
            the seed, the timings); OUT/index.html shows them grouped by category. Ctrl-C stops the engine within a \
            denoising step and keeps the finished videos (again: SIGTERM, then SIGKILL); the same command makes the \
            rest. The engine's log is OUT/sample-engine.log. The engine denoises the Wan2.2 way: steps at timestep t ≥ \
            boundary·1000 run the high-noise expert with its guidance, the rest the low-noise expert with its own; \
            each expert gets its LoRA (either may be absent) at its own scale. \
            With 40 steps and shift 12, 26 steps are high-noise and 14 low-noise.

            Settings come from the configuration's [sample] section (defaults: Wan2.2's model card) and the options \
            below override them. The negative prompt is Wan2.2's own unless sample.negative_prompt or \
            --negative-prompt says otherwise. A prompt's seed is sample.seed + its position (or the `seed` \
            column of a CSV), and the noise is drawn on the CPU, so a seed gives the same video on any GPU.

            Prompts: --prompt TEXT (repeatable), --prompts FILE (.txt: one a line; .csv: a `prompt` or `caption` \
            column, optional `category`, `id`, `seed`), or --val-prompts N \
            (N captions per category from data.val_manifest). Korean is fine.

            Memory on one GPU: the planner (for hardware.gpu) estimates each placement; the engine takes the fastest \
            that fits the real card: both experts on the GPU, else the inactive one waiting in host memory (needs \
            about 27 GiB of RAM per expert), VAE tiling when decoding would not fit. When nothing fits, \
            it stops before loading with the planner's numbers and smaller sizes that would. \
            The text encoder runs before the experts are loaded and is released.

            Running the same command again keeps the videos already made with the same \
            settings (a stopped run continues); changed settings are refused unless --overwrite.

            Examples:
              wanlora sample --config run.toml --prompt "한옥 마을의 봄 풍경" --out s/base
              wanlora sample --config run.toml --prompts prompts.csv --out s/a \\
                  --lora-high runs/a/lora/high_noise.comfyui.safetensors \\
                  --lora-low runs/a/lora/low_noise.comfyui.safetensors
              wanlora sample --config run.toml --val-prompts 4 --resolution 832x480 --out v
              wanlora sample --config run.toml --prompt "…" --out s/t --dry-run
              wanlora sample --config run.toml --val-prompts 16 --out v --gpus 8 --ulysses 2

            Several GPUs (torchrun, like `wanlora train`): the videos still to make are dealt to the GPUs / U \
            data-parallel groups; the U GPUs of a group (--ulysses) share each video's tokens; --fsdp shards both \
            experts over all GPUs. A prompt and seed give the same video in every layout, and a stopped run \
            continues on any layout. `wanlora plan` shows the time and memory of each layout.
            """
    )

    @OptionGroup var source: ConfigSourceOptions
    @OptionGroup(title: "Several GPUs") var gpuLayout: SampleLayoutOptions

    @Option(name: .customLong("prompt"), help: ArgumentHelp("A prompt (repeatable).", valueName: "text"))
    var promptTexts: [String] = []
    @Option(
        name: .customLong("prompts"),
        help: ArgumentHelp(
            "A prompt file: .txt one a line, or .csv with a `prompt` column (and `category`, `id`, `seed`).",
            valueName: "file"))
    var promptsFile: String?
    @Option(
        name: .customLong("val-prompts"),
        help: ArgumentHelp("N captions per category from data.val_manifest, drawn with the seed.", valueName: "n"))
    var valPrompts: Int?
    @Option(
        help: ArgumentHelp(
            "Output folder (created when missing): sample-job.json, videos/, index.html, sample-engine.log.",
            valueName: "dir"))
    var out: String = "samples"

    @Option(
        name: .customLong("lora-high"),
        help: ArgumentHelp(
            "LoRA of the high-noise expert (.safetensors in the diffusers, ComfyUI or kohya/musubi naming).",
            valueName: "file"))
    var loraHigh: String?
    @Option(name: .customLong("lora-low"), help: ArgumentHelp("LoRA of the low-noise expert.", valueName: "file"))
    var loraLow: String?
    @Option(name: .customLong("lora-high-scale"), help: "Strength of the high-noise LoRA (0 = off, 1 = as trained).")
    var loraHighScale: Double = 1.0
    @Option(name: .customLong("lora-low-scale"), help: "Strength of the low-noise LoRA.")
    var loraLowScale: Double = 1.0

    @Option(help: ArgumentHelp("Denoising steps (default: \(defaults.steps), sample.steps).", valueName: "n"))
    var steps: Int?
    @Option(
        help: ArgumentHelp(
            "Timestep shift (default: \(TOMLLiteral.number(defaults.shift)), sample.shift).", valueName: "s"))
    var shift: Double?
    @Option(
        name: .customLong("guidance-high"),
        help: ArgumentHelp(
            "CFG scale of the high-noise expert (default: "
                + "\(TOMLLiteral.number(defaults.guidanceHigh)), sample.guidance_high).",
            valueName: "g"))
    var guidanceHigh: Double?
    @Option(
        name: .customLong("guidance-low"),
        help: ArgumentHelp(
            "CFG scale of the low-noise expert (default: "
                + "\(TOMLLiteral.number(defaults.guidanceLow)), sample.guidance_low).",
            valueName: "g"))
    var guidanceLow: Double?
    @Option(
        help: ArgumentHelp(
            "High-noise expert for t ≥ boundary·1000 (default: "
                + "\(TOMLLiteral.number(defaultBoundary)), model.boundary).",
            valueName: "b"))
    var boundary: Double?
    @Option(
        help: ArgumentHelp(
            "Frames per video, 4n+1 (default: \(defaults.frames), sample.frames; 16 fps).", valueName: "n"))
    var frames: Int?
    @Option(
        help: ArgumentHelp(
            "WIDTHxHEIGHT (default: \(defaults.width)x\(defaults.height), sample.resolution; 480P: 832x480).",
            valueName: "WxH"))
    var resolution: String?
    @Option(help: ArgumentHelp("Frame rate of the MP4 (default: \(defaults.fps), sample.fps).", valueName: "n"))
    var fps: Int?
    @Option(
        help: ArgumentHelp(
            "Seed of the first prompt; the next prompts take seed+1, +2, … (default: \(defaults.seed), sample.seed).",
            valueName: "n"))
    var seed: Int?
    @Option(
        help: ArgumentHelp("euler or unipc (default: \(defaults.solver.rawValue), sample.solver).", valueName: "name"))
    var solver: String?
    @Option(
        help: ArgumentHelp(
            "Timestep grid: wan, diffusers_unipc or diffusers_euler (default: "
                + "\(defaults.schedule.rawValue), sample.schedule).",
            valueName: "name"))
    var schedule: String?
    @Option(
        help: ArgumentHelp(
            "Attention kernel: auto, cudnn, fa3, flash, efficient or math (default: "
                + "\(defaults.attention.rawValue), sample.attention; fa3 needs an H100/H200 and bench/build_fa3.sh).",
            valueName: "name"))
    var attention: String?
    @Option(
        name: .customLong("negative-prompt"),
        help: ArgumentHelp(
            "Negative prompt (default: Wan2.2's, sample.negative_prompt; \"\" for none).", valueName: "text"))
    var negativePrompt: String?
    @Option(
        help: ArgumentHelp(
            "Model folder, or a Hugging Face repo id in the local hub cache (default: model.checkpoint of the "
                + "configuration).", valueName: "dir|repo"))
    var model: String?
    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Set any key: section.key=value (TOML value). Repeatable.", valueName: "key=value"))
    var assignments: [String] = []

    @Option(help: "Where the engine runs: auto, cuda or cpu (cpu: only for tiny test models).")
    var device: String = "auto"
    @Option(
        name: .customLong("inactive-expert"),
        help: "Where the expert not in use waits: auto (the planner decides), gpu or cpu.")
    var inactiveExpert: String = "auto"
    @Option(name: .customLong("vae-tiling"), help: "Decode in tiles: auto (when needed), on or off.")
    var vaeTiling: String = "auto"
    @Option(
        name: .customLong("text-encoder"), help: "Where UMT5 encodes the prompts: gpu (before the experts load) or cpu."
    )
    var textEncoder: String = "gpu"
    @Option(help: "x264 quality: constant rate factor 0–51 (18 is visually lossless; lower is bigger).")
    var crf: Int = 18
    @Flag(help: "Replace videos of OUT whose settings differ (else they are refused).")
    var overwrite = false
    @Flag(name: .customLong("dry-run"), help: "Write OUT/sample-job.json and print the plan; do not start the engine.")
    var dryRun = false
    @Option(
        name: .customLong("engine-python"),
        help: ArgumentHelp(
            "Python of the engine (default: engine/.venv/bin/python of this checkout).", valueName: "path"))
    var enginePython: String?
    @OptionGroup var progress: ProgressOptions
    @Flag(help: "Pass the engine's own log (stderr) through.")
    var verbose = false

    func validate() throws {
        let sources = [!promptTexts.isEmpty, promptsFile != nil, valPrompts != nil].filter { $0 }.count
        if sources != 1 {
            throw ValidationError(
                "Give the prompts one way: --prompt TEXT (repeatable), --prompts FILE or --val-prompts N.")
        }
        if let valPrompts, valPrompts < 1 {
            throw ValidationError("--val-prompts must be 1 or more (captions per category).")
        }
        if !["auto", "cuda", "cpu"].contains(device) {
            throw ValidationError("--device \(device): use auto, cuda or cpu.")
        }
        if !["auto", "gpu", "cpu"].contains(inactiveExpert) {
            throw ValidationError("--inactive-expert \(inactiveExpert): use auto, gpu or cpu.")
        }
        if !["auto", "on", "off"].contains(vaeTiling) {
            throw ValidationError("--vae-tiling \(vaeTiling): use auto, on or off.")
        }
        if !["gpu", "cpu"].contains(textEncoder) {
            throw ValidationError("--text-encoder \(textEncoder): use gpu or cpu.")
        }
        if !(0...51).contains(crf) { throw ValidationError("--crf \(crf): use 0–51 (18 is visually lossless).") }
        for (name, value) in [("--lora-high-scale", loraHighScale), ("--lora-low-scale", loraLowScale)]
        where !value.isFinite {
            throw ValidationError("\(name) must be a finite number.")
        }
        if loraHigh == nil && loraHighScale != 1 { throw ValidationError("--lora-high-scale needs --lora-high FILE.") }
        if loraLow == nil && loraLowScale != 1 { throw ValidationError("--lora-low-scale needs --lora-low FILE.") }
    }

    func run() throws {
        let code = try reportingErrors { try sample() }
        if code != 0 { throw ExitCode(code) }
    }

    /// Plans, writes the job, runs the engine and the gallery; returns the exit status.
    private func sample() throws -> Int32 {
        func absolute(_ path: String) -> String { PathMath.absolute(path) }
        var (config, baseDir) = try source.load()
        let overrides: [(String, ConfigValue?)] = [
            ("sample.steps", steps.map { .integer($0) }),
            ("sample.shift", shift.map { .float($0) }),
            ("sample.guidance_high", guidanceHigh.map { .float($0) }),
            ("sample.guidance_low", guidanceLow.map { .float($0) }),
            ("model.boundary", boundary.map { .float($0) }),
            ("sample.frames", frames.map { .integer($0) }),
            ("sample.resolution", resolution.map { .string($0) }),
            ("sample.fps", fps.map { .integer($0) }),
            ("sample.seed", seed.map { .integer($0) }),
            ("sample.solver", solver.map { .string($0) }),
            ("sample.schedule", schedule.map { .string($0) }),
            ("sample.attention", attention.map { .string($0) }),
            ("sample.negative_prompt", negativePrompt.map { .string($0) }),
            ("model.checkpoint", model.map { .string(ModelSource.anchored($0, base: PathMath.absolute("."))) }),
        ]
        for case (let key, let value?) in overrides { try ConfigLoader.set(key, value, in: &config, validate: false) }
        for assignment in assignments { try ConfigLoader.set(assignment, in: &config, validate: false) }
        try config.validate()

        // Prompts.
        let prompts: [SamplePrompt]
        if !promptTexts.isEmpty {
            prompts = try PromptSource.arguments(promptTexts)
        } else if let promptsFile {
            prompts = try PromptSource.file(absolute(promptsFile))
        } else {
            let manifest = PathMath.absolute(config.data.valManifest, base: baseDir)
            let chosen = try PromptSource.validation(
                manifest: manifest, perCategory: valPrompts ?? 1, seed: UInt64(config.sample.seed))
            prompts = chosen.prompts
            if progress.style != .none {
                let short = chosen.choices.filter { $0.chosen < (valPrompts ?? 1) }
                Console.err(
                    "prompts: \(prompts.count) captions of \((manifest as NSString).lastPathComponent), "
                        + "\(chosen.choices.count) categories"
                        + (short.isEmpty
                            ? ""
                            : "; fewer in "
                                + short.map { "\($0.category.isEmpty ? "(none)" : $0.category) (\($0.available))" }
                                .joined(separator: ", ")))
            }
        }

        // LoRAs: checked here so a typo fails before the engine loads 27 GB.
        func lora(_ path: String?, _ scale: Double, _ flag: String) throws -> (path: String, scale: Double)? {
            guard let path else { return nil }
            let full = absolute(path)
            guard FileManager.default.fileExists(atPath: full) else {
                throw GeneralError(
                    "\(flag) \(path): no such file.",
                    remedy:
                        "Pass a LoRA that `wanlora train` wrote, e.g. "
                        + "runs/NAME/lora/\(flag == "--lora-high" ? "high" : "low")_noise.comfyui.safetensors."
                )
            }
            return (full, scale)
        }
        // Single-file experts too (the folder's own files are the engine's to name).
        for (key, path) in [
            ("model.high_noise_file", config.model.highNoiseFile), ("model.low_noise_file", config.model.lowNoiseFile),
        ] where !path.isEmpty && !FileManager.default.fileExists(atPath: PathMath.absolute(path, base: baseDir)) {
            throw GeneralError(
                "\(key) \(PathMath.absolute(path, base: baseDir)): no such file.",
                remedy: "Set \(key) to the expert's .safetensors file (e.g. ComfyUI's "
                    + "wan2.2_t2v_high_noise_14B_fp16.safetensors), or to \"\" to use model.checkpoint's expert.")
        }
        let outDir = absolute(out)
        let request = SampleRequest(
            config: config, baseDir: baseDir, outputDir: outDir, prompts: prompts,
            loraHigh: try lora(loraHigh, loraHighScale, "--lora-high"),
            loraLow: try lora(loraLow, loraLowScale, "--lora-low"),
            device: device, inactiveExpert: InactiveExpertPlacement(rawValue: inactiveExpert),
            vaeTiling: vaeTiling == "auto" ? nil : vaeTiling == "on", textEncoderOnGPU: textEncoder == "gpu",
            overwrite: overwrite, crf: crf)
        let job = try SampleJobBuilder.build(request)
        do {
            try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
            try job.jsonData().write(
                to: URL(fileURLWithPath: (outDir as NSString).appendingPathComponent("sample-job.json")),
                options: .atomic)
        } catch {
            throw GeneralError(
                "Cannot write \(outDir)/sample-job.json: \(error.localizedDescription).",
                remedy: "Check that --out is a folder you can write to and that the disk is not full.")
        }
        printPlan(job)
        if dryRun {
            Console.out("\(outDir)/sample-job.json written (dry run: the engine was not started)")
            return 0
        }

        // The engine: its own process group, stdout events, stderr into OUT/sample-engine.log.
        let installation = try EngineLocator.installation(explicit: enginePython)
        let jobPath = (outDir as NSString).appendingPathComponent("sample-job.json")
        let logPath = (outDir as NSString).appendingPathComponent("sample-engine.log")
        let stage = EngineStage(
            launch: try .sample(
                gpuLayout.request(
                    jobPath: jobPath, python: installation.python, attentionHeads: Architecture.wan22T2VA14B.heads)),
            logPath: logPath,
            grace: .sampling)
        let renderer = SampleProgress(style: progress.style)
        let verbose = self.verbose
        let stops = StopForwarding(stage: stage, kept: "the videos finished so far stay in \(outDir)/videos")
        var echoLog: (@Sendable (String) -> Void)?
        if verbose { echoLog = { @Sendable line in Console.err(line) } }
        let outcome = try stage.run(
            observer: StageObserver(
                event: { event, _ in renderer.render(event) },
                strayLine: { line in if verbose { Console.err(line) } },
                stderrLine: echoLog))
        stops.end()
        let status: Int32 =
            switch outcome.termination {
            case .exited(let code): code
            case .signaled: 130
            }

        // The gallery, from whatever videos exist (also after a stop).
        let found = SampleGallery.sidecars(folder: outDir, ids: job.prompts.map(\.id))
        for error in found.errors { Console.err("warning: \(error)") }
        if !found.sidecars.isEmpty {
            let page = SampleGallery.html(
                found.sidecars, title: "wanlora samples: \((outDir as NSString).lastPathComponent)")
            let gallery = (outDir as NSString).appendingPathComponent("index.html")
            try? Data(page.utf8).write(to: URL(fileURLWithPath: gallery), options: .atomic)
            // A result line only when the engine made (or kept) videos: not after it refused or failed.
            if status == 0 || status == 130 {
                Console.out(
                    "\(found.sidecars.count) of \(job.prompts.count) videos in \(outDir)/videos; gallery: \(gallery)")
            }
        }
        if status == 0 { return 0 }
        if let failure = outcome.error {
            Console.err("error: \(failure.problem)\nhow to fix: \(failure.remedy)")
        } else if outcome.finished?.status == .interrupted || status == 130 {
            Console.err("stopped: the finished videos are kept; run the same command again to make the rest.")
            return 130
        } else {
            Console.err(
                "error: the engine stopped with status \(status) without saying why. "
                    + "Its last log lines (all of them: \(logPath)):"
            )
            for line in LogExcerpt.withoutTracebacks(Array(outcome.logTail.suffix(12))) { Console.err("  " + line) }
        }
        return status == 130 ? 130 : 1
    }

    private func seedsText(_ seeds: [Int]) -> String {
        if seeds.count == 1 { return "seed \(seeds[0])" }
        if zip(seeds, seeds.dropFirst()).allSatisfy({ $1 == $0 + 1 }) { return "seeds \(seeds[0])–\(seeds.last!)" }
        return "seeds " + seeds.prefix(6).map(String.init).joined(separator: ", ") + (seeds.count > 6 ? ", …" : "")
    }

    private func printPlan(_ job: SampleJob) {
        guard progress.style != .none else { return }
        let split = job.stepsPerExpert
        let s = job.sampler
        let v = job.video
        let lora = { (slot: SampleJob.LoRA?) in
            slot.map { "\(($0.path as NSString).lastPathComponent) × \(TOMLLiteral.number($0.scale))" } ?? "none"
        }
        let boundaryStep = job.model.boundary * 1000
        Console.err(
            """
            plan: \(job.prompts.count) video\(job.prompts.count == 1 ? "" : "s") of \(v.frames) frames at \
            \(v.width)x\(v.height), \(v.fps) fps (\(String(format: "%.2f", Double(v.frames) / Double(v.fps))) s each)
              \(s.solver), \(s.steps) steps on the \(s.schedule) schedule with shift \(TOMLLiteral.number(s.shift)): \
            \(split.high) high-noise (guidance \(TOMLLiteral.number(s.guidanceHigh))), \(split.low) low-noise \
            (guidance \(TOMLLiteral.number(s.guidanceLow))); boundary t ≥ \
            \(NumberFormat.decimal(boundaryStep, boundaryStep == boundaryStep.rounded() ? 0 : 1)); \
            attention \(s.attention)
              LoRA high: \(lora(job.loras.high)); low: \(lora(job.loras.low)); \(seedsText(job.prompts.map(\.seed)))
            """)
        let gib = { (bytes: Int) in String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) }
        let plans = job.memory.candidates.map {
            "\($0.inactiveExpert == "gpu" ? "both experts on GPU" : "inactive expert in RAM")"
                + "\($0.vaeTiling ? ", tiled VAE" : ""): \(gib($0.peakBytes))"
        }
        Console.err(
            "  GPU memory (planner): " + plans.joined(separator: "; ")
                + " — the engine takes the first that fits the card")
        if let name = job.memory.planGpu, let gpu = try? GPU.named(name) {
            let usable = gpu.memoryBytes - job.memory.reservedBytes
            if let chosen = job.placement(fitting: usable) {
                Console.err(
                    "  on one \(gpu.name) (\(gib(usable)) usable, hardware.gpu): "
                        + (chosen.inactiveExpert == "gpu"
                            ? "both experts on the GPU" : "inactive expert in host memory")
                        + (chosen.vaeTiling ? ", tiled VAE" : "")
                )
            } else if let least = job.memory.candidates.min(by: { $0.peakBytes < $1.peakBytes }) {
                let items = least.peakItems.prefix(4).map { "\($0.name) \(gib($0.bytes))" }.joined(separator: ", ")
                Console.err(
                    "  warning: on one \(gpu.name) (\(gib(usable)) usable, "
                        + "hardware.gpu) nothing fits: the least needs \(gib(least.peakBytes)) (\(items)); "
                        + "the engine will stop unless this machine's GPU is larger. Smaller: "
                        + job.memory.alternatives.map { "\($0.label) \(gib($0.peakBytes))" }.joined(separator: "; "))
            }
        }
    }
}

/// Renders the engine's sample events: a line per video, progress per step (animated on a
/// terminal, at most every 2 s in a pipe).
final class SampleProgress: @unchecked Sendable {
    let style: ProgressStyle
    private var lastPrinted = Date.distantPast
    private var stepLineOpen = false
    private var device = "cuda"

    init(style: ProgressStyle) { self.style = style }

    func render(_ event: EngineEvent) {
        switch event.body {
        case .runStarted(let started):
            device = started.device
            say("engine: \(device)\(device == "cuda" ? " (\(started.deviceName))" : "")")
        case .samplePlan(let plan):
            var line =
                "engine plan: \(plan.steps) steps (\(plan.stepsHigh) high, \(plan.stepsLow) low), "
                + (device == "cuda"
                    ? (plan.inactiveExpert == "gpu" ? "both experts on the GPU" : "inactive expert in host memory")
                        + ", VAE tiling \(plan.vaeTiling ? "on" : "off")" : "everything on the CPU")
            if let total = plan.deviceTotalBytes, let peak = plan.plannedPeakBytes {
                line += String(
                    format: ", planned %.1f of %.1f GiB", Double(peak) / Double(1 << 30),
                    Double(total) / Double(1 << 30))
            }
            if plan.videosExisting > 0 { line += "; \(plan.videosExisting) of \(plan.videos) videos already made" }
            say(line)
        case .progress(let progress):
            let total = progress.total
            if progress.done == total {
                say(
                    progress.phase == "encode_prompts"
                        ? "encoded \(total) prompt\(total == 1 ? "" : "s")"
                        : "models loaded")
            }
        case .sampleStep(let step):
            guard style != .none else { return }
            let left =
                step.etaSeconds < 90
                ? "\(Int(step.etaSeconds.rounded())) s" : "\(Int((step.etaSeconds / 60).rounded())) min"
            let line =
                "video \(step.video)/\(step.videos) (\(step.id)): "
                + "step \(step.step)/\(step.steps), \(step.expert)-noise t=\(Int(step.timestep)), "
                + String(format: "%.2f s/step", step.secondsPerStep) + ", \(left) left"
            if style == .terminal {
                FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
                stepLineOpen = true
            } else if style == .json {
                say(
                    #"{"event":"progress","stage":"sample","video":\#(step.video),"videos":\#(step.videos),"#
                        + #""step":\#(step.step),"steps":\#(step.steps)}"#
                )
            } else if step.step == step.steps || Date().timeIntervalSince(lastPrinted) >= 2 {
                lastPrinted = Date()
                Console.err(line)
            }
        case .sampleVideo(let video):
            let what =
                video.existing
                ? "kept (made earlier with the same settings)" : String(format: "made in %.1f s", video.seconds)
            say(
                "video \(video.video)/\(video.videos) \(video.id)\(video.category.map { " [\($0)]" } ?? ""), "
                    + "seed \(video.seed): \(what) → \(video.path)"
            )
        case .warning(let warning):
            say("warning: \(warning.message)")
        default:
            break
        }
    }

    private func say(_ line: String) {
        guard style != .none else { return }
        if stepLineOpen {
            FileHandle.standardError.write(Data("\n".utf8))
            stepLineOpen = false
        }
        Console.err(line)
    }
}
