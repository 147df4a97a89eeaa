import ArgumentParser
import Foundation
import Manifest
import Media
import Support

struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read every file of a manifest with ffprobe and compare it with the manifest.",
        discussion: """
            For each accepted row, ffprobe (in parallel) reports the real width and height, the sample \
            aspect ratio and display aspect, rotation (display matrix or rotate tag), duration, frame \
            rate (r_frame_rate against avg_frame_rate: constant or variable), codec, field order \
            (interlaced or progressive) and audio. The summary counts interlaced, variable-frame-rate, \
            rotated and anamorphic files, lists files that cannot be read (with ffprobe's own message) \
            and rows whose media type, resolution, duration or fps differ from the file.

            --output writes one row per file: CSV, or JSON Lines when the name ends in .jsonl.

            Examples:
              wanlora probe demo/data/manifest.csv
              wanlora probe all_data.csv --output probe.csv --jobs 8
            """)

    @Argument(help: "The manifest (CSV or JSON Lines) whose files to probe.")
    var manifest: String

    /// The per-file table (.csv or .jsonl).
    @OptionGroup var output: OutputFileOptions

    @OptionGroup var jobs: JobsOptions

    @Option(
        help: ArgumentHelp(
            "Map a canonical column to a header name, CANONICAL=HEADER (repeatable).", valueName: "canonical=header"))
    var column: [String] = []

    @Option(help: "How many findings to list on the terminal.")
    var limit: Int = 20

    @Option(help: ArgumentHelp("ffprobe to run (a name on PATH or a path).", valueName: "path"))
    var ffprobe: String = "ffprobe"

    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        guard limit >= 0 else { throw ValidationError("--limit cannot be negative") }
    }

    func run() async throws {
        let summary = try await reportingErrors { () async throws -> ProbeSummary in
            // The table is written after every file was probed: find out now, not then, that it cannot be.
            if let out = output.path { try OutputLocation.checkFile(out, option: "--output") }
            let reporter = Console.progress(style: progress.style)
            let read = try ManifestReader(mapping: try ColumnMapping(parsing: column)).read(
                path: manifest, progress: reporter)
            let tools = MediaTools(ffprobe: ffprobe)
            let width = jobs.count
            let summary = try await Interrupts.cancellingOnSignals {
                try await ProbeSummary.probe(manifest: read, tools: tools, width: width, progress: reporter)
            }
            if let out = output.path { try write(summary, to: out) }
            return summary
        }
        Console.out(SummaryText.probe(summary, limit: limit))
        if let out = output.path { Console.out("wrote \(out) (\(NumberFormat.grouped(summary.rows.count)) rows)") }
    }

    func write(_ summary: ProbeSummary, to path: String) throws {
        var bytes: [UInt8] = []
        if path.lowercased().hasSuffix(".jsonl") || path.lowercased().hasSuffix(".json") {
            for row in summary.rows {
                let object = Dictionary(uniqueKeysWithValues: zip(ProbeRow.header, row.fields))
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                bytes += Array(data) + [0x0A]
            }
        } else {
            var writer = CSVWriter()
            writer.writeRow(ProbeRow.header)
            for row in summary.rows { writer.writeRow(row.fields) }
            bytes = writer.bytes
        }
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw OutputError(path: path, option: "--output", reason: OutputLocation.reason(error))
        }
    }
}
