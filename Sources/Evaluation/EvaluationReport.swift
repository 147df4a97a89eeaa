import Foundation
import Support

/// Renders metrics.json for people: a table for the terminal and a self-contained HTML page (no scripts,
/// no network) with the same numbers, a chart per metric and the definitions.
public enum EvaluationReport {
    /// One row per category and one for all of them, values as "generated (reference)".
    public static func table(_ metrics: EvaluationMetrics) -> [[String]] {
        var rows = [
            [
                "category", "videos gen/ref", "FVD ↓", "IS ↑", "CLIP score ↑", "temporal ↑", "LPIPS to ref ↓",
                "LPIPS diversity",
            ]
        ]
        for group in metrics.categories + [metrics.overall] {
            rows.append([
                group.category ?? "all",
                "\(NumberFormat.grouped(group.generatedVideos))/\(NumberFormat.grouped(group.referenceVideos))",
                fvdText(group.fvd),
                sides(group.inceptionScore?.generated?.mean, group.inceptionScore?.reference?.mean, 2),
                sides(group.clipScore?.generated?.mean, group.clipScore?.reference?.mean, 2),
                sides(group.temporalConsistency?.generated?.mean, group.temporalConsistency?.reference?.mean, 4),
                group.lpips.map { NumberFormat.decimal($0.toReference?.mean, 4) } ?? "—",
                group.lpips.map { NumberFormat.decimal($0.diversity?.mean, 4) } ?? "—",
            ])
        }
        return rows
    }

    static func fvdText(_ fvd: EvaluationMetrics.FVD?) -> String {
        guard let fvd else { return "—" }
        guard let value = fvd.value else { return "n/a" }
        return NumberFormat.decimal(value, 1) + (fvd.stable ? "" : " *")
    }

    static func sides(_ generated: Double?, _ reference: Double?, _ places: Int) -> String {
        guard generated != nil || reference != nil else { return "—" }
        return NumberFormat.decimal(generated, places) + " (" + NumberFormat.decimal(reference, places) + ")"
    }

    /// The table as aligned text columns.
    public static func terminal(_ metrics: EvaluationMetrics) -> String {
        let rows = table(metrics)
        let widths = (0..<rows[0].count).map { column in rows.map { displayWidth($0[column]) }.max() ?? 0 }
        var lines = rows.map { row in
            row.enumerated().map { index, cell in
                let padding = String(repeating: " ", count: widths[index] - displayWidth(cell))
                return index == 0 ? cell + padding : padding + cell
            }.joined(separator: "  ")
        }
        lines.insert(String(repeating: "─", count: displayWidth(lines[0])), at: 1)
        var text = lines.joined(separator: "\n")
        text +=
            "\nvalues: generated (reference clips); IS, CLIP score and temporal "
            + "consistency of the reference are the ceiling to compare with."
        if metrics.categories.contains(where: { $0.fvd?.stable == false && $0.fvd?.value != nil })
            || metrics.overall.fvd?.stable == false
        {
            text +=
                "\n* fewer than "
                + "\(NumberFormat.grouped(metrics.settings.fvdMinSamples)) clips per set: "
                + "FVD is biased upward; compare only at equal sample counts."
        }
        return text
    }

    public static func html(_ metrics: EvaluationMetrics) -> String {
        var body = "<h1>Evaluation</h1>"
        let inputs = metrics.inputs
        body +=
            "<p class=\"meta\">\(NumberFormat.grouped(inputs.generatedVideos)) "
            + "generated videos from <code>\(HTMLText.escape(inputs.generatedDir))</code> "
            + "against \(NumberFormat.grouped(inputs.referenceVideosSelected)) "
            + "reference clips of <code>\(HTMLText.escape(inputs.referenceManifest))</code> "
            + "(\(NumberFormat.grouped(inputs.referenceVideoRows)) video rows; "
            + "\(NumberFormat.grouped(inputs.pairedVideos)) generated videos paired with the clip of their prompt). "
            + "Computed \(HTMLText.escape(metrics.created)) on \(HTMLText.escape(metrics.device)) "
            + "in \(NumberFormat.decimal(metrics.seconds, 1)) "
            + "s by engine \(HTMLText.escape(metrics.engineVersion)).</p>"
        if !metrics.warnings.isEmpty || !inputs.skipped.isEmpty {
            body += "<h2>Warnings</h2><ul class=\"warnings\">"
            for warning in metrics.warnings {
                body +=
                    "<li><span class=\"badge\">\(HTMLText.escape(warning.code))</span> "
                    + "\(HTMLText.inline(warning.message))</li>"
            }
            for skipped in inputs.skipped {
                body +=
                    "<li><span class=\"badge\">skipped</span> \(HTMLText.escape(skipped.set)) "
                    + "<code>\(HTMLText.escape(skipped.path))</code>: \(HTMLText.escape(skipped.reason))</li>"
            }
            body += "</ul>"
        }
        body += "<h2>Metrics per category</h2>"
        let rows = table(metrics)
        body +=
            "<div class=\"scroll\" lang=\"ko\"><table><thead><tr>"
            + rows[0].map { "<th>\(HTMLText.escape($0))</th>" }.joined()
            + "</tr></thead><tbody>"
        for (index, row) in rows.dropFirst().enumerated() {
            let overall = index == rows.count - 2
            body +=
                "<tr\(overall ? " class=\"overall\"" : "")>"
                + row.enumerated().map { column, cell in
                    column == 0 ? "<th>\(HTMLText.escape(cell))</th>" : "<td>\(HTMLText.escape(cell))</td>"
                }.joined() + "</tr>"
        }
        body += "</tbody></table></div>"
        body +=
            "<p class=\"note\">Values are for the generated videos, "
            + "the reference clips' own value in parentheses. * FVD from fewer than "
            + "\(NumberFormat.grouped(metrics.settings.fvdMinSamples)) "
            + "clips per set: biased upward, compare only at equal sample counts.</p>"

