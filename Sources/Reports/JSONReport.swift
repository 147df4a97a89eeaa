import Foundation
import Statistics

/// `report.json`: the `AnalysisReport` as documented in docs/report-schema.md
/// (snake_case keys, sorted, shares in 0…1, durations in seconds, lengths in characters).
public enum JSONReport {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    public static func render(_ report: AnalysisReport) throws -> Data {
        try encoder().encode(report)
    }

}
