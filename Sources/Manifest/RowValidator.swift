import Support

/// Turns one row's fields into a `ManifestItem`, or says precisely why it cannot.
/// Shared by the CSV and JSON Lines readers so both apply the same rules. Pure (rows can be
/// validated in parallel); duplicates across rows are found by `DuplicatePaths` afterwards, in order.
struct RowValidator {
    let columns: ResolvedColumns

    enum Outcome {
        case accepted(ManifestItem)
        case rejected(column: String?, kind: RejectedRow.Kind, detail: String)
    }

    private func value(_ column: CanonicalColumn, in fields: [String]) -> String? {
        guard let index = columns[column], index < fields.count else { return nil }
        return fields[index]
    }

    /// `captionIsBlank`: the caller checked the caption's bytes already (its field is empty because
    /// the caption went to a `CaptionSink`).
    func validate(fields: [String], line: Int, captionIsBlank: Bool? = nil) -> Outcome {
        func reject(_ column: CanonicalColumn?, _ kind: RejectedRow.Kind, _ detail: String) -> Outcome {
            .rejected(column: column.map { columns.name(of: $0) }, kind: kind, detail: detail)
        }

        // Media type.
        let typeText = value(.mediaType, in: fields) ?? ""
        if typeText.trimmingASCIIWhitespace().isEmpty {
            return reject(.mediaType, .missingValue, "media_type is empty (expected image or video)")
        }
        guard let mediaType = MediaType(parsing: typeText) else {
            return reject(.mediaType, .unknownMediaType, "media_type \"\(typeText)\" is neither image nor video")
        }

        // Path.
        var path = (value(.path, in: fields) ?? "").trimmingASCIIWhitespace()
        if path.isEmpty { return reject(.path, .missingValue, "path is empty") }
        while path.hasPrefix("./") { path.removeFirst(2) }

        // Size: width and height, or resolution.
        let resolution: Resolution
        let widthText = value(.width, in: fields)?.trimmingASCIIWhitespace() ?? ""
        let heightText = value(.height, in: fields)?.trimmingASCIIWhitespace() ?? ""
        if columns[.width] != nil, columns[.height] != nil,
            !(widthText.isEmpty && heightText.isEmpty && columns[.resolution] != nil)
        {
            guard let width = Self.wholeNumber(widthText) else {
                return widthText.isEmpty
                    ? reject(.width, .missingValue, "width is empty")
                    : reject(.width, .notANumber, "width \"\(widthText)\" is not a whole number")
            }
            guard let height = Self.wholeNumber(heightText) else {
                return heightText.isEmpty
                    ? reject(.height, .missingValue, "height is empty")
                    : reject(.height, .notANumber, "height \"\(heightText)\" is not a whole number")
            }
            guard width > 0 else { return reject(.width, .outOfRange, "width \(width) is not positive") }
            guard height > 0 else { return reject(.height, .outOfRange, "height \(height) is not positive") }
            resolution = Resolution(width: width, height: height)
        } else {
            let text = value(.resolution, in: fields)?.trimmingASCIIWhitespace() ?? ""
            if text.isEmpty {
                return reject(.resolution, .missingValue, "resolution is empty (expected e.g. 1920x1080)")
            }
            guard let parsed = Resolution(parsing: text) else {
                return reject(
                    .resolution, .notANumber, "resolution \"\(text)\" is not WIDTHxHEIGHT (e.g. 1920x1080 or 1920×1080)"
                )
            }
            resolution = parsed
        }

        // Duration: required and finite, non-negative for videos; ignored for images.
        var duration: Double?
        if mediaType == .video {
            let text = value(.duration, in: fields)?.trimmingASCIIWhitespace() ?? ""
            if text.isEmpty { return reject(.duration, .missingValue, "duration is empty for a video") }
            guard let seconds = Self.seconds(text) else {
                return reject(
                    .duration, .notANumber, "duration \"\(text)\" is not a number of seconds (or HH:MM:SS.ss)")
            }
            guard seconds.isFinite else { return reject(.duration, .outOfRange, "duration \"\(text)\" is not finite") }
            guard seconds >= 0 else { return reject(.duration, .outOfRange, "duration \(text) s is negative") }
            duration = seconds
        }

        // Optional fps.
        var fps: Double?
        if let text = value(.fps, in: fields)?.trimmingASCIIWhitespace(), !text.isEmpty {
            guard let rate = Self.frameRate(text), rate.isFinite, rate > 0 else {
                return reject(
                    .fps, .notANumber, "fps \"\(text)\" is not a positive number (or a ratio like 30000/1001)")
            }
            fps = rate
        }

        // Caption.
        let caption = value(.caption, in: fields) ?? ""
        if captionIsBlank ?? caption.unicodeScalars.allSatisfy(\.properties.isWhitespace) {
            return reject(.caption, .emptyCaption, "caption is empty")
        }

        let category = value(.category, in: fields)?.trimmingASCIIWhitespace() ?? ""
        let id = value(.id, in: fields)?.trimmingASCIIWhitespace()
        return .accepted(
            ManifestItem(
                line: line, id: (id?.isEmpty ?? true) ? nil : id, path: path, mediaType: mediaType,
                resolution: resolution, duration: duration, fps: fps, category: category, caption: caption,
                fields: fields))
    }

