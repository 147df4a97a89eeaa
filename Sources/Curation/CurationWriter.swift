import Foundation
import Manifest
import Support

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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
        splitCSV(result, outcome, rows: result.rows.indices, header: true)
    }

    /// The rows of `outcome` among `rows` (indices into `result.rows`), optionally after the header.
    public static func splitCSV(
        _ result: CurationResult, _ outcome: Outcome, rows: Range<Int>, header withHeader: Bool,
        outputFolder: String? = nil
    ) -> [UInt8] {
        let (header, positions) = splitHeader(result.inputColumns)
        // Relative paths are rewritten to resolve from the output folder, so that the next stage
        // (`wanlora prepare train.csv val.csv`) finds the media wherever `curate` wrote its files.
        let rebase: (String) -> String = { path in
            guard let outputFolder, !path.hasPrefix("/") else { return path }
            return PathMath.relative(PathMath.join(result.mediaRoot, path), from: outputFolder)
        }
        var writer = CSVWriter()
        if withHeader { writer.writeRow(header) }
        for row in result.rows[rows] where row.outcome == outcome {
            var fields = row.fields
            if fields.count < header.count { fields += Array(repeating: "", count: header.count - fields.count) }
            if result.captionColumn < fields.count { fields[result.captionColumn] = row.caption }
            if result.pathColumn < fields.count { fields[result.pathColumn] = rebase(fields[result.pathColumn]) }
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

    /// Writes the three files into `folder` (created when missing), each atomically (a temporary
    /// file renamed into place); returns their paths. The three are built in parallel.
    /// The files `write` makes in the output folder.
    public static let fileNames = ["train.csv", "val.csv", "curation-log.csv"]

    @discardableResult
    public static func write(_ result: CurationResult, to folder: String) throws(CurationError) -> [String] {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw .cannotWrite(path: folder, reason: error.localizedDescription)
        }
        let names = fileNames
        // Pieces built in parallel: train (the largest) in halves, val, the log.
        let middle = result.rows.count / 2
        let pieces: [(file: Int, build: @Sendable () -> [UInt8])] = [
            (0, { splitCSV(result, .train, rows: 0..<middle, header: true, outputFolder: folder) }),
            (0, { splitCSV(result, .train, rows: middle..<result.rows.count, header: false, outputFolder: folder) }),
            (1, { splitCSV(result, .val, rows: result.rows.indices, header: true, outputFolder: folder) }),
            (2, { logCSV(result) }),
        ]
        let contents = OrderedSlots<[UInt8]>(count: pieces.count)
        DispatchQueue.concurrentPerform(iterations: pieces.count) { index in
            contents.set(index, pieces[index].build())
        }
        var written: [String] = []
        for (file, name) in names.enumerated() {
            let path = (folder as NSString).appendingPathComponent(name)
            let parts = pieces.indices.filter { pieces[$0].file == file }.map { contents.get($0)! }
            try writeAtomically(parts, to: path)
            written.append(path)
        }
        return written
    }

    /// Writes the parts, in order, to a temporary file beside `path`, then renames it into place.
    static func writeAtomically(_ parts: [[UInt8]], to path: String) throws(CurationError) {
        let temporary = path + ".partial"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o666)  // less the umask
        guard descriptor >= 0 else { throw .cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        var failure: String?
        for bytes in parts where failure == nil {
            bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let count = systemWrite(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                    if count < 0 {
                        if errno == EINTR { continue }
                        failure = String(cString: strerror(errno))
                        return
                    }
                    offset += count
                }
            }
        }
        close(descriptor)
        if let failure {
            unlink(temporary)
            throw .cannotWrite(path: path, reason: failure)
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw .cannotWrite(path: path, reason: reason)
        }
    }
}

#if canImport(Glibc)
    private let systemWrite = Glibc.write
#elseif canImport(Darwin)
    private let systemWrite = Darwin.write
#endif
