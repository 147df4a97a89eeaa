import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file's SHA-256, as `sha256sum` prints it.
public struct ContentDigest: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The 32 digest bytes as four big-endian words (cheap to compare and hash).
    public var words: (UInt64, UInt64, UInt64, UInt64)

    public init(bytes: some Sequence<UInt8>) {
        var values = [UInt64](repeating: 0, count: 4)
        for (index, byte) in bytes.enumerated() where index < 32 {
            values[index / 8] = values[index / 8] << 8 | UInt64(byte)
        }
        words = (values[0], values[1], values[2], values[3])
    }

    /// Parses 64 hex digits.
    public init?(hex: some StringProtocol) {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var index = 0
        while index < 64 {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self.init(bytes: bytes)
    }

    public var description: String {
        [words.0, words.1, words.2, words.3].map { word in
            let text = String(word, radix: 16)
            return String(repeating: "0", count: 16 - text.count) + text
        }.joined()
    }

    public static func == (lhs: ContentDigest, rhs: ContentDigest) -> Bool {
        lhs.words == rhs.words
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
    }

    public static func < (lhs: ContentDigest, rhs: ContentDigest) -> Bool { lhs.words < rhs.words }

    static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case 0x30...0x39: digit - 0x30
        case 0x61...0x66: digit - 0x61 + 10
        case 0x41...0x46: digit - 0x41 + 10
        default: nil
        }
    }
}

/// Streams a file through SHA-256 in fixed-size reads, so memory stays at one buffer whatever
/// the file's size (broadcast masters are gigabytes).
///
/// Why SHA-256 and not a faster non-cryptographic hash: swift-crypto's SHA-256 hashes about
/// 0.95 GB/s per core here (twice `sha256sum`), more than the disks an archive lives on deliver,
/// and its digests are the ones `sha256sum` prints, so any row of curation-log.csv can be checked
/// with standard tools. docs/BENCHMARKS.md has the measurement (bench/curate_hash.sh).
public struct ContentHasher: Sendable {
    /// Bytes per read.
    public var bufferSize: Int

    public init(bufferSize: Int = 1 << 20) {
        self.bufferSize = bufferSize
    }

    public enum Failure: Error, Equatable {
        case cannotOpen(String)
        case readFailed(String)
    }

    /// The digest and the number of bytes read.
    public func digest(path: String) throws(Failure) -> (digest: ContentDigest, bytes: Int64) {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw .cannotOpen(String(cString: strerror(errno))) }
        defer { close(descriptor) }
        #if os(Linux)
            _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_SEQUENTIAL)
        #endif
        var hasher = SHA256()
        var total: Int64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 64)
        defer { buffer.deallocate() }
        while true {
            let count = read(descriptor, buffer.baseAddress, bufferSize)
            if count < 0 {
                if errno == EINTR { continue }
                throw .readFailed(String(cString: strerror(errno)))
            }
            if count == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            total += Int64(count)
        }
        return (ContentDigest(bytes: hasher.finalize()), total)
    }
}
