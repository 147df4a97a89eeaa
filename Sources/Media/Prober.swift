import Foundation
import Support

/// Where the media tools are. Names are looked up on PATH; paths are used as given.
public struct MediaTools: Sendable, Equatable {
    public var ffmpeg: String
    public var ffprobe: String

    public init(ffmpeg: String = "ffmpeg", ffprobe: String = "ffprobe") {
        self.ffmpeg = ffmpeg
        self.ffprobe = ffprobe
    }
}

/// Why a file could not be probed: never fatal for a run, always reported with the file.
public struct ProbeFailure: Error, Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable {
        /// The path does not exist.
        case missing
        /// ffprobe could not read it (truncated, corrupt, not media); `message` is ffprobe's own.
        case unreadable
        /// ffprobe read it but found nothing usable (no video stream, no size, …).
        case unusable
    }

    public var kind: Kind
    public var message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }
}

/// Runs ffprobe on files and returns typed results.
public struct Prober: Sendable {
    public var tools: MediaTools

    public init(tools: MediaTools = MediaTools()) {
        self.tools = tools
    }

    /// Probes one file. A file that cannot be read is a `.failure`; only a missing ffprobe or
    /// cancellation throws.
    public func probe(path: String) async throws -> Result<MediaProbe, ProbeFailure> {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            return .failure(ProbeFailure(kind: .missing, message: "file not found: \(path)"))
        }
        let result = try await ChildProcess(tools.ffprobe, arguments: MediaProbe.ffprobeArguments(path: path)).run()
        guard result.exit.succeeded else {
            let message = Self.lastLines(result.standardErrorTail, count: 3)
            return .failure(
                ProbeFailure(kind: .unreadable, message: message.isEmpty ? "ffprobe failed (\(result.exit))" : message))
        }
        guard !result.standardOutputTruncated else {
            return .failure(ProbeFailure(kind: .unusable, message: "ffprobe's report is larger than 4 MiB"))
        }
        do throws(ProbeParseError) {
            let probe = try MediaProbe.parse(ffprobeJSON: result.standardOutput)
            guard probe.video != nil else {
                return .failure(ProbeFailure(kind: .unusable, message: "no video or picture stream (audio only)"))
            }
            return .success(probe)
        } catch {
            return .failure(ProbeFailure(kind: .unusable, message: error.message))
        }
    }

    /// The last `count` non-empty lines of a tool's standard error, joined with " / ", without
    /// the `[demuxer @ 0x55d0…]` prefixes (memory addresses differ on every run).
    static func lastLines(_ text: String, count: Int) -> String {
        let lines = text.split(whereSeparator: \.isNewline).map {
            withoutContextPrefix(String($0)).trimmingCharacters(in: .whitespaces)
        }
        .filter { !$0.isEmpty }
        return lines.suffix(count).joined(separator: " / ")
    }

    /// `[mov,mp4 @ 0x563537bae180] moov atom not found` → `mov,mp4: moov atom not found`.
    static func withoutContextPrefix(_ line: String) -> String {
        guard line.hasPrefix("["), let close = line.firstIndex(of: "]"), let at = line.range(of: " @ 0x"),
            at.lowerBound < close
        else {
            return line
        }
        let context = line[line.index(after: line.startIndex)..<at.lowerBound]
        return context + ":" + line[line.index(after: close)...]
    }
}
