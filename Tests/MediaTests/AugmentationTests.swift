import Support
import Testing

@testable import Media

@Suite struct AugmentationTests {
    @Test func drawsAreReproducibleAndNeverEmpty() {
        let policy = AugmentationPolicy(categories: ["무형문화유산"], seed: 42)
        for clip in 0..<20 {
            let first = policy.augmentation(source: "train/videos/000123.mp4", clip: clip, copy: 1, isVideo: true)
            let again = policy.augmentation(source: "train/videos/000123.mp4", clip: clip, copy: 1, isVideo: true)
            #expect(first == again)
            #expect(!first.isIdentity)
        }
        let other = AugmentationPolicy(categories: ["무형문화유산"], seed: 43)
        let draws = (0..<20).map { policy.augmentation(source: "a", clip: $0, copy: 1, isVideo: true) }
        let otherDraws = (0..<20).map { other.augmentation(source: "a", clip: $0, copy: 1, isVideo: true) }
        #expect(draws != otherDraws)
    }

    @Test func imagesGetNoTimeTransforms() {
        var random = SeededRandom(seed: 7)
        for _ in 0..<200 {
            let augmentation = Augmentation.draw(kinds: Set(AugmentationKind.allCases), isVideo: false, random: &random)
            #expect(!augmentation.reverse)
            #expect(augmentation.speed == 1)
            #expect(!augmentation.isIdentity)
        }
        // Only time transforms asked for, and an image: nothing to do.
        #expect(Augmentation.draw(kinds: [.reverse, .speed], isVideo: false, random: &random).isIdentity)
    }

    @Test func strengthsStayInTheirRanges() {
        var random = SeededRandom(seed: 11)
        var sawEach: Set<AugmentationKind> = []
        for _ in 0..<500 {
            let a = Augmentation.draw(kinds: Set(AugmentationKind.allCases), isVideo: true, random: &random)
            if a.horizontalFlip { sawEach.insert(.hflip) }
            if a.cropZoom != 1 {
                sawEach.insert(.crop)
                #expect(a.cropZoom >= 1.05 && a.cropZoom <= 1.2)
                #expect((0...1).contains(a.cropX) && (0...1).contains(a.cropY))
            }
            if a.changesColour {
                sawEach.insert(.color)
                #expect(
                    abs(a.brightness) <= 0.06 + 1e-9 && abs(a.contrast - 1) <= 0.1 + 1e-9
                        && abs(a.saturation - 1) <= 0.1 + 1e-9 && abs(a.hue) <= 6)
            }
            if a.reverse { sawEach.insert(.reverse) }
            if a.speed != 1 {
                sawEach.insert(.speed)
                #expect((a.speed >= 0.8 && a.speed <= 0.95) || (a.speed >= 1.05 && a.speed <= 1.25))
            }
        }
        #expect(sawEach == Set(AugmentationKind.allCases))
    }

    @Test func whoIsAugmented() {
        let byCategory = AugmentationPolicy(categories: ["유형문화유산"])
        #expect(byCategory.applies(category: "유형문화유산", weight: nil))
        #expect(!byCategory.applies(category: "축제", weight: 9))
        let byWeight = AugmentationPolicy(minimumWeight: 2.5)
        #expect(byWeight.applies(category: "축제", weight: 2.5))
        #expect(!byWeight.applies(category: "축제", weight: 2.4))
        #expect(!byWeight.applies(category: "축제", weight: nil))
        #expect(!AugmentationPolicy().isActive)
        #expect(!AugmentationPolicy(categories: ["축제"], copies: 0).applies(category: "축제", weight: nil))
    }

    @Test func labels() {
        #expect(Augmentation().label == "")
        var a = Augmentation()
        a.speed = 0.85
        a.hue = -3.5
        #expect(a.label == "color=b+0,c1,s1,h-3.5;speed=0.85")
        #expect(StableHash.hex(StableHash.fnv1a64("")) == "cbf29ce484222325")
        #expect(StableHash.hex(StableHash.fnv1a64("a")) == "af63dc4c8601ec8c")
    }
}
