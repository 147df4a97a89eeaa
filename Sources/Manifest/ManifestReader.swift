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
        var resolved: ResolvedColumns?
        var items: [ManifestItem] = []
        var rejected: [RejectedRow] = []
        var blankLines = 0
        var duplicates = RowValidator.DuplicatePaths()
        var reserved = false
        var isFirstChunk = true
        var records: [CSVRecord] = []
        var fields: [CSVFieldRange] = []
        var scratch: [CSVFieldRange] = []

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
            // 1. Split the complete records of the buffer (sequential: quotes carry state).
            records.removeAll(keepingCapacity: true)
            fields.removeAll(keepingCapacity: true)
            var offset = 0
            buffer.withUnsafeBufferPointer { bytes in
                while offset < bytes.count {
                    guard let scan = CSVScanner.scanRecord(bytes, from: offset, isFinal: atEOF, fields: &scratch) else { break }
                    records.append(CSVRecord(
                        start: offset, next: scan.next, line: line, problem: scan.problem, isBlank: scan.isBlank,
                        firstField: fields.count, fieldCount: scratch.count))
                    fields.append(contentsOf: scratch)
                    line += scan.newlines
                    offset = scan.next
                }
            }
            // 2. The header, once.
            var firstRecord = 0
            if header == nil {
                while firstRecord < records.count && records[firstRecord].isBlank {
                    blankLines += 1
                    firstRecord += 1
                }
                if firstRecord < records.count {
                    let record = records[firstRecord]
                    let names = buffer.withUnsafeBufferPointer { bytes in
                        fields[record.firstField..<(record.firstField + record.fieldCount)].map {
                            String(decoding: Self.fieldBytes(bytes, $0), as: UTF8.self).trimmingASCIIWhitespace()
                        }
                    }
                    header = names
                    resolved = try mapping.resolve(header: names, source: path)
                    firstRecord += 1
                }
            }
            // 3. Fields to strings and validation, in parallel slices of records.
            if !reserved, offset > 0 {
                // Room for the whole file's paths, estimated from the first chunk's rows per byte,
                reserved = true
                let estimate = Double(records.count) * Double(max(fileSize, offset)) / Double(offset) * 1.05
                duplicates.reserve(Int(min(estimate, 50_000_000)))
                // and for the items: growing by doubling would hold the old and the new array at once.
                items.reserveCapacity(Int(min(estimate, 50_000_000)))
            }
            if let header, let resolved, firstRecord < records.count {
                let outcomes = Self.decodeRecords(
                    buffer: buffer, records: records[firstRecord...], fields: fields, header: header,
                    validator: RowValidator(columns: resolved))
                // 4. In file order: blank lines, duplicates, rejects.
                for outcome in outcomes {
                    switch outcome {
                    case .blank: blankLines += 1
                    case .rejected(let row): rejected.append(row)
                    case .accepted(let item, let pathHash):
                        if duplicates.check(item, pathHash: pathHash) != nil {
                            let first = duplicates.firstLine(of: item.path) ?? 0
                            rejected.append(RejectedRow(
                                line: item.line, column: resolved.name(of: .path), kind: .duplicatePath,
                                detail: "path \"\(item.path)\" already appeared at line \(first)",
                                raw: Self.rawText(fields: item.fields)))
                        } else {
                            items.append(item)
                        }
                    }
                }
            }
            consumedBytes += offset
            progress.report(ProgressEvent(stage: "read \(Self.fileName(path))", completed: consumedBytes, total: fileSize, unit: "bytes"))
            if atEOF { break }  // a final scan consumes everything
            buffer.removeFirst(offset)
            try readMore()
        }
        guard let header, let resolved else { throw consumedBytes <= 3 ? .empty(path: path) : .noHeader(path: path) }
        return Manifest(
            source: path, format: .csv, columns: header, columnMap: resolved, items: items, rejected: rejected,
            blankLines: blankLines)
    }

    /// One record's place in the buffer.
    struct CSVRecord {
        var start: Int
        var next: Int
        var line: Int
        var problem: CSVRecordProblem?
        var isBlank: Bool
        var firstField: Int
        var fieldCount: Int
    }

    enum RecordOutcome: Sendable {
        case blank
        /// With the hash of its path, for the duplicate check (`RowValidator.DuplicatePaths`).
        case accepted(ManifestItem, pathHash: UInt64)
        case rejected(RejectedRow)
    }

    /// Decodes and validates records on all cores; results come back in record order.
    static func decodeRecords(
        buffer: [UInt8], records: ArraySlice<CSVRecord>, fields: [CSVFieldRange], header: [String], validator: RowValidator
    ) -> [RecordOutcome] {
        let count = records.count
        let workers = count < 512 ? 1 : ProcessInfo.processInfo.activeProcessorCount
        let results = OrderedSlots<[RecordOutcome]>(count: workers)
        let base = records.startIndex
        buffer.withUnsafeBufferPointer { bytes in
            let shared = UnsafeSendable(bytes)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let lower = base + worker * count / workers, upper = base + (worker + 1) * count / workers
                var outcomes: [RecordOutcome] = []
                outcomes.reserveCapacity(upper - lower)
                for index in lower..<upper {
                    outcomes.append(decode(shared.value, records[index], fields: fields, header: header, validator: validator))
                }
                results.set(worker, outcomes)
            }
        }
        return results.values().flatMap { $0 }
    }

    static func decode(
        _ bytes: UnsafeBufferPointer<UInt8>, _ record: CSVRecord, fields: [CSVFieldRange], header: [String], validator: RowValidator
    ) -> RecordOutcome {
        if record.isBlank { return .blank }
        func reject(_ column: String?, _ kind: RejectedRow.Kind, _ detail: String) -> RecordOutcome {
            var end = record.next
            while end > record.start, bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D { end -= 1 }
            let raw = String(decoding: UnsafeBufferPointer(rebasing: bytes[record.start..<end]), as: UTF8.self)
            return .rejected(RejectedRow(line: record.line, column: column, kind: kind, detail: detail, raw: raw))
        }
        if let problem = record.problem {
            switch problem {
            case .unterminatedQuote:
                return reject(nil, .malformedQuoting, "a quoted field opened on this row never closes; the rest of the file was read into it")
            case .textAfterClosingQuote(let field):
                let name = field < header.count ? header[field] : "field \(field + 1)"
                return reject(name, .malformedQuoting, "text follows the closing quote of \(name)")
            }
        }
        if record.fieldCount != header.count {
            let which = record.fieldCount < header.count ? "short row" : "long row"
            return reject(nil, .wrongFieldCount, "\(which): \(record.fieldCount) fields, the header has \(header.count)")
        }
        var values: [String] = []
        values.reserveCapacity(record.fieldCount)
        for index in 0..<record.fieldCount {
            let field = fields[record.firstField + index]
            let decoded: String? = field.hasEscapedQuotes
                ? CSVScanner.unescaped(bytes, field).withUnsafeBufferPointer { makeString($0) }
                : makeString(fieldBytes(bytes, field))
            guard let text = decoded else {
                return reject(header[index], .invalidUTF8, "\(header[index]) holds bytes that are not valid UTF-8 (re-encode the file as UTF-8)")
            }
            values.append(text)
        }
        switch validator.validate(fields: values, line: record.line) {
        case .accepted(let item): return .accepted(item, pathHash: RowValidator.DuplicatePaths.hash(item.path))
        case .rejected(let column, let kind, let detail): return reject(column, kind, detail)
        }
    }

    /// A `String` from bytes, or nil when they are not valid UTF-8. ASCII (most fields) takes a
    /// specialised path; the generic validating initialiser costs a metadata lookup per call.
    @inline(__always)
    static func makeString(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard let base = bytes.baseAddress else { return "" }
        let raw = UnsafeRawPointer(base)
        var offset = 0
        var high: UInt64 = 0
        while offset + 8 <= bytes.count {
            high |= raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        while offset < bytes.count {
            high |= UInt64(base[offset])
            offset += 1
        }
        if high & 0x8080_8080_8080_8080 == 0 { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    /// A row's fields joined back as CSV (for the rejects file).
    static func rawText(fields: [String]) -> String {
        var bytes: [UInt8] = []
        for (index, field) in fields.enumerated() {
            if index > 0 { bytes.append(0x2C) }
            CSVWriter.appendField(field, to: &bytes)
        }
        return String(decoding: bytes, as: UTF8.self)
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
        let validator = RowValidator(columns: resolved)
        var duplicates = RowValidator.DuplicatePaths()
        var items: [ManifestItem] = []
        var rejected: [RejectedRow] = []
        for row in rows {
            guard let object = row.object else {
                rejected.append(RejectedRow(line: row.line, column: nil, kind: row.invalidUTF8 ? .invalidUTF8 : .invalidJSON, detail: row.error ?? "", raw: row.raw))
                continue
            }
            let values = columns.map { Self.jsonText(object[$0]) }
            switch validator.validate(fields: values, line: row.line) {
            case .accepted(let item):
                if duplicates.check(item) != nil {
                    let first = duplicates.firstLine(of: item.path) ?? 0
                    rejected.append(RejectedRow(
                        line: row.line, column: resolved.name(of: .path), kind: .duplicatePath,
                        detail: "path \"\(item.path)\" already appeared at line \(first)", raw: row.raw))
                } else {
                    items.append(item)
                }
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
