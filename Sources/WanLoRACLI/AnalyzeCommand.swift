import ArgumentParser
import Foundation
import Manifest
import Reports
import Statistics
import Support

import typealias Config.AnalyzeSettings
import enum Config.ConfigLoader
import struct Config.WanLoRAConfig

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dataset statistics report: Markdown, self-contained HTML and JSON.",
        discussion: """
            Computes, for the manifest and each split side by side: media types, resolutions and the \
            share already at the training resolution, video durations and buckets, categories with \
            max/min ratio and Gini, caption lengths, words and type-token ratios, top words, the \
            correlation of duration and caption length, distances between the splits, items shared \
            by two splits, and findings with their numbers.

            Manifests are CSV (RFC 4180) or JSON Lines with columns path, media_type, width, height \
            (or resolution), duration, category, caption (id, fps optional). Rows that break a rule \
            are written with line, column and reason to OUT/rejects-NAME.csv and counted.

            Examples:
              wanlora analyze all_data.csv --split train=all_train.csv --split val=all_val.csv --out report
              wanlora analyze items.jsonl --column caption=설명 --column path=파일 --target 832x480
              wanlora analyze all.csv --split train=train.csv --split val=val.csv --morphemes

            Settings: the options given, else the [analyze] table of --config FILE (the same TOML file as the \
            other commands; `--set analyze.KEY=VALUE` overrides it), else the defaults. Its keys: morphemes, \
            morpheme_unit, template_words, template_threshold, top_words (docs/config.md), e.g.
              [analyze]
              morphemes = true
              morpheme_unit = "caption"

            --morphemes adds Korean morpheme-level statistics beside the space-split ones: the distinct \
            captions go through the Kiwi analyser in the engine's Python (engine/.venv, `make -C engine venv`), \
            and the report gains per dataset and category the top content words (nouns, verb and adjective \
            stems + 다), morpheme type-token ratios, content words per caption, the share of template \
            captions and the Jensen-Shannon divergence of the content words between datasets \
            (docs/report-schema.md defines each).
            """)

    @Argument(help: "The whole dataset's manifest (optional when --split is given twice or more).")
    var manifest: String?

    @Option(
        name: .customLong("split"),
        help: ArgumentHelp("A split to analyse beside it, as NAME=MANIFEST (repeatable).", valueName: "name=manifest"))
    var splits: [String] = []

    @Option(help: ArgumentHelp("Name of the positional manifest in the report.", valueName: "name"))
    var name: String = "all"

    @Option(help: ArgumentHelp("Training resolution, WIDTHxHEIGHT.", valueName: "WxH"))
    var target: String = "1280x720"

    @Option(
        help: ArgumentHelp(
            "Map a canonical column to a header name, CANONICAL=HEADER (repeatable), e.g. caption=설명.",
            valueName: "canonical=header"))
    var column: [String] = []

    @Option(
        help: ArgumentHelp(
            "Output folder (created when missing) for report.md, report.html, report.json and rejects files.",
            valueName: "dir"))
    var out: String = "report"

    @Option(help: "How many of the most frequent words to list (default \(AnalyzeSettings.defaults.topWords)).")
    var topWords: Int?

    @Option(help: "Captions longer than this many characters are counted as over the limit.")
    var captionLimit: Int = 1_000

    @Option(
        help: ArgumentHelp(
            "Exit with status 2 when a finding of this severity or worse exists (critical, warning, info).",
            valueName: "severity"))
    var failOn: String?

    @Flag(
        inversion: .prefixedNo,
        help: "Korean morpheme-level statistics with Kiwi (the engine's Python), beside the space-split ones.")
    var morphemes: Bool?

    @Option(
        name: .customLong("config"),
        help: ArgumentHelp("Read the [analyze] settings of this TOML configuration.", valueName: "file"))
    var configFile: String?

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp(
            "Override a setting, SECTION.KEY=VALUE (repeatable), e.g. analyze.morpheme_unit=caption.",
            valueName: "key=value"))
    var assignments: [String] = []

    @OptionGroup(title: "Morpheme analysis (with --morphemes)")
    var morphemeOptions: MorphemeAnalysisOptions

    @OptionGroup var progress: ProgressOptions

    @OptionGroup var overwrite: OverwriteOptions

    @Flag(help: "Print how long reading, computing and writing took (stderr).")
    var timings = false

    func validate() throws {
        if manifest == nil && splits.count < 2 {
            throw ValidationError(
                "give a manifest, or at least two --split NAME=MANIFEST (e.g. "
                    + "--split train=train.csv --split val=val.csv)")
        }
        guard Resolution(parsing: target) != nil else {
            throw ValidationError("--target \(target) is not WIDTHxHEIGHT, e.g. 1280x720 or 832x480")
        }
        for split in splits {
            guard let equals = split.firstIndex(of: "="), equals != split.startIndex,
                split.index(after: equals) != split.endIndex
            else {
                throw ValidationError("--split \(split) is not NAME=MANIFEST, e.g. --split val=all_val.csv")
            }
        }
        if let topWords, topWords < 0 { throw ValidationError("--top-words cannot be negative") }
        guard captionLimit > 0 else { throw ValidationError("--caption-limit must be positive") }
        if let failOn, Severity(rawValue: failOn) == nil {
            throw ValidationError("--fail-on \(failOn): use critical, warning or info")
        }
    }

    func run() throws {
        let report = try reportingErrors { () throws -> AnalysisReport in
            let clock = ContinuousClock()
            var mark = clock.now
            func lap(_ what: String) {
                guard timings else { return }
                let now = clock.now
                Console.err("timing: \(what) \(now - mark)")
                mark = now
            }
            let settings = try analyzeSettings()
            let topWords = self.topWords ?? settings.topWords
            let mapping = try ColumnMapping(parsing: column)
            let reader = ManifestReader(mapping: mapping)
            try overwrite.check(folder: out, files: Self.reportFiles, command: "analyze")
            try OutputLocation.prepareFolder(out, option: "--out")
            let progress = Console.progress(style: self.progress.style)
            var inputs: [NamedManifest] = []
            let pass =
                morphemes ?? settings.morphemes
                ? try MorphemePass(folder: out + "/morphemes", options: morphemeOptions.resolved(over: settings)) : nil
            // Captions are measured while each manifest is read, never kept as text (`CaptionCollector`);
            // with --morphemes each distinct caption also goes once into the file Kiwi reads.
            func read(_ path: String, name: String, role: DatasetRole) throws -> NamedManifest {
                let collector = CaptionCollector(distinct: pass?.captions)
                let manifest = try reader.read(path: path, progress: progress, captions: collector)
                var numbers: [Int32]?
                if let pass {
                    numbers =
                        manifest.captionsSentToSink
                        ? collector.captionNumbers
                        : manifest.items.map { pass.captions.number(of: $0.caption) }
                }
                return NamedManifest(
                    name: name, role: role, manifest: manifest,
                    captions: manifest.captionsSentToSink ? collector.finish() : nil,
                    captionNumbers: numbers)
            }
            if let manifest {
                inputs.append(try read(manifest, name: name, role: .whole))
            }
            for split in splits {
                let equals = split.firstIndex(of: "=")!
                let splitName = String(split[..<equals])
                let path = String(split[split.index(after: equals)...])
                inputs.append(try read(path, name: splitName, role: .split))
            }
            lap("read")
            var analysed: Analyzer.Morphemes?
            if let pass {
                let (result, summary) = try pass.analyse(progress: progress, topWords: topWords)
                analysed = result
                lap("morphemes")
                if timings {
                    Console.err(
                        "morphemes: \(summary.captions) distinct captions, unit \(summary.unit), "
                            + "\(summary.analyser), \(summary.workers) threads, "
                            + "model load \(summary.modelLoadSeconds) s, "
                            + "engine \(summary.seconds) s, engine peak memory \(summary.peakRssBytes / (1 << 20)) MiB")
                }
            }
            let options = StatisticsOptions(
                target: Resolution(parsing: target)!, topWords: topWords, captionLengthLimit: captionLimit)
            var report = Analyzer.analyze(
                inputs, options: options,
                generator: "wanlora \(WanLoRA.configuration.version)", progress: progress,
                morphemes: analysed)
            lap("compute")
            try write(report: &report, inputs: inputs)
            lap("write")
            // The manifests live until the process exits: freeing 200,000 items one by one only to
            // exit right after costs tens of milliseconds; the system reclaims the memory at once.
            ExitLifetime.keep(inputs)
            return report
        }
        Console.out(TerminalSummary.render(report))
        Console.out("\nwrote \(out)/report.md, \(out)/report.html, \(out)/report.json")
        if let failOn, let threshold = Severity(rawValue: failOn),
            report.findings.contains(where: { $0.severity <= threshold })
        {
            throw ExitCode(2)
        }
    }

    /// The `[analyze]` settings: the registry's defaults, the --config file's table, then --set.
    func analyzeSettings() throws -> AnalyzeSettings {
        var config = try configFile.map { try ConfigLoader.load(file: $0) } ?? WanLoRAConfig(preset: .h100)
        for assignment in assignments { try ConfigLoader.set(assignment, in: &config) }
        return config.analyze
    }

    private func write(report: inout AnalysisReport, inputs: [NamedManifest]) throws {
        let folder = URL(fileURLWithPath: out)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for index in report.rejects.indices {
                guard let input = inputs.first(where: { $0.name == report.rejects[index].dataset }),
                    !input.manifest.rejected.isEmpty
                else { continue }
                let file = folder.appendingPathComponent("rejects-\(Self.fileSafe(input.name)).csv")
                try RejectsWriter.write(input.manifest.rejected, to: file.path)
                report.rejects[index].rejectsFile = file.path
            }
            try JSONReport.render(report).write(to: folder.appendingPathComponent("report.json"), options: .atomic)
            try Data(MarkdownReport.render(report).utf8).write(
                to: folder.appendingPathComponent("report.md"), options: .atomic)
            try Data(HTMLReport.render(report).utf8).write(
                to: folder.appendingPathComponent("report.html"), options: .atomic)
        } catch let error as ManifestError {
            throw error
        } catch {
            throw GeneralError(
                "cannot write the report into \(out): \(error.localizedDescription)",
                remedy: "choose a writable --out folder")
        }
    }

    /// What a report folder holds (rejects files besides).
    static let reportFiles = ["report.md", "report.html", "report.json"]

    static func fileSafe(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    }
}

/// Values the command keeps until the process exits instead of freeing them (see `run()`).
enum ExitLifetime {
    private final class Box<Value> {
        let value: Value
        init(_ value: Value) { self.value = value }
    }

    static func keep<Value>(_ value: Value) {
        _ = Unmanaged.passRetained(Box(value))
    }
}
