import Foundation
import Manifest
import Support

/// A disagreement between a manifest row and its file, or a file that could not be read.
public struct ProbeFinding: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case missing = "missing file"
        case unreadable = "unreadable"
        case mediaType = "media type differs"
        case resolution = "resolution differs"
        case duration = "duration differs"
        case frameRate = "frame rate differs"
    }

    public var path: String
    public var line: Int
    public var kind: Kind
    public var detail: String
}

/// One probed manifest row, flattened for a CSV or JSON Lines table.
public struct ProbeRow: Sendable {
    public var item: ManifestItem
    public var absolutePath: String
    public var result: Result<MediaProbe, ProbeFailure>
    public var findings: [ProbeFinding]

    public static let header = [
        "path", "line", "status", "media_type", "codec", "width", "height", "sample_aspect_ratio",
        "display_aspect_ratio", "rotation",
        "display_width", "display_height", "duration", "r_frame_rate", "avg_frame_rate", "frame_rate_mode",
        "field_order", "interlaced",
        "pixel_format", "audio_codec", "audio_channels", "audio_sample_rate", "findings", "error",
    ]

    public var fields: [String] {
        switch result {
        case .failure(let failure):
            return [item.path, String(item.line), failure.kind.rawValue] + Array(repeating: "", count: 19)
                + ["", failure.message]
        case .success(let probe):
            let video = probe.video
            let display = video?.displaySize
            return [
                item.path, String(item.line), "ok", probe.mediaType.rawValue, video?.codec ?? "",
                video.map { String($0.width) } ?? "", video.map { String($0.height) } ?? "",
                video?.sampleAspectRatio.aspectDescription ?? "", video?.displayAspectRatio?.aspectDescription ?? "",
                video.map { String($0.rotation) } ?? "", display.map { String($0.width) } ?? "",
                display.map { String($0.height) } ?? "",
                probe.duration.map { String(format: "%.3f", $0) } ?? "",
                video?.realFrameRate?.description ?? "", video?.averageFrameRate?.description ?? "",
                probe.isStillImage ? "" : (video?.frameRateMode.rawValue ?? ""), video?.fieldOrder.rawValue ?? "",
                video.map { $0.isInterlaced ? "yes" : "no" } ?? "", video?.pixelFormat ?? "",
                probe.audio?.codec ?? "", probe.audio?.channels.map(String.init) ?? "",
                probe.audio?.sampleRate.map(String.init) ?? "",
                findings.map(\.detail).joined(separator: "; "), "",
            ]
        }
    }
}

/// Compares what a manifest says with what ffprobe found.
public enum ManifestCheck {
    /// Durations may differ by half a second or 2%, whichever is more (containers round, and
    /// audio often outlasts video); frame rates by 1%.
    public static func findings(item: ManifestItem, absolutePath: String, result: Result<MediaProbe, ProbeFailure>)
        -> [ProbeFinding]
    {
        func finding(_ kind: ProbeFinding.Kind, _ detail: String) -> ProbeFinding {
            ProbeFinding(path: item.path, line: item.line, kind: kind, detail: detail)
        }
        let probe: MediaProbe
        switch result {
        case .failure(let failure):
            return [finding(failure.kind == .missing ? .missing : .unreadable, failure.message)]
        case .success(let value): probe = value
        }
        var findings: [ProbeFinding] = []
        if probe.mediaType != item.mediaType {
            findings.append(
                finding(
                    .mediaType,
                    "manifest says \(item.mediaType.rawValue), "
                        + "the file is \(probe.mediaType == .image ? "an image" : "a video") (\(probe.formatName))"))
        }
        if let video = probe.video {
            let coded = Resolution(width: video.width, height: video.height)
            let display = video.displaySize
            let turned = Resolution(width: video.height, height: video.width)
            if item.resolution != coded && item.resolution != display && item.resolution != turned {
                var detail = "manifest says \(item.resolution), the file is \(coded)"
                if display != coded { detail += " shown as \(display)" }
                findings.append(finding(.resolution, detail))
            }
            if let stated = item.fps, let actual = video.frameRate, !probe.isStillImage,
                abs(stated - actual) / actual > 0.01
            {
                findings.append(
                    finding(.frameRate, "manifest says \(format(stated)) fps, the file has \(format(actual)) fps"))
            }
        }
        if item.mediaType == .video, probe.mediaType == .video, let stated = item.duration, let actual = probe.duration
        {
            if abs(stated - actual) > max(0.5, 0.02 * actual) {
                findings.append(
                    finding(.duration, "manifest says \(format(stated)) s, the file lasts \(format(actual)) s"))
            }
        }
        return findings
    }

    static func format(_ value: Double) -> String { String(format: "%.2f", value) }
}

/// Everything `wanlora probe` reports.
public struct ProbeSummary: Sendable {
    public var rows: [ProbeRow]
    public var manifest: Manifest

    public var findings: [ProbeFinding] { rows.flatMap(\.findings) }
    public var probes: [MediaProbe] {
        rows.compactMap { if case .success(let probe) = $0.result { probe } else { nil } }
    }
    public var videos: [MediaProbe] { probes.filter { !$0.isStillImage } }
    public var images: Int { probes.count - videos.count }
    public var interlaced: Int { videos.filter { $0.video?.isInterlaced ?? false }.count }
    public var variableFrameRate: Int { videos.filter { $0.video?.frameRateMode == .variable }.count }
    public var rotated: Int { probes.filter { $0.video?.isRotated ?? false }.count }
    public var nonSquarePixels: Int { probes.filter { ($0.video?.sampleAspectRatio ?? .one) != .one }.count }
    public var withAudio: Int { videos.filter { $0.audio != nil }.count }
    public var failures: [ProbeRow] {
        rows.filter { if case .failure = $0.result { true } else { false } }
    }

    /// Probes every accepted row of `manifest`.
    public static func probe(
        manifest: Manifest, tools: MediaTools, width: Int, progress: Support.ProgressReporter = .silent
    ) async throws -> ProbeSummary {
        let folder = (manifest.source as NSString).deletingLastPathComponent
        let paths = manifest.items.map { PathMath.absolute($0.path, base: folder) }
        let results = try await ProbeBatch.probe(paths: paths, tools: tools, width: width, progress: progress)
        let rows = zip(manifest.items, paths).map { item, path in
            let result = results[path]!
            return ProbeRow(
                item: item, absolutePath: path, result: result,
                findings: ManifestCheck.findings(item: item, absolutePath: path, result: result))
        }
        return ProbeSummary(rows: rows, manifest: manifest)
    }
}