        let groups = metrics.categories
        let charts: [(String, (EvaluationMetrics.Group) -> Double?, (EvaluationMetrics.Group) -> Double?)] = [
            ("FVD (lower is better)", { $0.fvd?.value }, { _ in nil }),
            (
                "CLIP score, 0–100 (generated, reference)", { $0.clipScore?.generated?.mean },
                { $0.clipScore?.reference?.mean }
            ),
            (
                "Inception Score (generated, reference)", { $0.inceptionScore?.generated?.mean },
                { $0.inceptionScore?.reference?.mean }
            ),
            (
                "Temporal consistency, cosine (generated, reference)", { $0.temporalConsistency?.generated?.mean },
                { $0.temporalConsistency?.reference?.mean }
            ),
            ("LPIPS diversity between generated videos", { $0.lpips?.diversity?.mean }, { _ in nil }),
        ]
        for (title, generated, reference) in charts where groups.contains(where: { generated($0) != nil }) {
            body +=
                "<figure lang=\"ko\"><figcaption lang=\"en\">\(HTMLText.escape(title))</figcaption>"
                + barChart(
                    labels: groups.map { $0.category ?? "all" }, generated: groups.map(generated),
                    reference: groups.map(reference))
                + "</figure>"
        }
        body += """
            <h2>Definitions</h2>
            <dl>
            <dt>FVD</dt><dd>Fréchet distance between Gaussians fitted to the Kinetics-400 I3D logits (time-averaged) \
            of the first \(metrics.settings.fvdFrames) frames of each generated and reference clip, frames resized to \
            224×224 as the reference FVD code does: |μ₁−μ₂|² + tr(Σ₁+Σ₂−2(Σ₁Σ₂)^½). 0 for identical distributions.</dd>
            <dt>IS</dt><dd>Inception Score: exp(E KL(p(y|x) ‖ p(y))) of Inception-v3's 1,000 ImageNet classes over \
            \(metrics.settings.framesPerVideo) evenly spaced frames per video, \
            mean of \(metrics.settings.isSplits) splits. Between 1 and 1,000; grows with the number of frames.</dd>
            <dt>CLIP score</dt><dd>100·max(cos(text, frame), 0) averaged over the sampled frames, \
            text = the prompt (generated) or caption (reference), \
            embedded by a multilingual encoder in CLIP's space.</dd>
            <dt>Temporal consistency</dt><dd>Mean cosine similarity of the CLIP \
            image embeddings of consecutive frames; 1 for a still picture.</dd>
            <dt>LPIPS</dt><dd>Learned perceptual distance (\(HTMLText.escape(metrics.settings.lpipsNet)) backbone, \
            v0.1 linear layers), 0 for identical frames: to the reference clip a generated video was prompted from, \
            and between pairs of generated videos of one category (diversity: higher means more varied).</dd>
            </dl>
            <p class="note">docs/evaluate.md gives every definition, the preprocessing and the weight files.</p>
            """
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta \
            name="viewport" content="width=device-width, initial-scale=1">
            <title>wanlora evaluation</title>
            <style>
            body{font-family:\(HTMLText.fontFamily);max-width:1100px;margin:auto;padding:1rem;color:#222}
            .meta,.note{color:#555;font-size:.9rem;overflow-wrap:anywhere} code{font-size:.85rem}
            table{border-collapse:collapse;font-size:.9rem} th,td{padding:.3rem \
            .6rem;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
            th:first-child{text-align:left} tr.overall{font-weight:bold;background:#f4f4f4} .scroll{overflow-x:auto}
            .warnings li{margin:.3rem 0} .badge{background:#fde7c7;border-radius:3px;padding:0 .3rem;font-size:.8rem}
            figure{margin:1rem 0} figcaption{font-weight:600;margin-bottom:.3rem} dt{font-weight:600;margin-top:.5rem}
            </style></head><body>
            \(body)
            </body></html>

            """
    }

    /// Horizontal bars, one group per label: the generated videos' value and the reference's (when given).
    static func barChart(labels: [String], generated: [Double?], reference: [Double?]) -> String {
        var series = [SVGChart.Series(name: "generated", values: generated)]
        if reference.contains(where: { $0 != nil }) { series.append(.init(name: "reference", values: reference)) }
        return SVGChart.groupedBars(labels: labels, series: series) {
            NumberFormat.decimal($0, abs($0) >= 100 ? 1 : 3)
        }
    }

    /// Terminal columns of `text`: Hangul, CJK ideographs and full-width forms take two (category names
    /// are Korean), everything else one.
    static func displayWidth(_ text: String) -> Int {
        text.unicodeScalars.reduce(0) { total, scalar in
            switch scalar.value {
            case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA960...0xA97F,
                0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60, 0xFFE0...0xFFE6:
                return total + 2
            case 0x0300...0x036F, 0x1160...0x11FF, 0x200B...0x200F:
                return total  // combining marks, Hangul medial/final jamo of a decomposed syllable
            default:
                return total + 1
            }
        }
    }

}
