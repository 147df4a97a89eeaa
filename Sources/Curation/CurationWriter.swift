import Foundation
import Manifest

/// Writes train.csv, val.csv (the input's columns, the caption cleaned, plus weight, quality and
/// group) and curation-log.csv (one line per input row, in line order). The bytes depend only
/// on the result, never on time or thread scheduling.
public enum CurationWriter {
    public static let logHeader = ["line", "id", "path", "outcome", "reason", "detail", "group", "quality"]
    public static let addedColumns = ["weight", "quality", "group"]

    /// The output header and, for each added column, its position (an input column of the same
    /// name, compared case-insensitively, is overwritten rather than repeated).
    public static func splitHeader(_ inputColumns: [String]) -> (header: [String], positions: [Int]) {
        var header = inputColumns
        var positions: [Int] = []
        for name in addedColumns {
            if let existing = header.firstIndex(where: { $0.lowercased() == name }) {
                positions.append(existing)
            } else {
                positions.append(header.count)
                header.append(name)
            }
        }
        return (header, positions)
    }

    public static func splitCSV(_ result: CurationResult, _ outcome: Outcome) -> [UInt8] {
        let (header, positions) = splitHeader(result.inputColumns)
        var writer = CSVWriter()
        writer.writeRow(header)
        for row in result.rows where row.outcome == outcome {
            var fields = row.fields
            if fields.count < header.count { fields += Array(repeating: "", count: header.count - fields.count) }
            if result.captionColumn < fields.count { fields[result.captionColumn] = row.caption }
            fields[positions[0]] = fixed(row.weight ?? 1, 6)
            fields[positions[1]] = row.quality.map { fixed($0, 4) } ?? ""
            fields[positions[2]] = row.group
            writer.writeRow(fields)
        }
        return writer.bytes
    }

    public static func logCSV(_ result: CurationResult) -> [UInt8] {
        var writer = CSVWriter()
        writer.writeRow(logHeader)
        var rejected = result.rejected.sorted { $0.line < $1.line }[...]
        func writeRejected(before line: Int) {
            while let next = rejected.first, next.line < line {
                writer.writeRow([
                    String(next.line), "", "", Outcome.rejected.rawValue, next.kind.rawValue,
                    next.column.map { "\($0): \(next.detail)" } ?? next.detail, "", "",
                ])
                rejected = rejected.dropFirst()
            }
        }
        for row in result.rows {
            writeRejected(before: row.line)
            writer.writeRow([
                String(row.line), row.id ?? "", row.path, row.outcome.rawValue, row.reason, row.detail, row.group,
                row.quality.map { fixed($0, 4) } ?? "",
            ])
        }
        writeRejected(before: Int.max)
        return writer.bytes
    }

    /// Writes the three files into `folder` (created when missing); returns their paths.
    @discardableResult
    public static func write(_ result: CurationResult, to folder: String) throws(CurationError) -> [String] {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw .cannotWrite(path: folder, reason: error.localizedDescription)
        }
        var written: [String] = []
        for (name, bytes) in [("train.csv", splitCSV(result, .train)), ("val.csv", splitCSV(result, .val)), ("curation-log.csv", logCSV(result))] {
            let path = (folder as NSString).appendingPathComponent(name)
            do {
                try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw .cannotWrite(path: path, reason: error.localizedDescription)
            }
            written.append(path)
        }
        return written
    }
}
