import Foundation
import Support

/// Plain-text summaries of probe and prepare runs, for the terminal.
public enum SummaryText {
    public static func probe(_ summary: ProbeSummary, limit: Int = 20) -> String {
        var lines: [String] = []
        let total = summary.rows.count
        let read = summary.probes.count
        lines.append(
            "probed \(NumberFormat.grouped(total)) files of \(summary.manifest.source): "
                + "\(NumberFormat.grouped(read)) read, \(NumberFormat.grouped(summary.failures.count)) not")
        lines.append(
            "  videos: \(NumberFormat.grouped(summary.videos.count)) (\(NumberFormat.grouped(summary.interlaced)) "
                + "interlaced, \(NumberFormat.grouped(summary.variableFrameRate)) "
                + "variable frame rate, \(NumberFormat.grouped(summary.withAudio)) with audio)")
        lines.append("  images: \(NumberFormat.grouped(summary.images))")
        lines.append(
            "  rotated: \(NumberFormat.grouped(summary.rotated)); "
                + "non-square pixels: \(NumberFormat.grouped(summary.nonSquarePixels))")
        var sizes: [String: Int] = [:]
        for probe in summary.probes {
            if let size = probe.video?.displaySize { sizes[size.description, default: 0] += 1 }
        }
        let topSizes = sizes.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(6)
        if !topSizes.isEmpty {
            lines.append(
                "  display sizes: "
                    + topSizes.map { "\($0.key) \(NumberFormat.percent(Double($0.value) / Double(max(read, 1)), 1))" }
                    .joined(separator: ", "))
        }
        let findings = summary.findings
        if findings.isEmpty {
            lines.append("no mismatches with the manifest")
        } else {
            var counts: [ProbeFinding.Kind: Int] = [:]
            for finding in findings { counts[finding.kind, default: 0] += 1 }
            lines.append(
                "findings: "
                    + ProbeFinding.Kind.allCases.compactMap { kind in
                        counts[kind].map { "\(NumberFormat.grouped($0)) \(kind.rawValue)" }
                    }.joined(separator: ", "))
            for finding in findings.prefix(limit) {
                lines.append("  \(finding.path) (line \(finding.line)): \(finding.kind.rawValue): \(finding.detail)")
            }
            if findings.count > limit {
                lines.append(
                    "  … and \(NumberFormat.grouped(findings.count - limit)) more (all of them with --out FILE)")
            }
        }
        return lines.joined(separator: "\n")
    }

    public static func prepare(_ summary: PrepareSummary, limit: Int = 20) -> String {
        var lines: [String] = []
        let report = summary.report
        if summary.interrupted {
            let finished = report.encoded + report.reused
            lines.append(
                "stopped: \(NumberFormat.grouped(finished)) of \(NumberFormat.grouped(summary.planned)) clips finished "
                    + "(\(NumberFormat.grouped(report.encoded)) encoded in this run), "
                    + "\(NumberFormat.grouped(summary.clipsLeft)) left")
            lines.append(
                "run the same command again to resume: finished clips are kept, "
                    + "unfinished ones are redone; no manifest was written")
            return lines.joined(separator: "\n")
        }
        lines.append(
            "prepared \(NumberFormat.grouped(summary.itemsPrepared)) of "
                + "\(NumberFormat.grouped(summary.items)) "
                + "items into \(NumberFormat.grouped(summary.clips.count)) clips in \(summary.outputDirectory)")
        for split in summary.itemsPerSplit.keys.sorted() {
            let clips = summary.clips.filter { $0.split == split }
            let augmented = clips.filter { !$0.augmentation.isEmpty && !$0.augmentation.hasPrefix("pad=") }.count
            lines.append(
                "  \(split): "
                    + "\(NumberFormat.grouped(summary.itemsPerSplit[split] ?? 0)) items → "
                    + "\(NumberFormat.grouped(clips.count)) "
                    + "clips (\(NumberFormat.grouped(clips.filter { $0.mediaType == .video }.count)) video, "
                    + "\(NumberFormat.grouped(clips.filter { $0.mediaType == .image }.count)) "
                    + "image\(augmented > 0 ? ", \(NumberFormat.grouped(augmented)) augmented" : ""))")
        }
        var clipLine =
            "  clips: \(NumberFormat.grouped(summary.planned)) planned, "
            + "\(NumberFormat.grouped(report.encoded)) encoded now, \(NumberFormat.grouped(report.reused)) reused"
        if report.recoveredFromCrash > 0 {
            clipLine += ", \(NumberFormat.grouped(report.recoveredFromCrash)) redone after an interrupted run"
        }
        clipLine += ", \(NumberFormat.grouped(summary.clipsFailed)) failed"
        lines.append(clipLine)
        let rejected = summary.rejectedRowsPerSplit.values.reduce(0, +)
        lines.append(
            "  items set aside: \(NumberFormat.grouped(summary.itemsQuarantined)) quarantined (quarantine.csv), "
                + "\(NumberFormat.grouped(summary.itemsSkipped)) skipped (skipped.csv); manifest rows rejected: "
                + "\(NumberFormat.grouped(rejected))\(rejected > 0 ? " (rejects-*.csv)" : "")")
        lines.append(
            "  check: \(NumberFormat.grouped(summary.items)) items = \(NumberFormat.grouped(summary.itemsPrepared)) "
                + "prepared + \(NumberFormat.grouped(summary.itemsQuarantined)) "
                + "quarantined + \(NumberFormat.grouped(summary.itemsSkipped)) skipped")
        for (title, items) in [("quarantined", summary.quarantined), ("skipped", summary.skipped)] where !items.isEmpty
        {
            lines.append("\(title):")
            for item in items.prefix(limit) {
                let name = (item.sourcePath as NSString).lastPathComponent
                lines.append(
                    "  \(name) (\(item.split), \((item.manifestPath as NSString).lastPathComponent) "
                        + "line \(item.line), \(item.stage)): \(item.reason)")
            }
            if items.count > limit {
                lines.append("  … and \(NumberFormat.grouped(items.count - limit)) more in \(title).csv")
            }
        }
        if !summary.filesWritten.isEmpty { lines.append("wrote " + summary.filesWritten.joined(separator: ", ")) }
        return lines.joined(separator: "\n")
    }

    public static func merge(_ summary: ShardMergeSummary) -> String {
        var lines = [
            "merged \(summary.shards) shard\(summary.shards == 1 ? "" : "s") into \(summary.outputDirectory): "
                + "\(NumberFormat.grouped(summary.clips)) clips of \(NumberFormat.grouped(summary.items)) items"
        ]
        for split in summary.itemsPerSplit.keys.sorted() {
            lines.append(
                "  \(split): \(NumberFormat.grouped(summary.itemsPerSplit[split] ?? 0)) items → "
                    + "\(NumberFormat.grouped(summary.clipsPerSplit[split] ?? 0)) clips")
        }
        lines.append(
            "  clips: \(NumberFormat.grouped(summary.linked)) hard-linked, "
                + "\(NumberFormat.grouped(summary.alreadyInPlace)) already in place, "
                + "\(NumberFormat.grouped(summary.copied)) copied"
                + (summary.copied > 0 ? " (a shard folder is on another file system)" : ""))
        lines.append(
            "  check: \(NumberFormat.grouped(summary.items)) items = \(NumberFormat.grouped(summary.itemsPrepared)) "
                + "prepared + \(NumberFormat.grouped(summary.itemsQuarantined)) quarantined + "
                + "\(NumberFormat.grouped(summary.itemsSkipped)) skipped, each in exactly one shard")
        lines.append("wrote " + summary.filesWritten.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }
}
