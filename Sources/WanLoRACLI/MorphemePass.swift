import ArgumentParser
import Config
import Foundation
import Runs
import Statistics
import Support

/// Options of the Korean morpheme analysis, shared by `analyze --morphemes` and curate's template flag. Each
/// one not given takes the `[analyze]` setting of the configuration (`analyze --config`), else the registry's
/// default (Sources/Config/ConfigKeys.swift).
struct MorphemeAnalysisOptions: ParsableArguments {
    @Option(
        name: .customLong("morpheme-unit"),
        help: ArgumentHelp(
            "word: Kiwi analyses each distinct space-separated word alone (the default; faster, approximate: no "
                + "context across words); caption: each caption whole (exact, about twice the CPU time).",
            valueName: "unit"))
    var unit: String?

    @Option(
        name: .customLong("template-words"),
        help: ArgumentHelp(
            "A caption's template key: the set of its first N distinct content words (default "
                + "\(AnalyzeSettings.defaults.templateWords)).", valueName: "N"))
    var templateWords: Int?

    @Option(
        name: .customLong("template-threshold"),
        help: ArgumentHelp(
            "Captions whose key is shared by more than N captions of the dataset are template captions (default "
                + "\(AnalyzeSettings.defaults.templateThreshold)).",
            valueName: "N"))
    var templateThreshold: Int?

    @Option(
        name: .customLong("morpheme-workers"),
        help: ArgumentHelp("Kiwi's threads (0: one per core).", valueName: "N"))
    var workers: Int = 0

    @Option(
        name: .customLong("engine-python"),
        help: ArgumentHelp(
            "Python interpreter with wanlora_engine and Kiwi installed (default: $WANLORA_ENGINE_PYTHON, else "
                + "engine/.venv/bin/python above the wanlora binary or the working folder).",
            valueName: "path"))
    var enginePython: String?

    func validate() throws {
        if let unit, MorphemeUnit(rawValue: unit) == nil {
            throw ValidationError("--morpheme-unit \(unit): use word or caption")
        }
        if let templateWords, templateWords < 1 {
            throw ValidationError("--template-words must be 1 or more, e.g. 5")
        }
        if let templateThreshold, templateThreshold < 1 {
            throw ValidationError("--template-threshold must be 1 or more, e.g. 10")
        }
        guard workers >= 0 else { throw ValidationError("--morpheme-workers cannot be negative (0: one per core)") }
    }

    /// The options given, the rest from `settings`.
    func resolved(over settings: AnalyzeSettings) -> MorphemeSettings {
        MorphemeSettings(
            unit: unit.flatMap(MorphemeUnit.init(rawValue:)) ?? settings.morphemeUnit,
            templateWords: templateWords ?? settings.templateWords,
            templateThreshold: templateThreshold ?? settings.templateThreshold, workers: workers,
            enginePython: enginePython)
    }
}

/// The morpheme analysis as it runs: options and settings resolved.
struct MorphemeSettings: Equatable {
    var unit: MorphemeUnit
    var templateWords: Int
    var templateThreshold: Int
    var workers: Int
    var enginePython: String?

    func options(topWords: Int) -> MorphemeOptions {
        MorphemeOptions(topWords: topWords, templateWords: templateWords, templateThreshold: templateThreshold)
    }
}

extension AnalyzeSettings {
    /// The registry's defaults (the h100 preset's; no preset changes them).
    static var defaults: AnalyzeSettings { WanLoRAConfig(preset: .h100).analyze }
}

/// One run of the engine's morpheme analysis over the distinct captions collected in `folder`:
/// `captions` numbers them while the manifests are read, `analyse` runs Kiwi and loads the result.
final class MorphemePass {
    let folder: String
    let captions: DistinctCaptions
    let options: MorphemeSettings

    init(folder: String, options: MorphemeSettings) throws {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw GeneralError(
                "cannot create \(folder) for the morpheme analysis: \(error.localizedDescription)",
                remedy: "choose a writable --out folder")
        }
        self.folder = folder
        self.options = options
        captions = try DistinctCaptions(path: folder + "/captions.bin")
    }

    /// Runs Kiwi over the captions; the intermediate files are removed afterwards (the log stays).
    func analyse(progress: ProgressReporter, topWords: Int) throws -> (Analyzer.Morphemes, MorphemeJob.Summary) {
        try captions.finish()
        let job = MorphemeJob(
            captionsPath: captions.path, resultPath: folder + "/morphemes.bin",
            vocabularyPath: folder + "/vocabulary.json",
            logPath: folder + "/engine.log", unit: options.unit, workers: options.workers)
        let engine = try EngineLocator.installation(explicit: options.enginePython)
        let summary = try job.run(engine: engine, progress: progress)
        let table = try MorphemeTable.read(resultPath: job.resultPath, vocabularyPath: job.vocabularyPath)
        for path in [job.captionsPath, job.resultPath, job.vocabularyPath] {
            try? FileManager.default.removeItem(atPath: path)
        }
        let info = MorphemeAnalysisInfo(
            analyser: summary.analyser, unit: options.unit.rawValue, distinctCaptions: table.count,
            templateWords: options.templateWords, templateThreshold: options.templateThreshold)
        return (Analyzer.Morphemes(table: table, options: options.options(topWords: topWords), info: info), summary)
    }
}
