import Manifest
import Testing

@testable import Media

@Suite struct FFmpegCommandTests {
    let hd = Resolution(width: 1280, height: 720)
    let progressive = VideoStreamInfo(
        codec: "h264", width: 1920, height: 1080, realFrameRate: Rational(25, 1), averageFrameRate: Rational(25, 1))

    @Test func progressiveHDClip() {
        let filters = FFmpegCommandBuilder.filters(
            video: progressive, isImage: false, clip: ClipPlan(index: 0, start: 0, frames: 81), size: hd,
            settings: EncodeSettings())
        #expect(
            filters == [
                "setpts=PTS-STARTPTS", "fps=16", "trim=end_frame=81", "scale=1280:720:flags=lanczos",
                "crop=1280:720:0:0", "setsar=1",
                "format=yuv420p",
            ])
    }

    @Test func interlacedSourcesAreDeinterlacedFirst() {
        var interlaced = progressive
        interlaced.fieldOrder = .topFirst
        let clip = ClipPlan(index: 0, start: 0, frames: 49)
        let auto = FFmpegCommandBuilder.filters(
            video: interlaced, isImage: false, clip: clip, size: hd, settings: EncodeSettings())
        #expect(auto.first == "bwdif=mode=send_frame:parity=auto:deint=all")
        #expect(auto[3] == "trim=end_frame=49")
        let off = FFmpegCommandBuilder.filters(
            video: interlaced, isImage: false, clip: clip, size: hd, settings: EncodeSettings(deinterlace: .off))
        #expect(!off.contains { $0.hasPrefix("bwdif") || $0.hasPrefix("yadif") })
        let forced = FFmpegCommandBuilder.filters(
            video: progressive, isImage: false, clip: clip, size: hd, settings: EncodeSettings(deinterlace: .yadif))
        #expect(forced.first == "yadif=mode=send_frame:parity=auto:deint=all")
        #expect(
            FFmpegCommandBuilder.filters(
                video: progressive, isImage: false, clip: clip, size: hd, settings: EncodeSettings()
            ).first == "setpts=PTS-STARTPTS")
    }

    @Test func sampleAspectRatioAndRotationDecideTheScale() {
        // 720×512 with 67:53 pixels shows as 910×512 (≈16:9): scaled straight to 1280×720 ± 2 rows.
        let anamorphic = VideoStreamInfo(codec: "h264", width: 720, height: 512, sampleAspectRatio: Rational(67, 53))
        let filters = FFmpegCommandBuilder.filters(
            video: anamorphic, isImage: false, clip: ClipPlan(index: 0, start: 0, frames: 81), size: hd,
            settings: EncodeSettings())
        #expect(filters.contains("scale=1280:720:flags=lanczos"))
        // Stored 1280×720, turned 90°: a vertical picture, so it is scaled to width 1280 and cropped top and bottom.
        let rotated = VideoStreamInfo(codec: "h264", width: 1280, height: 720, rotation: 90)
        let turned = FFmpegCommandBuilder.filters(
            video: rotated, isImage: false, clip: ClipPlan(index: 0, start: 0, frames: 81), size: hd,
            settings: EncodeSettings())
        #expect(turned.contains("scale=1280:2276:flags=lanczos"))
        #expect(turned.contains("crop=1280:720:0:778"))
    }

    @Test func padRuleRepeatsTheLastFrame() {
        let filters = FFmpegCommandBuilder.filters(
            video: progressive, isImage: false, clip: ClipPlan(index: 0, start: 0, frames: 81, paddedFrames: 30),
            size: hd,
            settings: EncodeSettings(fit: .pad))
        #expect(filters[2] == "trim=end_frame=51")
        #expect(filters[3] == "tpad=stop_mode=clone:stop=30")
        #expect(filters[5] == "pad=1280:720:0:0:color=black")
    }

    @Test func augmentationFilters() {
        var augmentation = Augmentation()
        augmentation.horizontalFlip = true
        augmentation.reverse = true
        augmentation.speed = 1.25
        augmentation.brightness = -0.05
        augmentation.contrast = 1.1
        augmentation.saturation = 0.95
        augmentation.hue = 4
        augmentation.cropZoom = 1.1
        augmentation.cropX = 0
        augmentation.cropY = 1
        let filters = FFmpegCommandBuilder.filters(
            video: progressive, isImage: false, clip: ClipPlan(index: 0, start: 0, frames: 81), size: hd,
            settings: EncodeSettings(),
            augmentation: augmentation)
        #expect(
            filters == [
                "setpts=(PTS-STARTPTS)/1.25", "fps=16", "trim=end_frame=81", "scale=1408:792:flags=lanczos",
                "crop=1280:720:0:72", "reverse",
                "hflip", "eq=brightness=-0.05:contrast=1.1:saturation=0.95", "hue=h=4", "setsar=1", "format=yuv420p",
            ])
        #expect(augmentation.label == "hflip;crop=1.1@0,1;color=b-0.05,c1.1,s0.95,h+4;reverse;speed=1.25")
    }

    @Test func imagesBecomeOnePNGFrame() {
        let command = FFmpegCommandBuilder.command(
            source: "/data/a.jpg", video: progressive, isImage: true, clip: ClipPlanner.image, size: hd,
            settings: EncodeSettings())
        #expect(command.filterGraph == "scale=1280:720:flags=lanczos,crop=1280:720:0:0,setsar=1,format=rgb24")
        #expect(command.fileExtension == "png")
        #expect(command.format == "image2")
        #expect(command.expectedFrames == 1)
        #expect(command.arguments.contains("-update"))
        #expect(!command.arguments.contains("-ss"))
    }

    @Test func commandLineAndSpec() {
        let clip = ClipPlan(index: 2, start: 10.125, frames: 81)
        let command = FFmpegCommandBuilder.command(
            source: "/data/v.mp4", video: progressive, isImage: false, clip: clip, size: hd, settings: EncodeSettings())
        let arguments = command.arguments(output: "/out/x.part")
        #expect(arguments.last == "/out/x.part")
        #expect(arguments[arguments.count - 3..<arguments.count - 1] == ["-f", "mp4"])
        // Seek before the input (exact since ffmpeg 2.1), then the source.
        let seek = arguments.firstIndex(of: "-ss")!
        #expect(arguments[seek + 1] == "10.125")
        #expect(arguments[command.inputIndex] == "/data/v.mp4")
        #expect(arguments[command.inputIndex - 1] == "-i")
        #expect(seek < command.inputIndex)
        #expect(arguments.contains("libx264") && arguments.contains("12"))
        #expect(arguments[arguments.firstIndex(of: "-frames:v")! + 1] == "81")
        // The spec ignores where the source lives but not what is done to it.
        let moved = FFmpegCommandBuilder.command(
            source: "/elsewhere/v.mp4", video: progressive, isImage: false, clip: clip, size: hd,
            settings: EncodeSettings())
        #expect(moved.spec == command.spec)
        let lossless = FFmpegCommandBuilder.command(
            source: "/data/v.mp4", video: progressive, isImage: false, clip: clip, size: hd,
            settings: EncodeSettings(quality: .lossless))
        #expect(lossless.spec != command.spec)
        #expect(lossless.fileExtension == "mkv")
        #expect(lossless.arguments.contains("ffv1"))
        let later = FFmpegCommandBuilder.command(
            source: "/data/v.mp4", video: progressive, isImage: false,
            clip: ClipPlan(index: 2, start: 10.2, frames: 81), size: hd, settings: EncodeSettings())
        #expect(later.spec != command.spec)
        #expect(command.spec.count == 16)
    }

    @Test func numbersAndProgress() {
        #expect(FFmpegCommandBuilder.number(1) == "1")
        #expect(FFmpegCommandBuilder.number(5.0625) == "5.0625")
        #expect(FFmpegCommandBuilder.number(-0.05) == "-0.05")
        #expect(FFmpegCommandBuilder.number(1.0 / 3) == "0.333333")
        let progress = "frame=40\nfps=20.1\nprogress=continue\nframe=81\nfps=21.0\nprogress=end\n"
        #expect(FFmpegCommandBuilder.framesWritten(progressOutput: Array(progress.utf8)) == 81)
        #expect(FFmpegCommandBuilder.framesWritten(progressOutput: []) == nil)
    }
}
