import Foundation
import Manifest

/// What ffprobe found in one media file, reduced to the facts that decide how it is prepared.
public struct MediaProbe: Sendable, Equatable, Codable {
    /// ffprobe's demuxer name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`, `mpegts`, `png_pipe`, `image2`.
    public var formatName: String
    /// Seconds: the video stream's own duration when the container gives one, else the container's.
    public var duration: Double?
    /// The first video stream that is not an attached cover picture.
    public var video: VideoStreamInfo?
    /// The first audio stream, if any.
    public var audio: AudioStreamInfo?
    /// File size in bytes as ffprobe reports it.
    public var sizeBytes: Int?

    public init(
        formatName: String, duration: Double?, video: VideoStreamInfo?, audio: AudioStreamInfo?, sizeBytes: Int? = nil
    ) {
        self.formatName = formatName
        self.duration = duration
        self.video = video
        self.audio = audio
        self.sizeBytes = sizeBytes
    }

    /// A still picture (PNG, JPEG, …) rather than a moving video: image demuxers are named
    /// `image2` or `*_pipe`. (An animated GIF is a video.)
    public var isStillImage: Bool {
        formatName == "image2" || formatName.hasSuffix("_pipe")
    }

    /// `image` or `video`, as the manifest would say it.
    public var mediaType: MediaType { isStillImage ? .image : .video }
}

/// How the two fields of an interlaced frame are ordered (ffprobe's `field_order`).
public enum FieldOrder: String, Sendable, Codable, CaseIterable {
    case progressive
    /// Top field first (`tt`): most 1080i broadcast material.
    case topFirst = "tt"
    /// Bottom field first (`bb`): DV and some SD material.
    case bottomFirst = "bb"
    /// Top coded first, bottom displayed first (`tb`).
    case topCodedBottomFirst = "tb"
    /// Bottom coded first, top displayed first (`bt`).
    case bottomCodedTopFirst = "bt"
    /// The stream does not say; treated as progressive unless deinterlacing is forced.
    case unknown

    public var isInterlaced: Bool {
        switch self {
        case .progressive, .unknown: false
        case .topFirst, .bottomFirst, .topCodedBottomFirst, .bottomCodedTopFirst: true
        }
    }
}

/// Whether frames come at a fixed rate.
public enum FrameRateMode: String, Sendable, Codable {
    case constant
    /// `r_frame_rate` (the lowest rate that represents every timestamp) and `avg_frame_rate`
    /// (frames / duration) disagree by more than 1%: frames are unevenly spaced (phone video,
    /// screen recordings, dropped frames).
    case variable
    /// The stream gives no usable rates.
    case unknown
}

public struct VideoStreamInfo: Sendable, Equatable, Codable {
    public var codec: String
    public var profile: String?
    /// Coded size in pixels (before sample aspect ratio and rotation).
    public var width: Int
    public var height: Int
    /// Shape of one pixel; 1:1 when the stream does not say.
    public var sampleAspectRatio: Rational
    /// As ffprobe reports it (before rotation), when it does.
    public var displayAspectRatio: Rational?
    /// Degrees clockwise (0, 90, 180 or 270) the decoded picture must be turned to stand upright,
    /// from the display matrix (side data) or, in older files, the `rotate` tag.
    public var rotation: Int
    public var pixelFormat: String?
    /// `r_frame_rate`: the base rate of the timestamps.
    public var realFrameRate: Rational?
    /// `avg_frame_rate`: frames divided by duration.
    public var averageFrameRate: Rational?
    /// `nb_frames` when the container records it.
    public var frameCount: Int?
    public var fieldOrder: FieldOrder
    public var bitRate: Int?

    public init(
        codec: String, profile: String? = nil, width: Int, height: Int, sampleAspectRatio: Rational = .one,
        displayAspectRatio: Rational? = nil, rotation: Int = 0, pixelFormat: String? = nil,
        realFrameRate: Rational? = nil,
        averageFrameRate: Rational? = nil, frameCount: Int? = nil, fieldOrder: FieldOrder = .progressive,
        bitRate: Int? = nil
    ) {
        self.codec = codec
        self.profile = profile
        self.width = width
        self.height = height
        self.sampleAspectRatio = sampleAspectRatio
        self.displayAspectRatio = displayAspectRatio
        self.rotation = rotation
        self.pixelFormat = pixelFormat
        self.realFrameRate = realFrameRate
        self.averageFrameRate = averageFrameRate
        self.frameCount = frameCount
        self.fieldOrder = fieldOrder
        self.bitRate = bitRate
    }

    public var isInterlaced: Bool { fieldOrder.isInterlaced }
    public var isRotated: Bool { rotation != 0 }
    /// Rotated by a quarter turn: width and height trade places on screen.
    public var isSideways: Bool { rotation == 90 || rotation == 270 }

