import Statistics
import Support

/// The few lines `wanlora analyze` prints: per dataset the headline numbers, then the findings.
public enum TerminalSummary {
    public static func render(_ report: AnalysisReport, limitFindings: Int = 12) -> String {
        let n = NumberFormat.self
        var lines: [String] = []
        for data in report.datasets {
            lines.append(
                "\(data.name): \(n.grouped(data.items)) items (\(n.grouped(data.mediaTypes.images.count)) "
                    + "images, \(n.grouped(data.mediaTypes.videos.count)) videos)"
                    + (data.rejectedRows > 0 ? ", \(n.grouped(data.rejectedRows)) rejected" : "")
                    + "; \(n.percent(data.resolutions.atTarget.share)) at \(report.target)"
                    + "; captions \(n.decimal(data.captions.length.mean, 0)) characters on average"
                    + "; category Gini \(n.decimal(data.categories.gini, 4))")
        }
        if !report.findings.isEmpty {
            lines.append("")
            for finding in report.findings.prefix(limitFindings) {
                lines.append("[\(finding.severity.rawValue)] \(finding.message)")
            }
            if report.findings.count > limitFindings {
                lines.append("… and \(report.findings.count - limitFindings) more in the report")
            }
        }
        return lines.joined(separator: "\n")
    }
}
