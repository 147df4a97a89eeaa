import Foundation
import Support

/// Reads CSV (RFC 4180) and JSON Lines manifests, validating every row.
///
/// CSV is read in chunks and split on raw bytes; a `String` is built only per field. Memory stays
/// near the size of the accepted rows' text, not twice the file.
public struct ManifestReader: Sendable {
    public var mapping: ColumnMapping
    /// Bytes read from disk at a time.
    public var chunkSize: Int

    public init(mapping: ColumnMapping = ColumnMapping(), chunkSize: Int = 8 << 20) {
        self.mapping = mapping
        self.chunkSize = chunkSize
    }

    /// Reads the manifest at `path`; the format comes from the extension (`.jsonl`/`.ndjson`/`.json`
    /// are JSON Lines, anything else CSV).
    public func read(path: String, progress: ProgressReporter = .silent) throws(ManifestError) -> Manifest {
        let lower = path.lowercased()
        if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") || lower.hasSuffix(".json") {
            return try readJSONLines(path: path, progress: progress)
        }
        return try readCSV(path: path, progress: progress)
    }

    // MARK: CSV

    public func readCSV(path: String, progress: ProgressReporter = .silent) throws(ManifestError) -> Manifest {
        let handle: FileHandle
        let fileSize: Int
        do {
            handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            fileSize = (attributes[.size] as? NSNumber)?.intValue ?? 0
        } catch {
            throw .cannotOpen(path: path, reason: Self.reason(error))
        }
        defer { try? handle.close() }

        var buffer: [UInt8] = []
        buffer.reserveCapacity(min(chunkSize * 2, max(fileSize, 1)))
        var atEOF = false
        var consumedBytes = 0
        var line = 1
        var header: [String]?
        var validator: RowValidator?
        var resolved: ResolvedColumns?
        var items: [ManifestItem] = []
        var rejected: [RejectedRow] = []
        var blankLines = 0
        var fields: [CSVFieldRange] = []
        var isFirstChunk = true

        func readMore() throws(ManifestError) {
            do {
                if let data = try handle.read(upToCount: chunkSize), !data.isEmpty {
                    buffer.append(contentsOf: data)
                } else {
                    atEOF = true
                }
            } catch {
                throw .cannotOpen(path: path, reason: Self.reason(error))
            }
        }

        try readMore()
        while true {
            if isFirstChunk {
                isFirstChunk = false
                if buffer.starts(with: [0xEF, 0xBB, 0xBF]) { buffer.removeFirst(3); consumedBytes += 3 }
                if buffer.isEmpty && atEOF { throw .empty(path: path) }
            }
            var offset = 0
            var pendingError: ManifestError?
            buffer.withUnsafeBufferPointer { bytes in
                while offset < bytes.count {
                    guard let scan = CSVScanner.scanRecord(bytes, from: offset, isFinal: atEOF, fields: &fields) else { break }
                    let recordLine = line
                    line += scan.newlines
                    defer { offset = scan.next }
                    if scan.isBlank {
                        blankLines += 1
                        continue
                    }
                    let raw = {
                        var end = scan.next
                        while end > offset, bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D { end -= 1 }
                        return String(decoding: UnsafeBufferPointer(rebasing: bytes[offset..<end]), as: UTF8.self)
                    }

                    guard let knownHeader = header else {
                        var names: [String] = []
                        for field in fields {
                            names.append(String(decoding: Self.fieldBytes(bytes, field), as: UTF8.self).trimmingASCIIWhitespace())
                        }
                        header = names
                        do throws(ManifestError) {
                            let columns = try mapping.resolve(header: names, source: path)
                            resolved = columns
                            validator = RowValidator(columns: columns)
                        } catch {
                            pendingError = error
                            return
                        }
                        continue
                    }

                    func reject(_ column: String?, _ kind: RejectedRow.Kind, _ detail: String) {
                        rejected.append(RejectedRow(line: recordLine, column: column, kind: kind, detail: detail, raw: raw()))
                    }
                    if let problem = scan.problem {
                        switch problem {
                        case .unterminatedQuote:
                            reject(nil, .malformedQuoting, "a quoted field opened on this row never closes; the rest of the file (\(scan.newlines) line breaks) was read into it")
                        case .textAfterClosingQuote(let field):
                            let name = field < knownHeader.count ? knownHeader[field] : "field \(field + 1)"
                            reject(name, .malformedQuoting, "text follows the closing quote of \(name)")
                        }
                        continue
                    }
                    if fields.count != knownHeader.count {
                        let which = fields.count < knownHeader.count ? "short row" : "long row"
                        reject(nil, .wrongFieldCount, "\(which): \(fields.count) fields, the header has \(knownHeader.count)")
                        continue
                    }
                    var values: [String] = []
                    values.reserveCapacity(fields.count)
                    var badColumn: Int?
                    for (index, field) in fields.enumerated() {
                        let decoded: String?
                        if field.hasEscapedQuotes {
                            decoded = String(validating: CSVScanner.unescaped(bytes, field), as: UTF8.self)
                        } else {
                            decoded = String(validating: Self.fieldBytes(bytes, field), as: UTF8.self)
                        }
                        guard let text = decoded else { badColumn = index; break }
                        values.append(text)
                    }
                    if let badColumn {
                        reject(knownHeader[badColumn], .invalidUTF8, "\(knownHeader[badColumn]) holds bytes that are not valid UTF-8 (re-encode the file as UTF-8)")
                        continue
                    }
                    switch validator!.validate(fields: values, line: recordLine) {
                    case .accepted(let item): items.append(item)
                    case .rejected(let column, let kind, let detail): reject(column, kind, detail)
                    }
                }
            }
            if let pendingError { throw pendingError }
            consumedBytes += offset
            progress.report(ProgressEvent(stage: "read \(Self.fileName(path))", completed: consumedBytes, total: fileSize, unit: "bytes"))
            if atEOF && offset >= buffer.count { break }
            buffer.removeFirst(offset)
            if atEOF {
                // Cannot happen: a final scan always consumes the rest. Guard against an endless loop.
                break
            }
            try readMore()
        }
        guard let header, let resolved else { throw .noHeader(path: path) }
        return Manifest(
            source: path, format: .csv, columns: header, columnMap: resolved, items: items, rejected: rejected,
            blankLines: blankLines)
    }

    // MARK: JSON Lines

    public func readJSONLines(path: String, progress: ProgressReporter = .silent) throws(ManifestError) -> Manifest {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .cannotOpen(path: path, reason: Self.reason(error))
        }
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        if bytes.isEmpty { throw .empty(path: path) }

        struct Row { var line: Int; var raw: String; var object: [String: Any]?; var error: String?; var invalidUTF8: Bool }
        var rows: [Row] = []
        var columns: [String] = []
        var known: Set<String> = []
        var blankLines = 0
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            lineNumber += 1
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            var lineEnd = end
            if lineEnd > start && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            let slice = bytes[start..<lineEnd]
            start = end + 1
            if slice.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { blankLines += 1; continue }
            let raw = String(decoding: slice, as: UTF8.self)
            guard String(validating: slice, as: UTF8.self) != nil else {
                rows.append(Row(line: lineNumber, raw: raw, object: nil, error: "the line holds bytes that are not valid UTF-8", invalidUTF8: true))
                continue
            }
            do {
                let parsed = try JSONSerialization.jsonObject(with: Data(slice), options: [.fragmentsAllowed])
                guard let object = parsed as? [String: Any] else {
                    rows.append(Row(line: lineNumber, raw: raw, object: nil, error: "the line is JSON but not an object {…}", invalidUTF8: false))
                    continue
                }
                for key in object.keys.sorted() where !known.contains(key) {
                    known.insert(key)
                    columns.append(key)
                }
                rows.append(Row(line: lineNumber, raw: raw, object: object, error: nil, invalidUTF8: false))
            } catch {
                rows.append(Row(line: lineNumber, raw: raw, object: nil, error: "the line is not valid JSON", invalidUTF8: false))
            }
        }
        if columns.isEmpty && rows.isEmpty { throw .empty(path: path) }
        let resolved = try mapping.resolve(header: columns, source: path)
        var validator = RowValidator(columns: resolved)
        var items: [ManifestItem] = []
        var rejected: [RejectedRow] = []
        for row in rows {
            guard let object = row.object else {
                rejected.append(RejectedRow(line: row.line, column: nil, kind: row.invalidUTF8 ? .invalidUTF8 : .invalidJSON, detail: row.error ?? "", raw: row.raw))
                continue
            }
            let values = columns.map { Self.jsonText(object[$0]) }
            switch validator.validate(fields: values, line: row.line) {
            case .accepted(let item): items.append(item)
            case .rejected(let column, let kind, let detail):
                rejected.append(RejectedRow(line: row.line, column: column, kind: kind, detail: detail, raw: row.raw))
            }
        }
        progress.report(ProgressEvent(stage: "read \(Self.fileName(path))", completed: bytes.count, total: bytes.count, unit: "bytes"))
        return Manifest(
            source: path, format: .jsonLines, columns: columns, columnMap: resolved, items: items, rejected: rejected,
            blankLines: blankLines)
    }

    // MARK: Helpers

    static func fieldBytes(_ bytes: UnsafeBufferPointer<UInt8>, _ field: CSVFieldRange) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: bytes[field.start..<field.end])
    }

    static func jsonText(_ value: Any?) -> String {
        switch value {
        case nil, is NSNull: return ""
        case let text as String: return text
        case let number as NSNumber:
            if String(cString: number.objCType) == "c" { return number.boolValue ? "true" : "false" }
            let double = number.doubleValue
            if double == double.rounded(), abs(double) < 1e15, !"\(number)".contains(".") { return String(Int64(double)) }
            return String(double)
        case let other?:
            if let data = try? JSONSerialization.data(withJSONObject: other, options: [.sortedKeys]) {
                return String(decoding: data, as: UTF8.self)
            }
            return "\(other)"
        }
    }

    static func fileName(_ path: String) -> String {
        URL(fileURLWithPath: path).lastPathComponent
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? CocoaError, let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError {
            return underlying.localizedDescription
        }
        return (error as NSError).localizedDescription
    }
}
