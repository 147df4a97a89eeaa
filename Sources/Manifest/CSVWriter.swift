import Foundation

/// Writes RFC 4180 CSV: fields holding a comma, quote, CR or LF (or leading/trailing spaces) are
/// quoted, quotes doubled; lines end in LF; UTF-8 without BOM.
public struct CSVWriter {
    private var output: [UInt8] = []

    public init() {}

    public mutating func writeRow(_ fields: [String]) {
        for (index, field) in fields.enumerated() {
            if index > 0 { output.append(0x2C) }
            Self.appendField(field, to: &output)
        }
        output.append(0x0A)
    }

    public var bytes: [UInt8] { output }

    /// Writes the accumulated rows to `path` atomically (temporary file, then rename).
    public func write(to path: String) throws(ManifestError) {
        do {
            try Data(output).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .cannotWrite(path: path, reason: ManifestReader.reason(error))
        }
    }

    public static func appendField(_ field: String, to output: inout [UInt8]) {
        var needsQuotes = false
        for byte in field.utf8 where byte == 0x2C || byte == 0x22 || byte == 0x0A || byte == 0x0D {
            needsQuotes = true
            break
        }
        if let first = field.utf8.first, let last = field.utf8.last, first == 0x20 || last == 0x20 {
            needsQuotes = true
        }
        guard needsQuotes else {
            output.append(contentsOf: field.utf8)
            return
        }
        output.append(0x22)
        for byte in field.utf8 {
            if byte == 0x22 { output.append(0x22) }
            output.append(byte)
        }
        output.append(0x22)
    }
}

/// Writes a manifest's rejected rows as CSV: `line,column,reason,detail,raw`.
public enum RejectsWriter {
    public static let header = ["line", "column", "reason", "detail", "raw"]

    public static func csv(_ rejected: [RejectedRow]) -> CSVWriter {
        var writer = CSVWriter()
        writer.writeRow(header)
        for row in rejected {
            writer.writeRow([String(row.line), row.column ?? "", row.kind.rawValue, row.detail, row.raw])
        }
        return writer
    }

    public static func write(_ rejected: [RejectedRow], to path: String) throws(ManifestError) {
        try csv(rejected).write(to: path)
    }
}
