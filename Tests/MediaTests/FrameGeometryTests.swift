import Manifest
import Testing

@testable import Media

@Suite struct FrameGeometryTests {
    let hd = Resolution(width: 1280, height: 720)

    @Test func sameAspectScalesWithoutCrop() {
        let place = ScaleAndPlace(aspect: 16.0 / 9, target: hd, fit: .cover)
        #expect(place == ScaleAndPlace(aspect: 1920.0 / 1080, target: hd, fit: .cover))
        #expect((place.scaledWidth, place.scaledHeight, place.x, place.y) == (1280, 720, 0, 0))
    }

    @Test func coverCropsTheCentre() {
        // 720×512 square pixels (1.40625) into 16:9: width 1280, height 1280/1.40625 = 910.2 → 910;
        // crop 190 rows → y 94.
        let place = ScaleAndPlace(aspect: 720.0 / 512, target: hd, fit: .cover)
        #expect((place.scaledWidth, place.scaledHeight, place.x, place.y) == (1280, 910, 0, 94))
        // Vertical 1080×1920 into 16:9: width 1280, height 2275.6 → 2276; crop from y 778.
        let vertical = ScaleAndPlace(aspect: 1080.0 / 1920, target: hd, fit: .cover)
        #expect((vertical.scaledWidth, vertical.scaledHeight, vertical.x, vertical.y) == (1280, 2276, 0, 778))
        // Wider than 16:9 (2.39:1): height 720, width 1720.8 → 1720, crop x 220.
        let scope = ScaleAndPlace(aspect: 2.39, target: hd, fit: .cover)
        #expect((scope.scaledWidth, scope.scaledHeight, scope.x, scope.y) == (1720, 720, 220, 0))
    }

    @Test func padAddsBars() {
        let place = ScaleAndPlace(aspect: 1080.0 / 1920, target: hd, fit: .pad)
        // Height 720, width 405 → 406 (even); bars of 437 → x 436 (even).
        #expect((place.scaledWidth, place.scaledHeight, place.x, place.y) == (406, 720, 436, 0))
        let fourThree = ScaleAndPlace(aspect: 4.0 / 3, target: hd, fit: .pad)
        #expect((fourThree.scaledWidth, fourThree.scaledHeight, fourThree.x, fourThree.y) == (960, 720, 160, 0))
    }

    @Test func cropJitterZoomsAndMovesTheWindow() {
        let place = ScaleAndPlace(aspect: 16.0 / 9, target: hd, fit: .cover, zoom: 1.1, offset: (0.0, 1.0))
        // 720 × 1.1 = 792 rows, 1408 columns; window at the left edge, bottom.
        #expect((place.scaledWidth, place.scaledHeight, place.x, place.y) == (1408, 792, 0, 72))
        let right = ScaleAndPlace(aspect: 16.0 / 9, target: hd, fit: .cover, zoom: 1.1, offset: (1.0, 0.5))
        #expect((right.x, right.y) == (128, 36))
    }

    @Test func bucketsStayInBudgetOnTheGrid() {
        let buckets = AspectBuckets(pixelBudget: 1280 * 720, step: 16)
        let all = buckets.all
        #expect(!all.isEmpty)
        for size in all {
            #expect(size.width % 16 == 0 && size.height % 16 == 0)
            #expect(size.pixels <= 1280 * 720)
            #expect(Double(size.width) / Double(size.height) <= 3.0 + 1e-9)
        }
        #expect(all.contains(Resolution(width: 1280, height: 720)))
        #expect(all.contains(Resolution(width: 720, height: 1280)))
        // Each source goes to the nearest shape.
        #expect(buckets.bucket(forAspect: 16.0 / 9) == Resolution(width: 1280, height: 720))
        #expect(buckets.bucket(forAspect: 9.0 / 16) == Resolution(width: 720, height: 1280))
        #expect(buckets.bucket(forAspect: 1) == Resolution(width: 960, height: 960))
        // 720×512 (1.40625): 1136×800 is 1.42, the nearest on the grid.
        #expect(buckets.bucket(forAspect: 720.0 / 512) == Resolution(width: 1136, height: 800))
        // 4:3: 1104×832 (1.327) beats 1120×816 (1.373) and 1088×832 (1.308).
        #expect(buckets.bucket(forAspect: 4.0 / 3) == Resolution(width: 1104, height: 832))
        #expect(FrameTarget.buckets(buckets).size(forAspect: 4.0 / 3) == buckets.bucket(forAspect: 4.0 / 3))
        #expect(FrameTarget.fixed(hd).size(forAspect: 0.3) == hd)
    }

    @Test func smallBudgetsStillGiveBuckets() {
        let buckets = AspectBuckets(pixelBudget: 832 * 480, step: 16)
        #expect(buckets.bucket(forAspect: 832.0 / 480) == Resolution(width: 832, height: 480))
        #expect(AspectBuckets(pixelBudget: 100, step: 16).all.isEmpty)
    }
}
