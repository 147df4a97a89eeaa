import Curation
import Manifest
import Support

/// The tables `wanlora curate` prints and writes to curation-summary.md.
public enum CurationTables {
    static let n = NumberFormat.self

    /// `timings`: include measured speeds (not in files, whose bytes must not vary between runs).
    public static func all(_ summary: CurationSummary, timings: Bool = false) -> [ReportTable] {
        [reasons(summary), strata(summary), weights(summary), facts(summary, timings: timings)]
    }

    /// Every input row counted once, by where it went and why.
    public static func reasons(_ summary: CurationSummary) -> ReportTable {
        let total = max(summary.rowsRead, 1)
        var rows = summary.reasons.map { entry in
            [
                entry.outcome.rawValue, entry.reason, n.grouped(entry.count),
                n.percent(Double(entry.count) / Double(total)),
            ]
        }
        rows.append(["all", "", n.grouped(summary.rowsRead), n.percent(summary.rowsRead > 0 ? 1 : 0)])
        return ReportTable(
            title: "Where every row went", header: ["outcome", "reason", "rows", "share"], rows: rows,
            note: "rows read \(n.grouped(summary.rowsRead)) = train \(n.grouped(summary.train)) "
                + "+ val \(n.grouped(summary.val)) + dropped \(n.grouped(summary.dropped)) "
                + "+ rejected \(n.grouped(summary.rejected)); curation-log.csv has one line per row")
    }

    /// Items per media type × category: accepted, and how train and val took them.
    public static func strata(_ summary: CurationSummary) -> ReportTable {
        let rows = summary.strata.map { row in
            let kept = row.train + row.val
            return [
                row.mediaType.rawValue, row.category.isEmpty ? "(none)" : row.category, n.grouped(row.accepted),
                n.grouped(row.train), n.grouped(row.val), kept > 0 ? n.percent(Double(row.val) / Double(kept), 1) : "—",
            ]
        }
        return ReportTable(
            title: "Split by media type × category",
            header: ["type", "category", "accepted", "train", "val", "val share"],
            rows: rows,
            note: "val share per stratum is within one item of "
                + "\(n.percent(summary.options.valFraction, 0)) (duplicate groups move whole)")
    }

    /// Class-balanced weights per category by every method; the chosen one is written to `weight`.
    public static func weights(_ summary: CurationSummary) -> ReportTable {
        let rows = summary.classWeights.map { row in
            [
                row.category.isEmpty ? "(none)" : row.category, n.grouped(row.trainItems), n.decimal(row.inverse, 3),
                n.decimal(row.sqrt, 3), n.decimal(row.effective, 3),
            ]
        }
        var note =
            "weights are scaled so that the mean over train rows is 1; "
            + "the weight column holds the \(summary.options.weighting.rawValue) weights"
        if let most = summary.classWeights.first, let least = summary.classWeights.last, least.inverse > 0,
            most.inverse > 0
        {
            note +=
                "; inverse frequency gives \(least.category) "
                + "\(n.decimal(least.inverse / most.inverse, 1))× the weight of \(most.category)"
        }
        return ReportTable(
            title: "Class weights (train categories)",
            header: ["category", "train items", "inverse", "sqrt inverse", "effective (β = \(summary.options.beta))"],
            rows: rows, note: note)
    }

    /// Captions, media, duplicates, outliers and sampling in numbers.
    public static func facts(_ summary: CurationSummary, timings: Bool = false) -> ReportTable {
        var rows: [[String]] = []
        let media = summary.media
        rows.append([
            "media files",
            "\(n.grouped(media.present)) present, \(n.grouped(media.missing)) "
                + "missing, \(n.grouped(media.unreadable)) unreadable"
                + (media.reused > 0 ? "; \(n.grouped(media.reused)) fingerprints reused from an earlier run" : ""),
        ])
        if timings, let rate = media.hashMegabytesPerSecond {
            var text = "\(n.decimal(Double(media.bytesHashed) / 1e6, 1)) MB at \(n.decimal(rate, 0)) MB/s per worker"
            if media.seconds > 0 {
                text +=
                    ", \(n.decimal(Double(media.bytesHashed) / 1e6 / media.seconds, 0)) "
                    + "MB/s for the whole media pass (\(summary.options.workers) workers)"
            }
            rows.append(["content hash (SHA-256)", text])
        }
        let pairs = ["identical file", "same caption", "near duplicate"].map {
            "\(n.grouped(summary.duplicatePairs[$0] ?? 0)) \($0)"
        }
        rows.append(["duplicate pairs", pairs.joined(separator: ", ")])
        rows.append([
            "duplicate groups",
            "\(n.grouped(summary.duplicateGroups)) groups holding "
                + "\(n.grouped(summary.itemsInDuplicateGroups)) items (\(summary.options.duplicatePolicy.rawValue))",
        ])
        rows.append([
            "range outliers",
            "\(n.grouped(summary.rangeOutliers)) "
                + "items (\(summary.options.dropRangeOutliers ? "dropped" : "kept, noted in the log"))",
        ])
        var iqr =
            "\(n.grouped(summary.iqrOutliers)) "
            + "items (\(summary.options.dropIQROutliers ? "dropped" : "kept, noted in the log"))"
        if let fences = summary.durationFences {
            iqr += "; duration fences \(n.decimal(fences.lower, 2)) … \(n.decimal(fences.upper, 2)) s"
        }
        if let fences = summary.captionFences {
            iqr += "; caption fences \(n.decimal(fences.lower, 1)) … \(n.decimal(fences.upper, 1)) characters"
        }
        rows.append(["IQR outliers (k = \(summary.options.iqrFactor))", iqr])
        var captions = "\(n.grouped(summary.captionsCleaned)) changed by cleaning"
        if let limit = summary.options.captionTruncate {
            captions += ", \(n.grouped(summary.captionsTruncated)) truncated to \(n.grouped(limit)) characters"
        }
        rows.append(["captions", captions])
        if let templates = summary.templateCaptions {
            rows.append([
                "template captions",
                "\(n.grouped(templates)) items score 0 on the template-caption part of quality",
            ])
        }
        if let note = summary.samplingNote { rows.append(["sampling", note]) }
        return ReportTable(title: "Rules in numbers", header: ["rule", "result"], rows: rows)
    }

    /// curation-summary.md.
    public static func markdown(_ summary: CurationSummary, source: String) -> String {
        var out =
            "# Curation summary\n\nManifest \(source); seed \(summary.options.seed), "
            + "val fraction \(summary.options.valFraction). Rules: docs/curation.md.\n"
        for table in all(summary) {
            out += "\n## \(table.title)\n\n" + MarkdownReport.render(table)
            if let note = table.note { out += "\n_\(MarkdownReport.escape(note))_\n" }
        }
        return out
    }
}
