/// Receives the captions of accepted CSV rows while `ManifestReader` decodes them, instead of the
/// reader keeping each caption as a `String`.
///
/// `wanlora analyze` needs a caption only to measure it: building 200,000 strings means validating
/// and copying 200 MB of UTF-8 and allocating memory for it, only to scan it once afterwards. With a
/// sink, the reader checks the caption bytes in place (valid UTF-8, not blank), finds duplicates,
/// and hands each window's accepted captions to the sink while the bytes are still mapped; the
/// items' `caption` (and its entry in `fields`) stay empty and `Manifest.captionsSentToSink` says so.
/// JSON Lines manifests keep their captions as strings and never call the sink.
public protocol CaptionSink: AnyObject, Sendable {
    /// The accepted rows of one window, in file order: item `batch.firstItem + i` has caption `i`.
    /// Called on the reading thread, once per window, before the window's bytes are released; may
    /// use other threads inside.
    func receive(_ batch: CaptionBatch)
}

/// The captions of consecutive accepted items, as bytes in the reader's window.
public struct CaptionBatch: @unchecked Sendable {
    struct Entry {
        var start: Int
        var end: Int
        var hasEscapedQuotes: Bool
    }

    /// Index (in `Manifest.items`) of the item of caption 0.
    public let firstItem: Int
    let bytes: UnsafeBufferPointer<UInt8>
    let entries: [Entry]

    /// Number of captions.
    public var count: Int { entries.count }

    /// Calls `body` with caption `index`'s UTF-8 bytes (valid, quotes unescaped); `scratch` holds
    /// the unescaped copy of a caption that had doubled quotes. The bytes are valid only inside `body`.
    public func withCaption<Result>(
        _ index: Int, scratch: inout [UInt8], _ body: (UnsafeBufferPointer<UInt8>) -> Result
    ) -> Result {
        let entry = entries[index]
        let field = CSVFieldRange(
            start: entry.start, end: entry.end, quoted: true, hasEscapedQuotes: entry.hasEscapedQuotes)
        guard entry.hasEscapedQuotes else { return body(ManifestReader.fieldBytes(bytes, field)) }
        CSVScanner.unescape(bytes, field, into: &scratch)
        return scratch.withUnsafeBufferPointer(body)
    }
}
