import Foundation
import Manifest
import Support

@testable import Media

/// A fresh temporary folder, removed by `remove()`.
struct TemporaryFolder {
    let path: String

    init(_ label: String = #function) {
        let safe = label.filter { $0.isLetter || $0.isNumber }
        path = NSTemporaryDirectory() + "wanlora-media-\(safe)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// Every file below the folder, relative, sorted.
    func files() -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: path)
        var out: [String] = []
        while let next = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path + "/" + next, isDirectory: &isDirectory),
                !isDirectory.boolValue
            {
                out.append(next)
            }
        }
        return out.sorted()
    }
}

/// Thread-safe test counters.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var calls: [String] = []
    private var running = 0
    private(set) var maximumRunning = 0

    func started(_ name: String) {
        lock.lock()
        calls.append(name)
        running += 1
        maximumRunning = max(maximumRunning, running)
        lock.unlock()
    }

    func finished() {
        lock.lock()
        running -= 1
        lock.unlock()
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return calls
    }
}

/// Runs ffmpeg (or ffprobe) for test fixtures; fails the test with ffmpeg's message.
enum Tool {
    static func run(_ executable: String, _ arguments: [String]) async throws -> ChildProcessResult {
        let result = try await ChildProcess(executable, arguments: arguments).run()
        if !result.exit.succeeded {
            throw GeneralTestError(
                "\(executable) \(arguments.joined(separator: " ")) failed: \(result.standardErrorTail)")
        }
        return result
    }

    static func ffmpeg(_ arguments: [String]) async throws {
        _ = try await run("ffmpeg", ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"] + arguments)
    }

    /// Frame count (packets), size and frame rate of a file's first video stream.
    static func videoFacts(_ path: String) async throws -> (
        frames: Int, width: Int, height: Int, rate: String, sar: String
    ) {
        let result = try await run(
            "ffprobe",
            [
                "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                "stream=nb_read_packets,width,height,r_frame_rate,sample_aspect_ratio", "-of",
                "default=noprint_wrappers=1", path,
            ])
        var values: [String: String] = [:]
        for line in String(decoding: result.standardOutput, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        return (
            Int(values["nb_read_packets"] ?? "") ?? -1, Int(values["width"] ?? "") ?? -1,
            Int(values["height"] ?? "") ?? -1,
            values["r_frame_rate"] ?? "", values["sample_aspect_ratio"] ?? ""
        )
    }

    /// Decoded frames as 8-bit grey pixels (for comparing pictures).
    static func greyFrames(_ path: String, width: Int, height: Int) async throws -> [[UInt8]] {
        let result = try await ChildProcess(
            "ffmpeg", arguments: ["-nostdin", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "gray", "-"],
            outputLimit: 64 << 20
        ).run()
        let frameSize = width * height
        let bytes = result.standardOutput
        return stride(from: 0, to: bytes.count - frameSize + 1, by: frameSize).map { Array(bytes[$0..<$0 + frameSize]) }
    }

    /// Peak signal-to-noise ratio of two equal-size grey pictures, in dB (∞ when equal).
    static func psnr(_ a: [UInt8], _ b: [UInt8]) -> Double {
        precondition(a.count == b.count)
        var sum = 0.0
        for index in a.indices {
            let d = Double(a[index]) - Double(b[index])
            sum += d * d
        }
        let mse = sum / Double(a.count)
        return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
    }
}

struct GeneralTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A manifest built in code (as the reader would return it).
func makeManifest(
    at path: String, items: [ManifestItem],
    columns: [String] = ["path", "media_type", "width", "height", "duration", "category", "caption"]
) -> Manifest {
    let resolved = try! ColumnMapping().resolve(header: columns, source: path)
    return Manifest(source: path, format: .csv, columns: columns, columnMap: resolved, items: items, rejected: [])
}
