import Manifest
import Testing

@testable import Media

/// ffprobe JSON as ffmpeg 5.1 prints it, trimmed to the fields that matter.
@Suite struct MediaProbeTests {
    static let interlacedTransportStream = """
        {
            "programs": [ { "streams": [ { "index": 0, "codec_name": "mpeg2video" } ] } ],
            "streams": [
                { "index": 0, "codec_name": "mpeg2video", "codec_type": \
        "video", "profile": "Main", "width": 1920, "height": 1080,
                  "sample_aspect_ratio": "1:1", "display_aspect_ratio": \
        "16:9", "pix_fmt": "yuv420p", "field_order": "tt",
                  "r_frame_rate": "30000/1001", "avg_frame_rate": "30000/1001", \
        "start_time": "1.433367", "duration": "4.004000",
                  "side_data_list": [ { } ] },
                { "index": 1, "codec_name": "mp2", "codec_type": "audio", "sample_rate": "48000", "channels": 2,
                  "channel_layout": "stereo", "duration": "4.032000" }
            ],
            "format": { "filename": "a.ts", "format_name": "mpegts", "duration": "4.032000", "size": "2538476" }
        }
        """

    @Test func interlacedBroadcastStream() throws {
        let probe = try MediaProbe.parse(ffprobeJSON: Array(Self.interlacedTransportStream.utf8))
        let video = try #require(probe.video)
        #expect(probe.formatName == "mpegts")
        #expect(!probe.isStillImage)
        #expect(probe.mediaType == .video)
        #expect(video.codec == "mpeg2video")
        #expect(video.fieldOrder == .topFirst)
        #expect(video.isInterlaced)
        #expect(video.frameRateMode == .constant)
        #expect(video.realFrameRate == Rational(30_000, 1_001))
        // The video stream's own duration wins over the container's (audio runs longer).
        #expect(probe.duration == 4.004)
        #expect(probe.sizeBytes == 2_538_476)
        #expect(probe.audio == AudioStreamInfo(codec: "mp2", sampleRate: 48_000, channels: 2, channelLayout: "stereo"))
        #expect(video.displaySize == Resolution(width: 1920, height: 1080))
    }

    @Test func displayMatrixRotationIsCounterClockwise() throws {
        // A phone video stored 1280×720 whose display matrix says "rotate -90" (ffprobe's
        // counter-clockwise angle): it must be turned 90° clockwise and shows as 720×1280.
        let json = """
            {"streams":[{"codec_type":"video","codec_name":"h264","width":1280,"height":720,"r_frame_rate":"30/1",
            "avg_frame_rate":"30/1","side_data_list":[{"side_data_type":"Display \
            Matrix","displaymatrix":"...","rotation":-90}]}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"3.000000"}}
            """
        let video = try #require(try MediaProbe.parse(ffprobeJSON: Array(json.utf8)).video)
        #expect(video.rotation == 90)
        #expect(video.isSideways)
        #expect(video.displaySize == Resolution(width: 720, height: 1280))
        #expect(abs(video.displayAspect - 0.5625) < 1e-12)
        // ffprobe prints +90 for a picture that must be turned 90° counter-clockwise (270° clockwise).
        let other = json.replacingOccurrences(of: "\"rotation\":-90", with: "\"rotation\":90")
        #expect(try MediaProbe.parse(ffprobeJSON: Array(other.utf8)).video?.rotation == 270)
        let upsideDown = json.replacingOccurrences(of: "\"rotation\":-90", with: "\"rotation\":180.0")
        #expect(try MediaProbe.parse(ffprobeJSON: Array(upsideDown.utf8)).video?.rotation == 180)
    }

    @Test func legacyRotateTagIsClockwise() throws {
        let json = """
            {"streams":[{"codec_type":"video","codec_name":"h264","width":1920,"height":1080,"tags":{"rotate":"90",\
            "language":"und"}}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"3.0"}}
            """
        let video = try #require(try MediaProbe.parse(ffprobeJSON: Array(json.utf8)).video)
        #expect(video.rotation == 90)
        #expect(video.displaySize == Resolution(width: 1080, height: 1920))
    }

    @Test func anamorphicPixelsWidenTheDisplay() throws {
        // 720×512 stored with 67:53 pixels, as x264 writes a 16:9 SD picture.
        let json = """
            {"streams":[{"codec_type":"video","codec_name":"h264","width":720,"height":512,\
            "sample_aspect_ratio":"67:53",
            "display_aspect_ratio":"3015:1696","r_frame_rate":"25/1","avg_frame_rate":"25/1",\
            "field_order":"progressive"}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"6.0"}}
            """
        let video = try #require(try MediaProbe.parse(ffprobeJSON: Array(json.utf8)).video)
        #expect(video.sampleAspectRatio == Rational(67, 53))
        // 720 × 67/53 = 910.19 → 910 px wide.
        #expect(video.displaySize == Resolution(width: 910, height: 512))
        #expect(abs(video.displayAspect - 720.0 * 67 / 53 / 512) < 1e-12)
        #expect(video.fieldOrder == .progressive)
    }