    /// Displayed width ÷ height: sample aspect ratio applied, then rotation.
    public var displayAspect: Double {
        let aspect = Double(width) * sampleAspectRatio.value / Double(height)
        return isSideways ? 1 / aspect : aspect
    }

    /// The size a player shows: the width stretched by the sample aspect ratio (heights are
    /// never resampled, as players do), then turned by the rotation.
    public var displaySize: Resolution {
        let stretched = Int((Double(width) * sampleAspectRatio.value).rounded())
        return isSideways ? Resolution(width: height, height: stretched) : Resolution(width: stretched, height: height)
    }

    /// The rate frames arrive at: the average when known, else the base rate.
    public var frameRate: Double? { (averageFrameRate ?? realFrameRate)?.value }

    public var frameRateMode: FrameRateMode {
        guard let real = realFrameRate, let average = averageFrameRate else { return .unknown }
        let ratio = real.value / average.value
        if abs(ratio - 1) <= 0.01 { return .constant }
        // Interlaced H.264 (PAFF) and MPEG-2 streams may give the field rate as r_frame_rate.
        if isInterlaced && abs(ratio - 2) <= 0.02 { return .constant }
        return .variable
    }
}

public struct AudioStreamInfo: Sendable, Equatable, Codable {
    public var codec: String
    public var sampleRate: Int?
    public var channels: Int?
    public var channelLayout: String?

    public init(codec: String, sampleRate: Int? = nil, channels: Int? = nil, channelLayout: String? = nil) {
        self.codec = codec
        self.sampleRate = sampleRate
        self.channels = channels
        self.channelLayout = channelLayout
    }
}

// MARK: Parsing ffprobe's JSON

extension MediaProbe {
    /// The arguments that make ffprobe print what `parse(ffprobeJSON:)` reads.
    public static func ffprobeArguments(path: String) -> [String] {
        ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", "--", path]
    }

    /// Parses the output of `ffprobe -print_format json -show_format -show_streams`.
    public static func parse(ffprobeJSON data: some Collection<UInt8>) throws(ProbeParseError) -> MediaProbe {
        let raw: RawProbe
        do {
            raw = try JSONDecoder().decode(RawProbe.self, from: Data(data))
        } catch {
            throw .notJSON(String(describing: error))
        }
        let streams = raw.streams ?? []
        guard let format = raw.format else { throw .noFormat }
        let videoRaw = streams.first { $0.codec_type == "video" && ($0.disposition?["attached_pic"] ?? 0) == 0 }
        let audioRaw = streams.first { $0.codec_type == "audio" }
        guard videoRaw != nil || audioRaw != nil else { throw .noStreams }

        var video: VideoStreamInfo?
        if let stream = videoRaw {
            guard let width = stream.width, let height = stream.height, width > 0, height > 0 else {
                throw .noPictureSize(codec: stream.codec_name ?? "unknown")
            }
            video = VideoStreamInfo(
                codec: stream.codec_name ?? "unknown",
                profile: stream.profile,
                width: width,
                height: height,
                sampleAspectRatio: stream.sample_aspect_ratio.flatMap { Rational(parsing: $0) } ?? .one,
                displayAspectRatio: stream.display_aspect_ratio.flatMap { Rational(parsing: $0) },
                rotation: clockwiseRotation(stream),
                pixelFormat: stream.pix_fmt,
                realFrameRate: stream.r_frame_rate.flatMap { Rational(parsing: $0) },
                averageFrameRate: stream.avg_frame_rate.flatMap { Rational(parsing: $0) },
                frameCount: stream.nb_frames?.int,
                fieldOrder: stream.field_order.flatMap { FieldOrder(rawValue: $0) } ?? .unknown,
                bitRate: stream.bit_rate?.int)
        }
        let audio = audioRaw.map {
            AudioStreamInfo(
                codec: $0.codec_name ?? "unknown", sampleRate: $0.sample_rate?.int, channels: $0.channels?.int,
                channelLayout: $0.channel_layout)
        }
        let streamDuration = videoRaw?.duration?.double
        let duration = [streamDuration, format.duration?.double].compactMap { $0 }.first { $0.isFinite && $0 > 0 }
        return MediaProbe(
            formatName: format.format_name ?? "unknown", duration: duration, video: video, audio: audio,
            sizeBytes: format.size?.int)
    }

    /// The display matrix's rotation is counter-clockwise (ffprobe prints -90 for a picture that
    /// must be turned 90° clockwise); the legacy `rotate` tag is clockwise. Both become clockwise
    /// quarter turns.
    static func clockwiseRotation(_ stream: RawStream) -> Int {
        var degrees: Double?
        if let matrix = stream.side_data_list?.first(where: { $0.rotation != nil }),
            let counterClockwise = matrix.rotation?.double
        {
            degrees = -counterClockwise
        } else if let tag = stream.tags?["rotate"], let clockwise = Double(tag) {
            degrees = clockwise
        }
        guard let degrees, degrees.isFinite else { return 0 }
        let quarterTurns = Int((degrees / 90).rounded())
        return ((quarterTurns % 4) + 4) % 4 * 90
    }
}

