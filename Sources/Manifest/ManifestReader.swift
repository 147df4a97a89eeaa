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
    ///
    /// `captions`: a CSV manifest's captions go to this sink instead of into the items (see
    /// `CaptionSink`); JSON Lines keeps them as strings (`Manifest.captionsSentToSink` says which).
    public func read(path: String, progress: ProgressReporter = .silent, captions: (any CaptionSink)? = nil)
        throws(ManifestError) -> Manifest
    {
        let lower = path.lowercased()
        let manifest =
            lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") || lower.hasSuffix(".json")
            ? try readJSONLines(path: path, progress: progress)
            : try readCSV(path: path, progress: progress, captions: captions)
        try Self.checkDurationColumn(manifest)
        return manifest
    }

    /// Video rows rejected only because the file has no duration column are a column problem, not
    /// thousands of row problems: stop and name the headers that were not recognised.
    static func checkDurationColumn(_ manifest: Manifest) throws(ManifestError) {
        guard manifest.columnMap[.duration] == nil else { return }
        let videoRows = manifest.rejected.count {
            $0.kind == .missingValue && $0.column == CanonicalColumn.duration.rawValue
        }
        guard videoRows > 0 else { return }
        throw .durationColumnMissing(
            videoRows: videoRows,
            unmapped: ColumnMapping.unmappedHeaders(manifest.columns, resolved: manifest.columnMap),
            source: manifest.source)
    }

    // MARK: CSV

    public func readCSV(path: String, progress: ProgressReporter = .silent, captions sink: (any CaptionSink)? = nil)
        throws(ManifestError) -> Manifest
    {
        let source = try CSVByteSource(path: path, chunkSize: chunkSize)
        defer { source.close() }
        let fileSize = source.size

        var line = 1
        var header: [String]?
        var resolved: ResolvedColumns?
        var items: [ManifestItem] = []
        var rejected: [RejectedRow] = []
        var blankLines = 0
        var duplicates = RowValidator.DuplicatePaths()
        var foundDuplicates = false
        var reserved = false
        var records: [CSVRecord] = []
        var fields: [CSVFieldRange] = []
        var scratch: [CSVFieldRange] = []

        while let window = try source.next() {
            // 1. Split the complete records of the window (sequential: quotes carry state).
            records.removeAll(keepingCapacity: true)
            fields.removeAll(keepingCapacity: true)
            var offset = 0
            let bytes = window.bytes
            while offset < bytes.count {
                guard let scan = CSVScanner.scanRecord(bytes, from: offset, isFinal: window.isFinal, fields: &scratch)
                else { break }
                records.append(
                    CSVRecord(
                        start: offset, next: scan.next, line: line, problem: scan.problem, isBlank: scan.isBlank,
                        firstField: fields.count, fieldCount: scratch.count))
                fields.append(contentsOf: scratch)
                line += scan.newlines
                offset = scan.next
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
                    let names = fields[record.firstField..<(record.firstField + record.fieldCount)].map {
                        String(decoding: Self.fieldBytes(bytes, $0), as: UTF8.self).trimmingASCIIWhitespace()
                    }
                    header = names
                    resolved = try mapping.resolve(header: names, source: path)
                    firstRecord += 1
                }
            }
            if !reserved, offset > 0 {
                // Room for the whole file's paths and items, estimated from the first window's rows per
                // byte: growing by doubling would rehash every path and hold two item arrays at once.
                reserved = true
                let estimate = Int(
                    min(Double(records.count) * Double(max(fileSize, offset)) / Double(offset) * 1.05, 50_000_000))
                duplicates.reserve(estimate)
                items.reserveCapacity(estimate)
            }
            // 3. Fields to strings and validation, in parallel blocks of records.
            if let header, let resolved, firstRecord < records.count {
                let slices = Self.decodeRecords(
                    bytes: bytes, records: records[firstRecord...], fields: fields, header: header,
                    validator: RowValidator(columns: resolved), captionColumn: sink == nil ? nil : resolved[.caption])
                let firstItemOfWindow = items.count
                var captionEntries: [CaptionBatch.Entry] = []
                // 4. In file order: blank lines, rejects, duplicates (rare: checked on the paths' hashes).
                for slice in slices {
                    blankLines += slice.blankLines
                    rejected.append(contentsOf: slice.rejected)
                    var firstDuplicate: Int?
                    for index in slice.items.indices
                    where duplicates.check(slice.items[index], pathHash: slice.pathHashes[index]) != nil {
                        firstDuplicate = index
                        break
                    }
                    guard let firstDuplicate else {
                        items.append(contentsOf: slice.items)
                        if sink != nil { captionEntries.append(contentsOf: slice.captions) }
                        continue
                    }
                    foundDuplicates = true
                    items.append(contentsOf: slice.items[..<firstDuplicate])
                    if sink != nil { captionEntries.append(contentsOf: slice.captions[..<firstDuplicate]) }
                    for index in firstDuplicate..<slice.items.count {
                        let item = slice.items[index]
                        if index == firstDuplicate || duplicates.check(item, pathHash: slice.pathHashes[index]) != nil {
                            let first = duplicates.firstLine(of: item.path) ?? 0
                            rejected.append(
                                RejectedRow(
                                    line: item.line, column: resolved.name(of: .path), kind: .duplicatePath,
                                    detail: "path \"\(item.path)\" already appeared at line \(first)",
                                    raw: Self.rawText(bytes, slice.records[index])))
                        } else {
                            items.append(item)
                            if sink != nil { captionEntries.append(slice.captions[index]) }
                        }
                    }
                }
                if let sink, !captionEntries.isEmpty {
                    sink.receive(CaptionBatch(firstItem: firstItemOfWindow, bytes: bytes, entries: captionEntries))
                }
            }
            source.consumed(offset)
            progress.report(
                ProgressEvent(
                    stage: "read \(Self.fileName(path))", completed: source.consumedBytes, total: fileSize,
                    unit: "bytes"))
        }
        guard let header, let resolved else {
            throw source.consumedBytes <= 3 ? .empty(path: path) : .noHeader(path: path)
        }
        if foundDuplicates {
            // Duplicates are appended after their block's other rejects: back to file order (one reject per line).
            rejected.sort { $0.line < $1.line }
        }
        var manifest = Manifest(
            source: path, format: .csv, columns: header, columnMap: resolved, items: items, rejected: rejected,
            blankLines: blankLines)
        manifest.captionsSentToSink = sink != nil
        return manifest
    }

    /// One record's place in the window.
    struct CSVRecord {
        var start: Int
        var next: Int
        var line: Int
        var problem: CSVRecordProblem?
        var isBlank: Bool
        var firstField: Int
        var fieldCount: Int
    }

    /// What one block of records decoded to, in file order within the block.
    struct DecodedBlock: Sendable {
        var items: [ManifestItem] = []
        /// `RowValidator.DuplicatePaths.hash` of each item's path, computed here on all cores.
        var pathHashes: [UInt64] = []
        var rejected: [RejectedRow] = []
        var blankLines = 0
        /// Each item's record (for the raw text of a duplicate).
        var records: [CSVRecord] = []
        /// Each item's caption in the window, when captions go to a sink.
        var captions: [CaptionBatch.Entry] = []
    }

    enum RecordOutcome: Sendable {
        case blank
        case accepted(ManifestItem, caption: CaptionBatch.Entry?)
        case rejected(RejectedRow)
    }

    /// Decodes and validates records on all cores, in blocks taken from a shared queue; the blocks
    /// come back in record order.
    static func decodeRecords(
        bytes: UnsafeBufferPointer<UInt8>, records: ArraySlice<CSVRecord>, fields: [CSVFieldRange], header: [String],
        validator: RowValidator, captionColumn: Int? = nil
    ) -> [DecodedBlock] {
        let base = records.startIndex
        let queue = BlockQueue(count: records.count, blockSize: 1024)
        let workers = min(ProcessInfo.processInfo.activeProcessorCount, queue.blockCount)
        let results = OrderedSlots<DecodedBlock>(count: queue.blockCount)
        let shared = UnsafeSendable(bytes)
        DispatchQueue.concurrentPerform(iterations: max(1, workers)) { _ in
            while let (block, range) = queue.take() {
                var decoded = DecodedBlock()
                decoded.items.reserveCapacity(range.count)
                decoded.pathHashes.reserveCapacity(range.count)
                for index in range {
                    let record = records[base + index]
                    switch decode(
                        shared.value, record, fields: fields, header: header, validator: validator,
                        captionColumn: captionColumn)
                    {
                    case .blank: decoded.blankLines += 1
                    case .rejected(let row): decoded.rejected.append(row)
                    case .accepted(let item, let caption):
                        decoded.pathHashes.append(RowValidator.DuplicatePaths.hash(item.path))
                        decoded.items.append(item)
                        decoded.records.append(record)
                        if let caption { decoded.captions.append(caption) }
                    }
                }
                results.set(block, decoded)
            }
        }
        return queue.blockCount == 0 ? [] : results.values()
    }

    /// `captionColumn`: the caption goes to a sink: its bytes are checked here (valid UTF-8, not
    /// blank) and located, and the item gets an empty caption.
    static func decode(
        _ bytes: UnsafeBufferPointer<UInt8>, _ record: CSVRecord, fields: [CSVFieldRange], header: [String],
        validator: RowValidator,
        captionColumn: Int? = nil
    ) -> RecordOutcome {
        if record.isBlank { return .blank }
        func reject(_ column: String?, _ kind: RejectedRow.Kind, _ detail: String) -> RecordOutcome {
            .rejected(
                RejectedRow(line: record.line, column: column, kind: kind, detail: detail, raw: rawText(bytes, record)))
        }
        if let problem = record.problem {
            switch problem {
            case .unterminatedQuote:
                return reject(
                    nil, .malformedQuoting,
                    "a quoted field opened on this row never closes; the rest of the file was read into it")
            case .textAfterClosingQuote(let field):
                let name = field < header.count ? header[field] : "field \(field + 1)"
                return reject(name, .malformedQuoting, "text follows the closing quote of \(name)")
            }
        }
        if record.fieldCount != header.count {
            let which = record.fieldCount < header.count ? "short row" : "long row"
            return reject(
                nil, .wrongFieldCount, "\(which): \(record.fieldCount) fields, the header has \(header.count)")
        }
        var values: [String] = []
        values.reserveCapacity(record.fieldCount)
        var caption: CaptionBatch.Entry?
        var captionIsBlank: Bool?
        for index in 0..<record.fieldCount {
            let field = fields[record.firstField + index]
            if index == captionColumn {
                // Doubled quotes do not change validity or blankness: check the field as it is.
                let raw = fieldBytes(bytes, field)
                guard UTF8Bytes.isValid(raw) else {
                    return reject(
                        header[index], .invalidUTF8,
                        "\(header[index]) holds bytes that are not valid UTF-8 (re-encode the file as UTF-8)")
                }
                captionIsBlank = UTF8Bytes.isBlank(raw)
                caption = CaptionBatch.Entry(
                    start: field.start, end: field.end, hasEscapedQuotes: field.hasEscapedQuotes)
                values.append("")
                continue
            }
            let decoded: String? =
                field.hasEscapedQuotes
                ? CSVScanner.unescaped(bytes, field).withUnsafeBufferPointer { makeString($0) }
                : makeString(fieldBytes(bytes, field))
            guard let text = decoded else {
                return reject(
                    header[index], .invalidUTF8,
                    "\(header[index]) holds bytes that are not valid UTF-8 (re-encode the file as UTF-8)")
            }
            values.append(text)
        }
        switch validator.validate(fields: values, line: record.line, captionIsBlank: captionIsBlank) {
        case .accepted(let item): return .accepted(item, caption: caption)
        case .rejected(let column, let kind, let detail): return reject(column, kind, detail)
        }
    }

    /// A record's bytes as read, without its line ending (invalid bytes replaced by U+FFFD).
    static func rawText(_ bytes: UnsafeBufferPointer<UInt8>, _ record: CSVRecord) -> String {
        var end = record.next
        while end > record.start, bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D { end -= 1 }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[record.start..<end]), as: UTF8.self)
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

        struct Row {
            var line: Int
            var raw: String
            var object: [String: Any]?
            var error: String?
            var invalidUTF8: Bool
        }
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
            if slice.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                blankLines += 1
                continue
            }
            let raw = String(decoding: slice, as: UTF8.self)
            guard String(validating: slice, as: UTF8.self) != nil else {
                rows.append(
                    Row(
                        line: lineNumber, raw: raw, object: nil, error: "the line holds bytes that are not valid UTF-8",
                        invalidUTF8: true))
                continue
            }
            do {
                let parsed = try JSONSerialization.jsonObject(with: Data(slice), options: [.fragmentsAllowed])
                guard let object = parsed as? [String: Any] else {
                    rows.append(
                        Row(
                            line: lineNumber, raw: raw, object: nil, error: "the line is JSON but not an object {…}",
                            invalidUTF8: false))
                    continue
                }
                for key in object.keys.sorted() where !known.contains(key) {
                    known.insert(key)
                    columns.append(key)
                }
                rows.append(Row(line: lineNumber, raw: raw, object: object, error: nil, invalidUTF8: false))
            } catch {
                rows.append(
                    Row(
                        line: lineNumber, raw: raw, object: nil, error: "the line is not valid JSON", invalidUTF8: false
                    ))
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
                rejected.append(
                    RejectedRow(
                        line: row.line, column: nil, kind: row.invalidUTF8 ? .invalidUTF8 : .invalidJSON,
                        detail: row.error ?? "", raw: row.raw))
                continue
            }
            let values = columns.map { Self.jsonText(object[$0]) }
            switch validator.validate(fields: values, line: row.line) {
            case .accepted(let item):
                if duplicates.check(item) != nil {
                    let first = duplicates.firstLine(of: item.path) ?? 0
                    rejected.append(
                        RejectedRow(
                            line: row.line, column: resolved.name(of: .path), kind: .duplicatePath,
                            detail: "path \"\(item.path)\" already appeared at line \(first)", raw: row.raw))
                } else {
                    items.append(item)
                }
            case .rejected(let column, let kind, let detail):
                rejected.append(RejectedRow(line: row.line, column: column, kind: kind, detail: detail, raw: row.raw))
            }
        }
        progress.report(
            ProgressEvent(
                stage: "read \(Self.fileName(path))", completed: bytes.count, total: bytes.count, unit: "bytes"))
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
            if double == double.rounded(), abs(double) < 1e15, !"\(number)".contains(".") {
                return String(Int64(double))
            }
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
