#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Byte offsets of one field inside a buffer.
struct CSVFieldRange: Equatable {
    var start: Int
    var end: Int
    /// The field was enclosed in double quotes (the range excludes them).
    var quoted: Bool
    /// The field contains `""` pairs that stand for one quote.
    var hasEscapedQuotes: Bool
}

/// What went wrong while splitting a record, if anything.
enum CSVRecordProblem: Equatable {
    /// A quoted field never closed; the record runs to the end of the input.
    case unterminatedQuote
    /// Characters follow a closing quote before the next comma or line end (e.g. `"a"b,`).
    case textAfterClosingQuote(field: Int)
}

/// The result of scanning one record.
struct CSVRecordScan {
    /// Offset of the first byte after the record's line ending.
    var next: Int
    /// Line breaks inside and at the end of the record.
    var newlines: Int
    var problem: CSVRecordProblem?
    /// The record is one empty line.
    var isBlank: Bool
}

/// An RFC 4180 record splitter working on raw bytes: quoted commas, doubled quotes, line breaks
/// inside quotes, CRLF or LF (a lone CR also ends a record). Strings are built later, only for
/// the fields that are needed.
enum CSVScanner {
    private static let comma: UInt8 = 0x2C
    private static let quote: UInt8 = 0x22
    private static let cr: UInt8 = 0x0D
    private static let lf: UInt8 = 0x0A

    /// Scans the record starting at `start`. Returns `nil` when the buffer ends inside the record
    /// and more input may follow (`isFinal == false`); the caller then supplies more bytes and
    /// scans again from the same offset.
    static func scanRecord(
        _ bytes: UnsafeBufferPointer<UInt8>, from start: Int, isFinal: Bool, fields: inout [CSVFieldRange]
    ) -> CSVRecordScan? {
        fields.removeAll(keepingCapacity: true)
        let count = bytes.count
        var i = start
        var newlines = 0
        var problem: CSVRecordProblem?

        while true {
            // One field.
            if i < count && bytes[i] == quote {
                i += 1
                let fieldStart = i
                var escaped = false
                var closed = false
                let base = bytes.baseAddress!
                while i < count {
                    // Jump to the next quote with memchr (vectorised); count line breaks on the way.
                    guard let hit = memchr(base + i, Int32(quote), count - i) else {
                        newlines += countLineFeeds(base + i, count - i)
                        i = count
                        break
                    }
                    let next = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                    newlines += countLineFeeds(base + i, next - i)
                    i = next
                    if i + 1 < count && bytes[i + 1] == quote {
                        escaped = true
                        i += 2
                        continue
                    }
                    if i + 1 >= count && !isFinal { return nil }  // might be the first of a "" pair
                    closed = true
                    break
                }
                if !closed {
                    if !isFinal { return nil }
                    fields.append(CSVFieldRange(start: fieldStart, end: count, quoted: true, hasEscapedQuotes: escaped))
                    return CSVRecordScan(next: count, newlines: newlines, problem: .unterminatedQuote, isBlank: false)
                }
                let fieldEnd = i
                i += 1  // closing quote
                if i < count, bytes[i] != comma, bytes[i] != lf, bytes[i] != cr {
                    if problem == nil { problem = .textAfterClosingQuote(field: fields.count) }
                    while i < count, bytes[i] != comma, bytes[i] != lf, bytes[i] != cr { i += 1 }
                }
                fields.append(CSVFieldRange(start: fieldStart, end: fieldEnd, quoted: true, hasEscapedQuotes: escaped))
            } else {
                let fieldStart = i
                while i < count {
                    let byte = bytes[i]
                    if byte == comma || byte == lf || byte == cr { break }
                    i += 1
                }
                fields.append(CSVFieldRange(start: fieldStart, end: i, quoted: false, hasEscapedQuotes: false))
            }
            // After a field: a comma continues the record, anything else ends it.
            if i < count && bytes[i] == comma {
                i += 1
                continue
            }
            if i >= count {
                if !isFinal { return nil }
                let blank = fields.count == 1 && fields[0].start == fields[0].end && !fields[0].quoted
                return CSVRecordScan(next: count, newlines: newlines, problem: problem, isBlank: blank)
            }
            if bytes[i] == cr {
                if i + 1 >= count && !isFinal { return nil }
                i += 1
                if i < count && bytes[i] == lf { i += 1 }
            } else {
                i += 1  // LF
            }
            newlines += 1
            let blank = fields.count == 1 && fields[0].start == fields[0].end && !fields[0].quoted
            return CSVRecordScan(next: i, newlines: newlines, problem: problem, isBlank: blank)
        }
    }

    /// Line feeds in a byte range (memchr hops: line breaks inside captions are rare).
    @inline(__always)
    static func countLineFeeds(_ start: UnsafePointer<UInt8>, _ length: Int) -> Int {
        var found = 0
        var position = start
        var remaining = length
        while remaining > 0, let hit = memchr(position, Int32(lf), remaining) {
            found += 1
            let next = hit.assumingMemoryBound(to: UInt8.self) + 1
            remaining -= position.distance(to: next)
            position = UnsafePointer(next)
        }
        return found
    }

    /// The field's bytes with `""` turned into `"`.
    static func unescaped(_ bytes: UnsafeBufferPointer<UInt8>, _ field: CSVFieldRange) -> [UInt8] {
        var out: [UInt8] = []
        unescape(bytes, field, into: &out)
        return out
    }

    /// The field's bytes with each `""` turned into `"`, into `out` (replacing its contents, keeping
    /// its storage): the runs between quotes are copied whole.
    static func unescape(_ bytes: UnsafeBufferPointer<UInt8>, _ field: CSVFieldRange, into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        out.reserveCapacity(field.end - field.start)
        guard let base = bytes.baseAddress else { return }
        var i = field.start
        while i < field.end {
            let found = memchr(base + i, Int32(quote), field.end - i)
            let stop = found.map { UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) - base } ?? field.end
            out.append(contentsOf: UnsafeBufferPointer(start: base + i, count: stop - i))
            guard stop < field.end else { break }
            out.append(quote)  // one quote of the pair (a lone quote cannot occur inside a valid field)
            i = stop + 1
            if i < field.end && base[i] == quote { i += 1 }
        }
    }
}
