/// How clips are taken from a video.
public enum ClipMode: String, Sendable, Codable, CaseIterable {
    /// One clip from the first frame.
    case head
    /// K clips spread evenly from the first frame to the last (fewer when K would overlap).
    case uniform
    /// Back-to-back clips from the first frame, at most K (0 = as many as fit).
    case chunk
}

/// What happens to a video shorter than one clip.
public enum ShortVideoRule: String, Sendable, Codable, CaseIterable {
    /// One clip with the largest 4n+1 frame count the video holds (if at least the minimum).
    case shorten
    /// One clip of the full frame count; the last frame is repeated to fill it (if the video
    /// holds at least the minimum).
    case pad
    /// No clip; the video is listed as skipped with its length.
    case skip
}

/// The rules that turn one video into clips.
public struct ClipPolicy: Sendable, Equatable, Codable {
    /// Frames per clip, 4n+1 (Wan's VAE compresses time by 4 after the first frame).
    public var frames: Int
    /// Output frame rate (Wan2.2 trains at 16 fps).
    public var fps: Int
    public var mode: ClipMode
    /// uniform: the number of clips; chunk: the most clips (0 = no limit); head: ignored.
    public var clipsPerVideo: Int
    public var shortVideos: ShortVideoRule
    /// Fewest frames a shortened or padded clip may hold (4n+1).
    public var minimumFrames: Int

    public init(
        frames: Int = 81, fps: Int = 16, mode: ClipMode = .head, clipsPerVideo: Int = 1,
        shortVideos: ShortVideoRule = .shorten, minimumFrames: Int = 17
    ) {
        self.frames = frames
        self.fps = fps
        self.mode = mode
        self.clipsPerVideo = clipsPerVideo
        self.shortVideos = shortVideos
        self.minimumFrames = minimumFrames
    }

    /// `nil` when valid, else what is wrong.
    public var problem: String? {
        if !ClipPlanner.isValidFrameCount(frames) {
            return "frames per clip must be 4n+1 (1, 5, …, 49, …, 81), got \(frames)"
        }
        if !ClipPlanner.isValidFrameCount(minimumFrames) {
            return "the minimum frame count must be 4n+1, got \(minimumFrames)"
        }
        if minimumFrames > frames {
            return "the minimum frame count (\(minimumFrames)) exceeds the clip length (\(frames))"
        }
        if fps <= 0 { return "the frame rate must be positive, got \(fps)" }
        if clipsPerVideo < 0 { return "clips per video cannot be negative" }
        if mode == .uniform && clipsPerVideo == 0 { return "uniform mode needs at least one clip per video" }
        return nil
    }
}

/// One clip to cut: where it starts in the source, how many frames it has.
public struct ClipPlan: Sendable, Equatable, Codable {
    /// 0-based position of the clip within its video.
    public var index: Int
    /// Seconds from the start of the source.
    public var start: Double
    /// Frames in the clip (4n+1; 1 for an image).
    public var frames: Int
    /// Of `frames`, how many repeat the last source frame (pad rule); 0 otherwise.
    public var paddedFrames: Int

    public init(index: Int, start: Double, frames: Int, paddedFrames: Int = 0) {
        self.index = index
        self.start = start
        self.frames = frames
        self.paddedFrames = paddedFrames
    }

    /// Frames taken from the source.
    public var sourceFrames: Int { frames - paddedFrames }
}

/// Clips for one video, or why it gives none.
public enum ClipPlanOutcome: Sendable, Equatable {
    case clips([ClipPlan])
    case skipped(String)
}

/// Pure functions from a video's length to its clips.
///
/// Output frame k of a clip starting at s shows source time s + k/fps (times `speed` when the
/// clip is sped up). A video of D seconds therefore holds ⌊D·fps⌋ output frames from its start
/// (one frame fewer than the rounding of ffmpeg's fps filter in the worst case, never one more,
/// so a planned clip is never short).
public enum ClipPlanner {
    public static func isValidFrameCount(_ frames: Int) -> Bool { frames >= 1 && (frames - 1) % 4 == 0 }

    /// The largest 4n+1 not above `frames`, or nil when `frames` < 1.
    public static func largestValidFrameCount(atMost frames: Int) -> Int? {
        frames >= 1 ? (frames - 1) / 4 * 4 + 1 : nil
    }

    /// Output frames available in `duration` seconds at `fps`, played at `speed`.
    public static func availableFrames(duration: Double, fps: Int, speed: Double = 1) -> Int {
        guard duration.isFinite, duration > 0 else { return 0 }
        return Int((duration * Double(fps) / speed + 1e-6).rounded(.down))
    }

    /// Source seconds one clip of `frames` frames spans.
    public static func span(frames: Int, fps: Int, speed: Double = 1) -> Double {
        Double(frames) * speed / Double(fps)
    }

    /// The clips of a video `duration` seconds long.
    public static func plan(duration: Double, policy: ClipPolicy) -> ClipPlanOutcome {
        let available = availableFrames(duration: duration, fps: policy.fps)
        let length = span(frames: policy.frames, fps: policy.fps)
        let fitting = available / policy.frames
        guard fitting >= 1 else { return shortVideo(duration: duration, available: available, policy: policy) }
        switch policy.mode {
        case .head:
            return .clips([ClipPlan(index: 0, start: 0, frames: policy.frames)])
        case .chunk:
            let count = policy.clipsPerVideo == 0 ? fitting : min(fitting, policy.clipsPerVideo)
            return .clips(
                (0..<count).map { ClipPlan(index: $0, start: milliseconds(Double($0) * length), frames: policy.frames) }
            )
        case .uniform:
            // Never more clips than fit without overlapping: overlapping clips are near-duplicates.
            let count = min(policy.clipsPerVideo, fitting)
            let slack = max(0, duration - length)
            if count == 1 { return .clips([ClipPlan(index: 0, start: milliseconds(slack / 2), frames: policy.frames)]) }
            return .clips(
                (0..<count).map {
                    ClipPlan(
                        index: $0, start: milliseconds(slack * Double($0) / Double(count - 1)), frames: policy.frames)
                })
        }
    }

    static func shortVideo(duration: Double, available: Int, policy: ClipPolicy) -> ClipPlanOutcome {
        let seconds = (duration * 100).rounded() / 100
        let what =
            "video of \(seconds) s holds \(available) frames at "
            + "\(policy.fps) fps, fewer than one clip of \(policy.frames)"
        switch policy.shortVideos {
        case .skip:
            return .skipped(what + " (--short-videos skip)")
        case .shorten:
            guard let frames = largestValidFrameCount(atMost: available), frames >= policy.minimumFrames else {
                let longest = largestValidFrameCount(atMost: available).map { "\($0) frames" } ?? "no frame"
                return .skipped(
                    what + "; the longest 4n+1 clip it holds (\(longest)) "
                        + "is below the minimum of \(policy.minimumFrames)")
            }
            return .clips([ClipPlan(index: 0, start: 0, frames: frames)])
        case .pad:
            guard available >= policy.minimumFrames else {
                return .skipped(what + ", too few to pad (the minimum is \(policy.minimumFrames))")
            }
            return .clips([ClipPlan(index: 0, start: 0, frames: policy.frames, paddedFrames: policy.frames - available)]
            )
        }
    }

    /// An image becomes one frame.
    public static let image = ClipPlan(index: 0, start: 0, frames: 1)

    /// Rounds a start time down to whole milliseconds: stable in file names and manifests, and
    /// never later than the exact start (so the clip still fits).
    static func milliseconds(_ seconds: Double) -> Double {
        (seconds * 1000 + 1e-9).rounded(.down) / 1000
    }
}