    @Test func variableFrameRate() throws {
        let json = """
            {"streams":[{"codec_type":"video","codec_name":"h264","width":320,"height":240,"r_frame_rate":"30/1",
            "avg_frame_rate":"330/19","duration":"3.800000","nb_frames":"66"}],"format":{"format_name":"mov,mp4,m4a,\
            3gp,3g2,mj2"}}
            """
        let video = try #require(try MediaProbe.parse(ffprobeJSON: Array(json.utf8)).video)
        #expect(video.frameRateMode == .variable)
        #expect(video.frameCount == 66)
        #expect(abs((video.frameRate ?? 0) - 330.0 / 19) < 1e-12)
    }

    @Test func fieldRateIsNotVariable() throws {
        // Interlaced H.264 may report the field rate as r_frame_rate: twice the frame rate.
        let json = """
            {"streams":[{"codec_type":"video","codec_name":"h264","width":1920,"height":1080,"field_order":"tt",
            "r_frame_rate":"60000/1001","avg_frame_rate":"30000/1001"}],"format":{"format_name":"mpegts",\
            "duration":"2.0"}}
            """
        #expect(try MediaProbe.parse(ffprobeJSON: Array(json.utf8)).video?.frameRateMode == .constant)
        let progressive = json.replacingOccurrences(of: "\"tt\"", with: "\"progressive\"")
        #expect(try MediaProbe.parse(ffprobeJSON: Array(progressive.utf8)).video?.frameRateMode == .variable)
    }

    @Test func stillImages() throws {
        let png = """
            {"streams":[{"codec_type":"video","codec_name":"png","width":640,"height":360,"r_frame_rate":"25/1",
            "avg_frame_rate":"25/1","field_order":"unknown"}],"format":{"format_name":"png_pipe","size":"123"}}
            """
        let probe = try MediaProbe.parse(ffprobeJSON: Array(png.utf8))
        #expect(probe.isStillImage)
        #expect(probe.mediaType == .image)
        #expect(probe.duration == nil)
        #expect(probe.video?.fieldOrder == .unknown)
        #expect(probe.video?.isInterlaced == false)
        let jpeg = png.replacingOccurrences(of: "png_pipe", with: "image2").replacingOccurrences(
            of: "\"png\"", with: "\"mjpeg\"")
        #expect(try MediaProbe.parse(ffprobeJSON: Array(jpeg.utf8)).isStillImage)
    }

    @Test func coverArtIsNotTheVideo() throws {
        let json = """
            {"streams":[{"codec_type":"video","codec_name":"mjpeg","width":300,"height":300,\
            "disposition":{"attached_pic":1}},
            {"codec_type":"video","codec_name":"h264","width":1280,"height":720,"disposition":{"attached_pic":0}}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"10.0"}}
            """
        #expect(try MediaProbe.parse(ffprobeJSON: Array(json.utf8)).video?.codec == "h264")
    }

    @Test func unusableOutput() {
        #expect(throws: ProbeParseError.noStreams) {
            try MediaProbe.parse(ffprobeJSON: Array(#"{"streams":[],"format":{"format_name":"mpegts"}}"#.utf8))
        }
        #expect(throws: ProbeParseError.noFormat) {
            try MediaProbe.parse(ffprobeJSON: Array(#"{"streams":[{"codec_type":"audio","codec_name":"mp2"}]}"#.utf8))
        }
        #expect(throws: ProbeParseError.noPictureSize(codec: "h264")) {
            try MediaProbe.parse(
                ffprobeJSON: Array(
                    #"{"streams":[{"codec_type":"video","codec_name":"h264"}],"format":{"format_name":"h264"}}"#.utf8))
        }
        #expect(throws: ProbeParseError.self) { try MediaProbe.parse(ffprobeJSON: Array("moov atom not found".utf8)) }
    }

    @Test func ffmpegMessagesLoseTheirAddresses() {
        let tail =
            "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x563537bae180] moov atom not "
            + "found\n/data/a.mp4: Invalid data found when processing input\n"
        #expect(
            Prober.lastLines(tail, count: 3) == "mov,mp4,m4a,3gp,3g2,mj2: moov atom not found / /data/a.mp4: "
                + "Invalid data found when processing input")
        #expect(Prober.lastLines(tail, count: 1) == "/data/a.mp4: Invalid data found when processing input")
        #expect(
            Prober.withoutContextPrefix("[h264 @ 0xdeadbeef] error while decoding MB 3 4")
                == "h264: error while decoding MB 3 4")
        #expect(Prober.withoutContextPrefix("[plain text]") == "[plain text]")
    }
}
