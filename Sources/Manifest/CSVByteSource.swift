#if canImport(Glibc)
    import Glibc

    private func systemClose(_ descriptor: Int32) { _ = Glibc.close(descriptor) }
#elseif canImport(Darwin)
    import Darwin

    private func systemClose(_ descriptor: Int32) { _ = Darwin.close(descriptor) }
#endif

/// The bytes of a manifest file, one window at a time, for `ManifestReader.readCSV`.
///
/// A regular file is mapped into memory, not copied: the reader scans and decodes the pages the
/// kernel already holds in its cache, and the pages before the current window are handed back
/// (`MADV_DONTNEED`) as the reader moves on, so the process holds about one window of the file, not
/// all of it. Anything that cannot be mapped (a pipe, `/dev/stdin`, a file of unknown size) is read
/// in chunks into a buffer of its own. A leading UTF-8 byte-order mark is skipped.
final class CSVByteSource {
    struct Window {
        var bytes: UnsafeBufferPointer<UInt8>
        /// The window reaches the end of the file: a record without a line break ends there.
        var isFinal: Bool
    }

    /// File size in bytes (0 when unknown, e.g. a pipe).
    let size: Int
    /// Bytes consumed so far, the byte-order mark included.
    private(set) var consumedBytes = 0

    private let path: String
    private let descriptor: Int32
    private let chunkSize: Int
    private var windowLength: Int
    private var finished = false

    // Mapped file
    private var mapping: UnsafeMutableRawPointer?
    private var releasedUpTo = 0

    // Read into a buffer: bytes [bufferStart, bufferEnd) of `buffer` are not consumed yet.
    private var buffer: UnsafeMutablePointer<UInt8>?
    private var bufferCapacity = 0
    private var bufferStart = 0
    private var bufferEnd = 0
    private var atEOF = false
    private var checkedBOM = false

    init(path: String, chunkSize: Int) throws(ManifestError) {
        self.path = path
        self.chunkSize = max(1, chunkSize)
        windowLength = self.chunkSize
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .cannotOpen(path: path, reason: Self.errorText()) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let reason = Self.errorText()
            systemClose(descriptor)
            throw .cannotOpen(path: path, reason: reason)
        }
        if (status.st_mode & S_IFMT) == S_IFDIR {
            systemClose(descriptor)
            throw .cannotOpen(path: path, reason: "it is a folder, not a file")
        }
        let isRegular = (status.st_mode & S_IFMT) == S_IFREG
        size = isRegular ? Int(status.st_size) : 0
        if isRegular && size > 0 {
            let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0)
            if let mapped, mapped != MAP_FAILED {
                mapping = mapped
                _ = madvise(mapped, size, MADV_SEQUENTIAL)
            }
        }
    }

    func close() {
        if let mapping { munmap(mapping, size) }
        mapping = nil
        buffer?.deallocate()
        buffer = nil
        systemClose(descriptor)
    }

    /// The bytes after those consumed, at least one chunk where the file has them; nil at the end.
    /// Throws `.empty` for a file without bytes (after a byte-order mark).
    func next() throws(ManifestError) -> Window? {
        if finished { return nil }
        if let mapping {
            if consumedBytes == 0 && size >= 3 {
                let bytes = mapping.assumingMemoryBound(to: UInt8.self)
                if bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { consumedBytes = 3 }
            }
            if consumedBytes >= size {
                if consumedBytes <= 3 { throw .empty(path: path) }
                finished = true
                return nil
            }
            let end = min(size, consumedBytes + windowLength)
            let start = (mapping + consumedBytes).assumingMemoryBound(to: UInt8.self)
            return Window(bytes: UnsafeBufferPointer(start: start, count: end - consumedBytes), isFinal: end == size)
        }
        // Read: make sure the unconsumed bytes hold at least one more chunk (or the rest of the file).
        while !atEOF && bufferEnd - bufferStart < windowLength {
            try readChunk()
        }
        if !checkedBOM {
            checkedBOM = true
            if bufferEnd - bufferStart >= 3, let buffer,
                buffer[bufferStart] == 0xEF, buffer[bufferStart + 1] == 0xBB, buffer[bufferStart + 2] == 0xBF
            {
                bufferStart += 3
                consumedBytes = 3
            }
        }
        if bufferEnd == bufferStart {
            if consumedBytes <= 3 { throw .empty(path: path) }
            finished = true
            return nil
        }
        return Window(
            bytes: UnsafeBufferPointer(start: buffer! + bufferStart, count: bufferEnd - bufferStart), isFinal: atEOF)
    }

    /// The reader used `count` bytes of the last window (whole records). Zero bytes of a window that
    /// is not final means one record is longer than the window: the next window is twice as long.
    func consumed(_ count: Int) {
        if count == 0 {
            let isFinal = mapping != nil ? consumedBytes + windowLength >= size : atEOF
            if isFinal { finished = true } else { windowLength *= 2 }
            return
        }
        windowLength = chunkSize
        consumedBytes += count
        if let mapping {
            // Hand back the pages behind the reader: they are in the kernel's cache, the strings made
            // from them are copies.
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            let upTo = consumedBytes / page * page
            if upTo > releasedUpTo {
                _ = madvise(mapping + releasedUpTo, upTo - releasedUpTo, MADV_DONTNEED)
                releasedUpTo = upTo
            }
            if consumedBytes >= size { finished = true }
        } else {
            bufferStart += count
            if atEOF && bufferStart == bufferEnd { finished = true }
        }
    }

    private func readChunk() throws(ManifestError) {
        // Move the unconsumed bytes to the front, grow when a chunk does not fit behind them.
        let pending = bufferEnd - bufferStart
        if bufferCapacity - bufferEnd < chunkSize {
            let capacity = max(bufferCapacity, pending + chunkSize)
            let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
            if let buffer {
                grown.update(from: buffer + bufferStart, count: pending)
                buffer.deallocate()
            }
            buffer = grown
            bufferCapacity = capacity
            bufferStart = 0
            bufferEnd = pending
        }
        let got = read(descriptor, buffer! + bufferEnd, bufferCapacity - bufferEnd)
        if got < 0 {
            if errno == EINTR { return }
            throw .cannotOpen(path: path, reason: Self.errorText())
        }
        if got == 0 { atEOF = true }
        bufferEnd += got
    }

    private static func errorText() -> String {
        String(cString: strerror(errno))
    }
}
