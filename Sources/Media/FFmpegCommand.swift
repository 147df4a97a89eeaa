import Foundation
import Manifest

/// Whether interlaced sources are deinterlaced, and how.
public enum DeinterlaceMode: String, Sendable, Codable, CaseIterable {
    /// bwdif when ffprobe reports interlaced fields (field order tt, bb, tb or bt).
    case auto
    /// Always bwdif (for streams that are interlaced but not flagged).
    case bwdif
    /// Always yadif (older, faster, a little softer).
    case yadif
    /// Never.
    case off
}

/// The intermediate files written for training.
public enum IntermediateQuality: String, Sendable, Codable, CaseIterable {
    /// H.264 (libx264, CRF 12, preset medium, 4:2:0) in MP4: visually lossless at a tenth of the
    /// size of lossless, and readable by every video loader.
    case hq
    /// FFV1 (level 3, every frame a key frame) in Matroska: bit-exact after scaling, about 10×
    /// larger than hq.
    case lossless

    var videoExtension: String { self == .hq ? "mp4" : "mkv" }
}

/// Settings shared by every clip of a run.
public struct EncodeSettings: Sendable, Equatable {
    public var fit: FitMode
    public var deinterlace: DeinterlaceMode
    public var quality: IntermediateQuality
    public var fps: Int
    /// swscale's filter; lanczos keeps detail when scaling 1080 lines down to 720 or 480.
    public var scaler: String

    public init(
        fit: FitMode = .cover, deinterlace: DeinterlaceMode = .auto, quality: IntermediateQuality = .hq, fps: Int = 16,
        scaler: String = "lanczos"
    ) {
        self.fit = fit
        self.deinterlace = deinterlace
        self.quality = quality
        self.fps = fps
        self.scaler = scaler
    }
}

/// One ffmpeg invocation that writes one clip (or one image frame).
public struct FFmpegCommand: Sendable, Equatable {
    /// Every argument except the output path, which comes last.
    public var arguments: [String]
    /// Index in `arguments` of the source path (replaced when computing `spec`).
    public var inputIndex: Int
    /// The video filter graph (also inside `arguments`), for the record.
    public var filterGraph: String
    /// ffmpeg's muxer name, so that a temporary file name needs no meaningful extension.
    public var format: String
    public var fileExtension: String
    public var expectedFrames: Int
    public var size: Resolution

    public func arguments(output: String) -> [String] { arguments + [output] }

    /// A digest of everything that decides the output's content except where the source lives:
    /// a finished clip is reused only when this is unchanged.
    public var spec: String {
        var parts = arguments
        parts[inputIndex] = "<input>"
        return StableHash.hex(StableHash.fnv1a64(parts.joined(separator: "\u{1F}")))
    }
}

