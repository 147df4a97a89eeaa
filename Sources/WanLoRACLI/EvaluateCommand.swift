import ArgumentParser
import Config
import Evaluation
import Foundation
import Runs
import Support

/// `wanlora evaluate`: FVD, IS, LPIPS, CLIP score and temporal consistency, per category, by the engine.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score generated videos against reference clips: FVD, IS, LPIPS, CLIP score, temporal consistency.",
        discussion: """
            Compares the videos of `wanlora sample` (an MP4 and a JSON sidecar with prompt and category each) with \
            the video clips of a prepared manifest (normally the val split), per category and overall, and writes \
            OUT/metrics.json and OUT/report.html. The metrics are the standard ones, so the numbers compare with \
            papers: FVD with the Kinetics-400 I3D of the reference FVD code, the Inception Score with Inception-v3, \
            LPIPS v0.1, a CLIP score with a multilingual text encoder (the captions are Korean) and the mean cosine \
            similarity of consecutive frames. docs/evaluate.md defines each one.

            The networks' weights come from local files only, named in the [eval] section of the configuration \
            (by default under eval.weights_dir = "weights": i3d_pretrained_400.pt, inception_v3_google-0cc3c7bd.pth, \
            lpips/v0.1/alex.pth, alexnet-owt-7be5be79.pth, clip-vit-base-patch32/, clip-ViT-B-32-multilingual-v1/). \
            A missing file stops the command before any work, naming the file and the key.

            FVD needs many clips: below eval.fvd_min_samples (256) per set it is flagged as biased. Per-video \
            features are kept in OUT/features/, so an interrupted evaluation resumes where it stopped.

            Examples:
              wanlora evaluate --generated samples --reference prepared/val.csv --out eval --config run.toml
              wanlora evaluate --generated samples --reference prepared/val.csv --metrics clip,temporal
            """)

    @Option(
        help: ArgumentHelp(
            "Folder of generated videos with their JSON sidecars: the --out folder of `wanlora sample` "
                + "(its videos/ is used) or a folder of MP4s.",
            valueName: "dir"))
    var generated: String

    @Option(
        help: ArgumentHelp(
            "Manifest of the reference clips (prepared val split: path, caption, category).", valueName: "manifest"))
    var reference: String

    @Option(
        help: ArgumentHelp(
            "Output folder (created when missing) for metrics.json, report.html, evaluate.json and features/.",
            valueName: "dir"))
    var out: String = "eval"

    @OptionGroup var source: ConfigSourceOptions

    @Option(
        help: ArgumentHelp(
            "Metrics to compute, comma-separated (default: "
                + "eval.metrics of the configuration): fvd, is, lpips, clip, temporal.",
            valueName: "list"))
    var metrics: String?

    @Option(help: "Where the networks run: auto (a CUDA GPU when there is one), cpu or cuda.")
    var device: String = "auto"

    @Option(
        help: ArgumentHelp(
            "Python of the engine (default: engine/.venv/bin/python, made by `make -C engine venv`).", valueName: "path"
        ))
    var enginePython: String?

    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        if let metrics {
            for name in metrics.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) })
            where EvalMetric(rawValue: name) == nil {
                throw ValidationError(
                    "--metrics: unknown metric \"\(name)\"; use fvd, is, lpips, clip, temporal (comma-separated)")
            }
        }
        guard ["auto", "cpu", "cuda"].contains(device) else {
            throw ValidationError("--device \(device): use auto, cpu or cuda")
        }
    }

    func run() throws {
        let (metricsFile, table) = try reportingErrors { try evaluate() }
        Console.out(table)
        Console.out("\nwrote \(metricsFile) and \((out as NSString).appendingPathComponent("report.html"))")
    }

    private func evaluate() throws -> (String, String) {
        let (config, configDir) = try source.load()
        let cwd = FileManager.default.currentDirectoryPath
        let chosen = metrics.map {
            $0.split(separator: ",").compactMap { EvalMetric(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
        }
        let job = EvaluationJob(
            config: config, configDir: configDir, generated: generated, reference: reference, out: out,
            workingDir: cwd, device: device, metrics: chosen)
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: job.inputs.generatedDir, isDirectory: &isFolder),
            isFolder.boolValue
        else {
            throw GeneralError(
                "--generated \(generated) is not a folder.", remedy: "pass the --out folder of `wanlora sample`")
        }
        guard FileManager.default.fileExists(atPath: job.inputs.referenceManifest) else {
            throw GeneralError(
                "--reference \(reference) does not exist.",
                remedy: "pass the prepared val manifest, e.g. prepared/val.csv")
        }
        try job.checkWeightFiles()
        try OutputLocation.prepareFolder(job.outDir, option: "--out")
        let jobFile = (job.outDir as NSString).appendingPathComponent("evaluate.json")
        try job.jsonData().write(to: URL(fileURLWithPath: jobFile), options: .atomic)

        let installation = try EngineLocator.installation(explicit: enginePython)
        let stage = EngineStage(
            launch: .module(.evaluate, configPath: jobFile, engine: installation),
            logPath: (job.outDir as NSString).appendingPathComponent("evaluate-engine.log"),
            grace: .evaluation)
        let progress = Console.progress(style: self.progress.style)
        let quiet = self.progress.style == .none
        let features = (job.outDir as NSString).appendingPathComponent("features")
        let stops = StopForwarding(stage: stage, kept: "the features of the videos finished so far stay in \(features)")
        let outcome = try stage.run(
            observer: StageObserver(event: { event, _ in
                switch event.body {
                case .evaluatePlan(let plan):
                    guard !quiet else { return }
                    Console.err(
                        "evaluate: \(plan.generatedVideos) generated videos in "
                            + "\(plan.categories.count) categories, "
                            + "\(plan.referenceVideos) reference clips (of \(plan.referenceRows)); "
                            + "metrics: \(plan.metrics.joined(separator: ", "))")
                case .evaluateProgress(let step):
                    progress.report(
                        ProgressEvent(
                            stage: "evaluate", completed: step.done, total: step.total,
                            unit: "videos"))
                case .warning(let warning):
                    Console.err("warning: \(warning.message)")
                default:
                    break
                }
            }))
        stops.end()
        if !outcome.completed {
            if outcome.finished?.status == .interrupted {
                throw GeneralError(
                    "evaluation interrupted; the features of the videos done so far are kept in \(out)/features.",
                    remedy: "run the same command again to continue")
            }
            if let error = outcome.error {
                throw GeneralError(error.problem, remedy: error.remedy)
            }
            throw GeneralError(
                "the engine stopped (\(outcome.termination)) before finishing. Its last log lines:\n  "
                    + LogExcerpt.withoutTracebacks(Array(outcome.logTail.suffix(8))).joined(separator: "\n  "),
                remedy:
                    "check the engine environment (`make -C engine venv`); the whole log is \(out)/evaluate-engine.log")
        }
        let metricsFile = (job.outDir as NSString).appendingPathComponent("metrics.json")
        guard let data = FileManager.default.contents(atPath: metricsFile) else {
            throw GeneralError("the engine finished but \(metricsFile) is missing.", remedy: "run the command again")
        }
        let result = try EvaluationMetrics.decode(data, source: metricsFile)
        let page = (job.outDir as NSString).appendingPathComponent("report.html")
        try Data(EvaluationReport.html(result).utf8).write(to: URL(fileURLWithPath: page), options: .atomic)
        return (metricsFile, EvaluationReport.terminal(result))
    }
}
