import Foundation

/// A whole small CSV file as strings: its header and its records with their line numbers.
///
/// For files that are not manifests (prompt lists, a caption column): the same RFC 4180 rules as
/// `ManifestReader` (quoted commas, doubled quotes, line breaks inside quotes, CRLF, a UTF-8 BOM),
/// without its column mapping and validation. Blank lines are counted, not returned.
public struct CSVTable: Sendable, Equatable {
    public struct Record: Sendable, Equatable {
        /// 1-based line on which the record starts.
        public var line: Int
        public var fields: [String]
        /// Why the record is malformed (unclosed quote, text after a closing quote), if it is.
        public var problem: String?
    }

    public var header: [String]
    public var records: [Record]
    public var blankLines: Int

    /// Index of the column named `name` (case-insensitive, surrounding spaces ignored).
    public func column(_ name: String) -> Int? {
        let wanted = name.lowercased()
        return header.firstIndex { $0.trimmingCharacters(in: .whitespaces).lowercased() == wanted }
    }

    public static func read(path: String) throws(ManifestError) -> CSVTable {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .cannotOpen(path: path, reason: (error as NSError).localizedDescription)
        }
        return try parse(Array(data), source: path)
    }

    public static func parse(_ input: [UInt8], source: String) throws(ManifestError) -> CSVTable {
        var bytes = input
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        if bytes.allSatisfy({ $0 == 0x0A || $0 == 0x0D || $0 == 0x20 }) { throw .empty(path: source) }
        var header: [String]?
        var records: [Record] = []
        var blank = 0
        bytes.withUnsafeBufferPointer { buffer in
            var offset = 0
            var line = 1
            var ranges: [CSVFieldRange] = []
            while offset < buffer.count {
                guard let scan = CSVScanner.scanRecord(buffer, from: offset, isFinal: true, fields: &ranges) else {
                    break
                }
                defer {
                    line += scan.newlines
                    offset = scan.next
                }
                if scan.isBlank {
                    blank += 1
                    continue
                }
                let fields = ranges.map { range in
                    let raw =
                        range.hasEscapedQuotes
                        ? CSVScanner.unescaped(buffer, range)
                        : Array(UnsafeBufferPointer(rebasing: buffer[range.start..<range.end]))
                    return String(decoding: raw, as: UTF8.self)
                }
                if header == nil {
                    header = fields.map { $0.trimmingCharacters(in: .whitespaces) }
                    continue
                }
                var problem: String?
                switch scan.problem {
                case .unterminatedQuote: problem = "a quoted field is never closed"
                case .textAfterClosingQuote(let field): problem = "text follows the closing quote of field \(field + 1)"
                case nil: break
                }
                records.append(Record(line: line, fields: fields, problem: problem))
            }
        }
        guard let header else { throw .noHeader(path: source) }
        return CSVTable(header: header, records: records, blankLines: blank)
    }
}