    /// Rejects the second and later rows with the same path. Runs in file order, on one core, after
    /// the parallel decoding: the paths' hashes are computed there (`pathHash`), so a check here costs
    /// one hash-table probe with an 8-byte key instead of hashing the whole path (twice) with SipHash.
    struct DuplicatePaths {
        private struct Key: Hashable {
            var hash: UInt64
            var path: String
            func hash(into hasher: inout Hasher) { hasher.combine(hash) }
            static func == (a: Key, b: Key) -> Bool { a.hash == b.hash && a.path == b.path }
        }

        private var firstLine: [Key: Int] = [:]

        /// Makes room for about `rows` paths at once (no rehashing while the table grows).
        mutating func reserve(_ rows: Int) { firstLine.reserveCapacity(rows) }

        /// nil when the path is new (and remembered with its line), `.duplicatePath` otherwise.
        mutating func check(_ item: ManifestItem, pathHash: UInt64) -> RejectedRow.Kind? {
            let key = Key(hash: pathHash, path: item.path)
            if firstLine[key] != nil { return .duplicatePath }
            firstLine[key] = item.line
            return nil
        }

        mutating func check(_ item: ManifestItem) -> RejectedRow.Kind? {
            check(item, pathHash: Self.hash(item.path))
        }

        func firstLine(of path: String) -> Int? { firstLine[Key(hash: Self.hash(path), path: path)] }

        /// The primary half of `Support.ByteFingerprint` of the path's UTF-8 bytes.
        static func hash(_ path: String) -> UInt64 {
            var copy = path
            return copy.withUTF8 { bytes in
                guard let base = bytes.baseAddress else { return 0 }  // empty (never accepted as a path)
                return ByteFingerprint(base, bytes.count).primary
            }
        }
    }

    /// `1920` or `1920.0`; not `19x0`, not `1.5`.
    static func wholeNumber(_ text: String) -> Int? {
        if let value = Int(text) { return value }
        if let value = Double(text), value.isFinite, value == value.rounded(), abs(value) < 1e9 { return Int(value) }
        return nil
    }

    /// `23.17`, `23.17s` or `HH:MM:SS(.ss)` / `MM:SS(.ss)`.
    static func seconds(_ text: String) -> Double? {
        var text = text
        if text.hasSuffix("s") { text.removeLast() }
        if text.lowercased() == "nan" { return .nan }
        if let value = Double(text) { return value }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { return nil }
        var total = 0.0
        for (index, part) in parts.enumerated() {
            guard let value = Double(part), value >= 0 else { return nil }
            if index < parts.count - 1 && value != value.rounded() { return nil }
            total = total * 60 + value
        }
        return total
    }

    /// `29.97` or `30000/1001`.
    static func frameRate(_ text: String) -> Double? {
        if let value = Double(text) { return value }
        let parts = text.split(separator: "/")
        guard parts.count == 2, let numerator = Double(parts[0]), let denominator = Double(parts[1]), denominator != 0
        else {
            return nil
        }
        return numerator / denominator
    }
}
