import Foundation
import Support

/// Gets grey frames out of images and videos with ffmpeg: one frame of an image; for a video,
/// `count` frames at the middles of equal parts of its duration (t = D·(k + ½)/count), each by
/// an accurate seek, so that copies re-encoded with other key-frame positions give the same
/// frames. Every frame is scaled to 256×256 grey (area filter) and read from ffmpeg's stdout.
public struct FrameExtractor: Sendable {
    public var ffmpeg: String

    public init(ffmpeg: String) {
        self.ffmpeg = ffmpeg
    }

    public struct Failure: Error, Equatable, Sendable {
        public var reason: String
    }

    /// The ffmpeg binary: `explicit` when given, else the first `ffmpeg` on PATH.
    public static func locate(_ explicit: String? = nil) -> String? {
        if let explicit { return FileManager.default.isExecutableFile(atPath: explicit) ? explicit : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/ffmpeg"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    public func imageFrame(path: String) async throws(Failure) -> GreyFrame {
        guard let frame = try await frame(path: path, seek: nil, isImage: true) else {
            throw Failure(reason: "ffmpeg decoded no frame")
        }
        return frame
    }

    /// Up to `count` frames (fewer when a seek lands past the real end); throws when none decode.
    public func videoFrames(path: String, duration: Double?, count: Int) async throws(Failure) -> [GreyFrame] {
        let seconds = duration.flatMap { $0.isFinite && $0 > 0 ? $0 : nil }
        let times: [Double] = seconds.map { d in (0..<count).map { d * (Double($0) + 0.5) / Double(count) } } ?? [0]
        var frames: [GreyFrame] = []
        var lastFailure: Failure?
        for time in times {
            do {
                if let frame = try await frame(path: path, seek: time, isImage: false) { frames.append(frame) }
            } catch {
                lastFailure = error
            }
        }
        if frames.isEmpty {
            if let lastFailure { throw lastFailure }
            // Every seek landed past the end (the manifest's duration is too long): take the first frame.
            if let first = try await frame(path: path, seek: nil, isImage: false) { return [first] }
            throw Failure(reason: "ffmpeg decoded no frame")
        }
        return frames
    }

    func frame(path: String, seek: Double?, isImage: Bool) async throws(Failure) -> GreyFrame? {
        let side = GreyFrame.side
        var arguments = ["-nostdin", "-hide_banner", "-v", "error"]
        if let seek { arguments += ["-ss", String(format: "%.3f", seek)] }
        // Image file names with % would otherwise be read as sequence patterns.
        if isImage && path.contains("%") { arguments += ["-pattern_type", "none"] }
        // file: keeps names with ':' from being read as protocols.
        arguments += [
            "-i", "file:" + path, "-frames:v", "1", "-an", "-sn",
            "-vf", "scale=\(side):\(side):flags=area,format=gray", "-f", "rawvideo", "pipe:1",
        ]
        let result: ChildProcessResult
        do {
            result = try await ChildProcess(ffmpeg, arguments: arguments).run()
        } catch let error as ChildProcessError {
            throw Failure(reason: "cannot start ffmpeg: \(error.reason)")
        } catch is CancellationError {
            throw Failure(reason: "stopped")
        } catch {
            throw Failure(reason: "cannot start ffmpeg: \(error)")
        }
        guard result.exit.succeeded else {
            let lastLine = result.standardErrorTail.split(separator: "\n").last.map(String.init)
            let message = lastLine ?? result.exit.description
            throw Failure(reason: "ffmpeg failed: \(message)")
        }
        if result.standardOutput.isEmpty { return nil }
        guard result.standardOutput.count >= side * side else {
            throw Failure(reason: "ffmpeg returned \(result.standardOutput.count) bytes, not a \(side)×\(side) frame")
        }
        return GreyFrame(side: side, pixels: Array(result.standardOutput.prefix(side * side)))
    }
}
