import Testing

@testable import Media

@Suite struct ClipPlannerTests {
    let policy = ClipPolicy(frames: 81, fps: 16)

    @Test func frameCountsAreFourNPlusOne() {
        #expect(ClipPlanner.isValidFrameCount(1))
        #expect(ClipPlanner.isValidFrameCount(49))
        #expect(ClipPlanner.isValidFrameCount(81))
        #expect(!ClipPlanner.isValidFrameCount(80))
        #expect(!ClipPlanner.isValidFrameCount(0))
        #expect(ClipPlanner.largestValidFrameCount(atMost: 80) == 77)
        #expect(ClipPlanner.largestValidFrameCount(atMost: 81) == 81)
        #expect(ClipPlanner.largestValidFrameCount(atMost: 4) == 1)
        #expect(ClipPlanner.largestValidFrameCount(atMost: 0) == nil)
    }

    @Test func availableFramesNeverOvercount() {
        // 81 frames at 16 fps span exactly 81/16 = 5.0625 s.
        #expect(ClipPlanner.availableFrames(duration: 5.0625, fps: 16) == 81)
        #expect(ClipPlanner.availableFrames(duration: 5.06, fps: 16) == 80)
        #expect(ClipPlanner.availableFrames(duration: 5.0, fps: 16) == 80)
        #expect(ClipPlanner.availableFrames(duration: 0, fps: 16) == 0)
        #expect(ClipPlanner.availableFrames(duration: .nan, fps: 16) == 0)
        // At 1.25× speed a second of output needs 1.25 s of source.
        #expect(ClipPlanner.availableFrames(duration: 10, fps: 16, speed: 1.25) == 128)
    }

    @Test func headTakesTheFirstClip() {
        #expect(ClipPlanner.plan(duration: 23.17, policy: policy) == .clips([ClipPlan(index: 0, start: 0, frames: 81)]))
        #expect(
            ClipPlanner.plan(duration: 5.0625, policy: policy) == .clips([ClipPlan(index: 0, start: 0, frames: 81)]))
    }

    @Test func chunkTakesBackToBackClips() {
        var chunk = policy
        chunk.mode = .chunk
        chunk.clipsPerVideo = 0
        // 23.17 s → 370 frames → 4 clips of 81 at 0, 5.0625, 10.125, 15.1875 s.
        #expect(
            ClipPlanner.plan(duration: 23.17, policy: chunk)
                == .clips([
                    ClipPlan(index: 0, start: 0, frames: 81), ClipPlan(index: 1, start: 5.062, frames: 81),
                    ClipPlan(index: 2, start: 10.125, frames: 81), ClipPlan(index: 3, start: 15.187, frames: 81),
                ]))
        chunk.clipsPerVideo = 2
        if case .clips(let clips) = ClipPlanner.plan(duration: 23.17, policy: chunk) {
            #expect(clips.map(\.start) == [0, 5.062])
        } else {
            Issue.record("expected clips")
        }
    }

    @Test func uniformSpreadsWithoutOverlap() {
        var uniform = policy
        uniform.mode = .uniform
        uniform.clipsPerVideo = 3
        // 30 s: slack 30 − 5.0625 = 24.9375 s → starts 0, 12.46875 (→ 12.468), 24.9375 (→ 24.937).
        #expect(
            ClipPlanner.plan(duration: 30, policy: uniform)
                == .clips([
                    ClipPlan(index: 0, start: 0, frames: 81), ClipPlan(index: 1, start: 12.468, frames: 81),
                    ClipPlan(index: 2, start: 24.937, frames: 81),
                ]))
        // 12 s holds two non-overlapping clips (192 frames), so K = 3 becomes 2.
        if case .clips(let clips) = ClipPlanner.plan(duration: 12, policy: uniform) {
            #expect(clips.map(\.start) == [0, 6.937])
        } else {
            Issue.record("expected clips")
        }
        // One clip is centred.
        uniform.clipsPerVideo = 1
        #expect(
            ClipPlanner.plan(duration: 10, policy: uniform) == .clips([ClipPlan(index: 0, start: 2.468, frames: 81)]))
    }

    @Test func shortVideosFollowTheRule() {
        // 3.2 s at 16 fps holds 51 frames: shorten → 49 (4·12+1).
        #expect(ClipPlanner.plan(duration: 3.2, policy: policy) == .clips([ClipPlan(index: 0, start: 0, frames: 49)]))
        var pad = policy
        pad.shortVideos = .pad
        #expect(
            ClipPlanner.plan(duration: 3.2, policy: pad)
                == .clips([ClipPlan(index: 0, start: 0, frames: 81, paddedFrames: 30)]))
        var skip = policy
        skip.shortVideos = .skip
        guard case .skipped(let reason) = ClipPlanner.plan(duration: 3.2, policy: skip) else {
            Issue.record("expected a skip")
            return
        }
        #expect(reason.contains("3.2 s") && reason.contains("51 frames"))
        // 0.9 s holds 14 frames → 13 after shortening, below the minimum of 17.
        guard case .skipped(let tooShort) = ClipPlanner.plan(duration: 0.9, policy: policy) else {
            Issue.record("expected a skip")
            return
        }
        #expect(tooShort.contains("17"))
    }

    @Test func policyProblems() {
        #expect(ClipPolicy(frames: 80).problem?.contains("4n+1") == true)
        #expect(ClipPolicy(frames: 81, minimumFrames: 16).problem != nil)
        #expect(ClipPolicy(frames: 17, minimumFrames: 21).problem != nil)
        #expect(ClipPolicy(mode: .uniform, clipsPerVideo: 0).problem != nil)
        #expect(ClipPolicy().problem == nil)
        #expect(ClipPolicy(frames: 49, minimumFrames: 1).problem == nil)
    }
}