/// Builds the ffmpeg command for a clip: filter graph and encoder arguments.
///
/// Rotation is honoured by ffmpeg's autorotation (on by default: it applies the display matrix
/// with transpose/flip before this graph and clears it in the output); the sizes here are computed
/// from the rotated display aspect. The sample aspect ratio is honoured by scaling to a size
/// computed from the display aspect and then declaring square pixels.
public enum FFmpegCommandBuilder {
    /// The video filters, in order.
    public static func filters(
        video: VideoStreamInfo, isImage: Bool, clip: ClipPlan, size: Resolution, settings: EncodeSettings,
        augmentation: Augmentation = Augmentation()
    ) -> [String] {
        var filters: [String] = []
        if !isImage {
            switch settings.deinterlace {
            case .auto where video.isInterlaced, .bwdif: filters.append("bwdif=mode=send_frame:parity=auto:deint=all")
            case .yadif: filters.append("yadif=mode=send_frame:parity=auto:deint=all")
            case .auto, .off: break
            }
            // Restart time at the seek point; a speed change stretches it before frames are picked.
            filters.append(
                augmentation.speed == 1 ? "setpts=PTS-STARTPTS" : "setpts=(PTS-STARTPTS)/\(number(augmentation.speed))")
            filters.append("fps=\(settings.fps)")
            filters.append("trim=end_frame=\(clip.sourceFrames)")
            if clip.paddedFrames > 0 { filters.append("tpad=stop_mode=clone:stop=\(clip.paddedFrames)") }
        }
        let place = ScaleAndPlace(
            aspect: video.displayAspect, target: size, fit: settings.fit, zoom: augmentation.cropZoom,
            offset: (augmentation.cropX, augmentation.cropY))
        filters.append("scale=\(place.scaledWidth):\(place.scaledHeight):flags=\(settings.scaler)")
        switch settings.fit {
        case .cover: filters.append("crop=\(size.width):\(size.height):\(place.x):\(place.y)")
        case .pad: filters.append("pad=\(size.width):\(size.height):\(place.x):\(place.y):color=black")
        }
        if augmentation.reverse && !isImage { filters.append("reverse") }
        if augmentation.horizontalFlip { filters.append("hflip") }
        if augmentation.changesColour {
            filters.append(
                "eq=brightness=\(number(augmentation.brightness)):contrast=\(number(augmentation.contrast)):saturation="
                    + "\(number(augmentation.saturation))")
            if augmentation.hue != 0 { filters.append("hue=h=\(number(augmentation.hue))") }
        }
        filters.append("setsar=1")
        filters.append(isImage ? "format=rgb24" : "format=yuv420p")
        return filters
    }

    /// The whole command (without the output path).
    public static func command(
        source: String, video: VideoStreamInfo, isImage: Bool, clip: ClipPlan, size: Resolution,
        settings: EncodeSettings,
        augmentation: Augmentation = Augmentation()
    ) -> FFmpegCommand {
        let graph = filters(
            video: video, isImage: isImage, clip: clip, size: size, settings: settings, augmentation: augmentation
        )
        .joined(separator: ",")
        var arguments = ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1", "-y"]
        // Before -i: seek by decoding from the previous key frame, exact to the frame.
        if clip.start > 0 { arguments += ["-ss", number(clip.start)] }
        arguments += ["-i"]
        let inputIndex = arguments.count
        arguments += [source]
        arguments += ["-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1"]
        arguments += ["-vf", graph, "-frames:v", String(clip.frames)]
        let format: String
        let fileExtension: String
        if isImage {
            arguments += ["-c:v", "png", "-update", "1"]
            format = "image2"
            fileExtension = "png"
        } else {
            switch settings.quality {
            case .hq:
                arguments += [
                    "-c:v", "libx264", "-preset", "medium", "-crf", "12", "-profile:v", "high", "-pix_fmt", "yuv420p",
                ]
                format = "mp4"
            case .lossless:
                arguments += ["-c:v", "ffv1", "-level", "3", "-g", "1", "-slicecrc", "1", "-pix_fmt", "yuv420p"]
                format = "matroska"
            }
            fileExtension = settings.quality.videoExtension
        }
        // No version strings or dates in the file: the same input gives the same bytes.
        arguments += ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-f", format]
        return FFmpegCommand(
            arguments: arguments, inputIndex: inputIndex, filterGraph: graph, format: format,
            fileExtension: fileExtension,
            expectedFrames: clip.frames, size: size)
    }

    /// Shortest exact decimal text for a filter argument (no exponent, no trailing zeros).
    static func number(_ value: Double) -> String {
        let rounded = (value * 1_000_000).rounded() / 1_000_000
        if rounded == rounded.rounded() && abs(rounded) < 1e15 { return String(Int(rounded)) }
        var text = String(format: "%.6f", rounded)
        while text.hasSuffix("0") { text.removeLast() }
        return text
    }

    /// The frame count ffmpeg reports in its `-progress` output (the last `frame=` line).
    public static func framesWritten(progressOutput: [UInt8]) -> Int? {
        let text = String(decoding: progressOutput, as: UTF8.self)
        var frames: Int?
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("frame=") {
            frames = Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return frames
    }
}