/// ffprobe answered, but not with something wanlora can use.
public enum ProbeParseError: Error, Equatable, Sendable {
    case notJSON(String)
    case noFormat
    case noStreams
    case noPictureSize(codec: String)

    public var message: String {
        switch self {
        case .notJSON(let detail): "ffprobe's output is not the expected JSON (\(detail))"
        case .noFormat: "ffprobe found no container format"
        case .noStreams: "the file has neither a video nor an audio stream"
        case .noPictureSize(let codec): "the \(codec) video stream has no picture size"
        }
    }
}

/// ffprobe writes most numbers as strings ("2.000000") and some as numbers; accept both.
struct FlexibleNumber: Decodable, Equatable {
    var double: Double?
    var int: Int? { double.flatMap { $0.isFinite && abs($0) < 9e18 ? Int($0) : nil } }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Double.self) {
            double = value
        } else if let text = try? container.decode(String.self) {
            double = Double(text.trimmingCharacters(in: .whitespaces))
        } else {
            double = nil
        }
    }
}

// Field names follow ffprobe's JSON exactly.
// swiftlint:disable identifier_name
struct RawProbe: Decodable {
    var streams: [RawStream]?
    var format: RawFormat?
}

struct RawStream: Decodable {
    var codec_name: String?
    var codec_type: String?
    var profile: String?
    var width: Int?
    var height: Int?
    var sample_aspect_ratio: String?
    var display_aspect_ratio: String?
    var pix_fmt: String?
    var field_order: String?
    var r_frame_rate: String?
    var avg_frame_rate: String?
    var duration: FlexibleNumber?
    var nb_frames: FlexibleNumber?
    var bit_rate: FlexibleNumber?
    var sample_rate: FlexibleNumber?
    var channels: FlexibleNumber?
    var channel_layout: String?
    var disposition: [String: Int]?
    var tags: [String: String]?
    var side_data_list: [RawSideData]?

    enum CodingKeys: String, CodingKey {
        case codec_name, codec_type, profile, width, height, sample_aspect_ratio, display_aspect_ratio, pix_fmt,
            field_order, r_frame_rate, avg_frame_rate, duration, nb_frames, bit_rate, sample_rate, channels,
            channel_layout, disposition, tags, side_data_list
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        codec_name = try? c.decodeIfPresent(String.self, forKey: .codec_name)
        codec_type = try? c.decodeIfPresent(String.self, forKey: .codec_type)
        profile = try? c.decodeIfPresent(String.self, forKey: .profile)
        width = try? c.decodeIfPresent(Int.self, forKey: .width)
        height = try? c.decodeIfPresent(Int.self, forKey: .height)
        sample_aspect_ratio = try? c.decodeIfPresent(String.self, forKey: .sample_aspect_ratio)
        display_aspect_ratio = try? c.decodeIfPresent(String.self, forKey: .display_aspect_ratio)
        pix_fmt = try? c.decodeIfPresent(String.self, forKey: .pix_fmt)
        field_order = try? c.decodeIfPresent(String.self, forKey: .field_order)
        r_frame_rate = try? c.decodeIfPresent(String.self, forKey: .r_frame_rate)
        avg_frame_rate = try? c.decodeIfPresent(String.self, forKey: .avg_frame_rate)
        duration = try? c.decodeIfPresent(FlexibleNumber.self, forKey: .duration)
        nb_frames = try? c.decodeIfPresent(FlexibleNumber.self, forKey: .nb_frames)
        bit_rate = try? c.decodeIfPresent(FlexibleNumber.self, forKey: .bit_rate)
        sample_rate = try? c.decodeIfPresent(FlexibleNumber.self, forKey: .sample_rate)
        channels = try? c.decodeIfPresent(FlexibleNumber.self, forKey: .channels)
        channel_layout = try? c.decodeIfPresent(String.self, forKey: .channel_layout)
        disposition = try? c.decodeIfPresent([String: Int].self, forKey: .disposition)
        // Tag values are strings, but a malformed one must not hide the rest of the stream.
        if let tags = try? c.decodeIfPresent([String: FlexibleTag].self, forKey: .tags) {
            self.tags = tags.compactMapValues(\.text)
        }
        side_data_list = try? c.decodeIfPresent([RawSideData].self, forKey: .side_data_list)
    }
}

struct FlexibleTag: Decodable {
    var text: String?
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self.text = text
        } else if let number = try? container.decode(Double.self) {
            self.text = String(number)
        }
    }
}

struct RawSideData: Decodable {
    var side_data_type: String?
    var rotation: FlexibleNumber?
}

struct RawFormat: Decodable {
    var format_name: String?
    var duration: FlexibleNumber?
    var size: FlexibleNumber?
}
// swiftlint:enable identifier_name
