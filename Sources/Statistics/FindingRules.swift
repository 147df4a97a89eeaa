import Manifest
import Support

/// Turns statistics into plain statements with severity and numbers. Each rule names its
/// threshold here, so the report can be reproduced and argued with.
public enum FindingRules {
    /// A split is "held out" (validation, test) when its name says so.
    static func isHeldOut(_ name: String) -> Bool {
        let lower = name.lowercased()
        return ["val", "valid", "validation", "test", "eval", "dev", "holdout"].contains(where: {
            lower == $0 || lower.hasPrefix($0 + "_") || lower.hasSuffix("_" + $0)
        })
    }

    static let imbalanceRatioWarning = 10.0
    static let giniWarning = 0.3
    static let distributionShiftWarning = 0.05

    static func derive(_ report: AnalysisReport, inputs: [NamedManifest]) -> [Finding] {
        var findings: [Finding] = []
        let n = NumberFormat.self
        let byName = Dictionary(inputs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

        // Rejected rows.
        for summary in report.rejects where summary.rejected > 0 {
            let reasons = summary.reasons.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { "\($0.key): \(n.grouped($0.value))" }.joined(separator: ", ")
            let examples =
                byName[summary.dataset]?.manifest.rejected.prefix(5).map {
                    "\(summary.source):\($0.line) \($0.column.map { "[\($0)] " } ?? "")\($0.detail)"
                } ?? []
            findings.append(
                Finding(
                    severity: .warning, code: "rejected_rows", dataset: summary.dataset,
                    message:
                        "\(n.grouped(summary.rejected)) of \(n.grouped(summary.rowsRead)) rows of \(summary.dataset) "
                        + "were rejected (\(reasons)); they are listed with line "
                        + "numbers in the rejects file and excluded from every statistic",
                    examples: Array(examples)))
        }

        let anyFullyConverted = report.datasets.contains { $0.items > 0 && $0.resolutions.needConversion.count == 0 }
        for data in report.datasets where data.items > 0 {
            let name = data.name
            // Resolution.
            let convert = data.resolutions.needConversion
            if convert.count > 0 {
                let heldOut = isHeldOut(name)
                let severity: Severity = heldOut && (anyFullyConverted || convert.share > 0.5) ? .critical : .warning
                var message =
                    "\(n.percent(convert.share)) of \(name) (\(n.grouped(convert.count)) "
                    + "of \(n.grouped(data.items)) items) is not at the training resolution \(report.target)"
                let kinds = data.resolutions.conversion
                message +=
                    " (downscale \(n.grouped(kinds["downscale"] ?? 0)), upscale \(n.grouped(kinds["upscale"] ?? 0)), "
                    + "reframe to another aspect ratio \(n.grouped(kinds["reframe"] ?? 0)))"
                message +=
                    heldOut
                    ? "; validation measured on unconverted media is not comparable "
                        + "to training: run `wanlora prepare` on this split too"
                    : "; `wanlora prepare` converts it"
                let examples = data.resolutions.distribution.filter { $0.label != report.target }.prefix(3).map {
                    "\($0.label): \(n.grouped($0.count))"
                }
                findings.append(
                    Finding(
                        severity: severity, code: "not_at_target_resolution", dataset: name, message: message,
                        examples: Array(examples)))
            }

            // Category imbalance.
            if let ratio = data.categories.maxMinRatio, ratio >= imbalanceRatioWarning,
                let most = data.categories.distribution.first, let least = data.categories.distribution.last
            {
                findings.append(
                    Finding(
                        severity: .warning, code: "category_imbalance", dataset: name,
                        message:
                            "category imbalance in \(name): \(most.label) (\(n.grouped(most.count))) vs \(least.label) "
                            + "(\(n.grouped(least.count))) is \(n.decimal(ratio, 1)):1, "
                            + "Gini \(n.decimal(data.categories.gini, 4)); "
                            + "use class-balanced sampling weights (`wanlora curate`) or augmentation",
                        examples: []))
            } else if let gini = data.categories.gini, gini >= giniWarning {
                findings.append(
                    Finding(
                        severity: .warning, code: "category_imbalance", dataset: name,
                        message: "category counts in \(name) are unequal: Gini \(n.decimal(gini, 4))", examples: []))
            }
            if !data.categories.minority.isEmpty {
                let list = data.categories.minority.map { "\($0.label) (\(n.grouped($0.count)))" }.joined(
                    separator: ", ")
                findings.append(
                    Finding(
                        severity: .info, code: "minority_categories", dataset: name,
                        message: "minority categories in \(name) (under a quarter of an even share): \(list)",
                        examples: []))
            }

            // Captions.
            if data.captions.overLimit > 0 {
                findings.append(
                    Finding(
                        severity: .warning, code: "long_captions", dataset: name,
                        message: "\(n.grouped(data.captions.overLimit)) captions in \(name) are longer than "
                            + "\(n.grouped(data.captions.lengthLimit)) characters (longest "
                            + "\(n.grouped(Int(data.captions.length.max ?? 0)))); "
                            + "the text encoder keeps 512 tokens (256 on small GPUs), so their ends are cut",
                        examples: data.captions.longest.prefix(3).map {
                            "\($0.path) (line \($0.line)): \(n.grouped(Int($0.value))) characters"
                        }))
            }
            if data.captions.normalised > 0 {
                findings.append(
                    Finding(
                        severity: .info, code: "non_nfc_captions", dataset: name,
                        message:
                            "\(n.grouped(data.captions.normalised)) captions in \(name) are not in Unicode NFC (e.g. "
                            + "decomposed Hangul); they were normalised before "
                            + "measuring and should be normalised before training",
                        examples: []))
            }

            // Durations.
            let videos = data.mediaTypes.videos.count
            if videos > 0 {
                if data.durations.shorterThan81Frames > 0 {
                    findings.append(
                        Finding(
                            severity: .warning, code: "short_videos", dataset: name,
                            message:
                                "\(n.grouped(data.durations.shorterThan81Frames)) videos in \(name) are shorter than "
                                + "one 81-frame clip at 16 fps (5.06 s); "
                                + "\(n.grouped(data.durations.shorterThan49Frames)) "
                                + "are shorter than a 49-frame clip (3.06 s)",
                            examples: []))
                }
                if data.durations.outliersAbove > 0, let fence = data.durations.upperFence {
                    findings.append(
                        Finding(
                            severity: .info, code: "duration_outliers", dataset: name,
                            message: "\(n.grouped(data.durations.outliersAbove)) videos in \(name) are longer than the "
                                + "upper Tukey fence \(n.decimal(fence, 2)) s (Q3 + 1.5·IQR); "
                                + "the longest is \(n.decimal(data.durations.seconds.max ?? 0, 2)) s",
                            examples: data.durations.longest.prefix(3).map {
                                "\($0.path) (line \($0.line)): \(n.decimal($0.value, 2)) s"
                            }))
                }
            }

            // Media type balance.
            if let ratio = data.mediaTypes.imageToVideoRatio, ratio > 1.5 || ratio < 1 / 1.5 {
                findings.append(
                    Finding(
                        severity: .info, code: "media_type_balance", dataset: name,
                        message: "\(name) has \(n.grouped(data.mediaTypes.images.count)) "
                            + "images and \(n.grouped(data.mediaTypes.videos.count)) videos (\(n.decimal(ratio, 2)):1)",
                        examples: []))
            }
        }

        // Leaks between splits.
        for overlap in report.overlaps where overlap.sharedPaths > 0 {
            findings.append(
                Finding(
                    severity: .critical, code: "split_leak", dataset: nil,
                    message: "\(n.grouped(overlap.sharedPaths)) items appear in both \(overlap.a) and \(overlap.b): "
                        + "validation on them measures memorisation; re-split with `wanlora curate`",
                    examples: overlap.examples))
        }

        // Distribution shift between splits.
        let roles = Dictionary(inputs.map { ($0.name, $0.role) }, uniquingKeysWith: { first, _ in first })
        for comparison in report.comparisons where roles[comparison.a] == .split && roles[comparison.b] == .split {
            if let tvd = comparison.categoryTVD, tvd >= distributionShiftWarning {
                findings.append(
                    Finding(
                        severity: .warning, code: "category_shift", dataset: nil,
                        message:
                            "the category shares of \(comparison.a) and \(comparison.b) differ by a total variation "
                            + "distance of \(n.decimal(tvd, 3)) "
                            + "(≥ \(distributionShiftWarning)); stratify the split by category",
                        examples: []))
            }
            if let tvd = comparison.mediaTypeTVD, tvd >= distributionShiftWarning {
                findings.append(
                    Finding(
                        severity: .warning, code: "media_type_shift", dataset: nil,
                        message: "the image/video shares of \(comparison.a) and \(comparison.b) "
                            + "differ by \(n.decimal(tvd * 100, 2)) points; stratify the split by media type",
                        examples: []))
            }
        }
        return findings.sorted { $0.severity < $1.severity }
    }
}
