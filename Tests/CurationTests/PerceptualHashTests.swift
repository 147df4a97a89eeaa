import Foundation
import Testing

@testable import Curation

@Suite struct PerceptualHashTests {
    func frame(side: Int = 256, _ value: (Int, Int) -> Int) -> GreyFrame {
        var pixels: [UInt8] = []
        for y in 0..<side { for x in 0..<side { pixels.append(UInt8(max(0, min(255, value(x, y))))) } }
        return GreyFrame(side: side, pixels: pixels)
    }

    @Test func dHashOfAGradientFallingToTheRightIsAllOnes() {
        let falling = frame { x, _ in 255 - x }
        let rising = frame { x, _ in x }
        #expect(PerceptualHash.dHash(falling) == UInt64.max)
        #expect(PerceptualHash.dHash(rising) == 0)
    }

    @Test func pHashIsStableUnderBrightnessAndSmallNoiseButNotUnderAnotherPicture() {
        let picture = frame { x, y in 128 + Int(40 * sin(Double(x) / 17) + 40 * cos(Double(y) / 23)) }
        // No sample clips at 0 or 255, so brightening moves only the DC term, which pHash leaves out.
        let brighter = frame { x, y in 148 + Int(40 * sin(Double(x) / 17) + 40 * cos(Double(y) / 23)) }
        let noisy = frame { x, y in
            128 + Int(40 * sin(Double(x) / 17) + 40 * cos(Double(y) / 23)) + ((x * 7 + y * 13) % 5) - 2
        }
        let other = frame { x, y in 128 + Int(70 * cos(Double(x + y) / 9)) }
        let h = PerceptualHash.pHash(picture)
        #expect(PerceptualHash.distance(h, PerceptualHash.pHash(brighter)) == 0)
        #expect(PerceptualHash.distance(h, PerceptualHash.pHash(noisy)) <= 2)
        #expect(PerceptualHash.distance(h, PerceptualHash.pHash(other)) > 16)
        // Half the bits are set: the threshold is the median of 64 coefficients.
        #expect(h.nonzeroBitCount == 32)
    }

    @Test func frameMeasuresByHand() {
        // 4×4: left half 0, right half 200. Mean 100, standard deviation 100. Interior pixels
        // (1,1),(2,1),(1,2),(2,2): Laplacians 200, −200, 200, −200 → mean 0, variance 40,000.
        let measures = frame(side: 4) { x, _ in x < 2 ? 0 : 200 }.measures
        #expect(measures.brightness == 100)
        #expect(measures.contrast == 100)
        #expect(measures.sharpness == 40_000)
        let flat = frame(side: 4) { _, _ in 90 }.measures
        #expect(flat.contrast == 0 && flat.sharpness == 0)
    }

    @Test func distanceCountsDifferingBits() {
        #expect(PerceptualHash.distance(0b1011, 0b0001) == 2)
        #expect(PerceptualHash.distance(0, UInt64.max) == 64)
    }
}

@Suite struct HammingIndexTests {
    @Test func findsExactlyThePairsABruteForceFinds() {
        var random = SeededRandomStream(seed: 5)
        var hashes: [UInt64] = (0..<1_500).map { _ in random.next() }
        // Plant near copies at 0…20 bits.
        for index in 0..<300 {
            var copy = hashes[index * 5]
            for _ in 0..<(index % 21) { copy ^= 1 << UInt64(random.next() % 64) }
            hashes.append(copy)
        }
        let index = HammingIndex(hashes)
        for threshold in [0, 3, 4, 7, 10, 13, 16] {
            var expected: [String] = []
            for i in hashes.indices {
                for j in (i + 1)..<hashes.count where PerceptualHash.distance(hashes[i], hashes[j]) <= threshold {
                    expected.append("\(i)-\(j)")
                }
            }
            let found = index.pairs(within: threshold).map { "\($0.first)-\($0.second)" }
            #expect(found == expected, "threshold \(threshold)")
            #expect(!found.isEmpty)
        }
    }

    @Test func acceptCanRejectCandidates() {
        let index = HammingIndex([0, 1, 3, UInt64.max])
        let all = index.pairs(within: 2)
        #expect(all.map { [$0.first, $0.second, $0.distance] } == [[0, 1, 1], [0, 2, 2], [1, 2, 1]])
        let some = index.pairs(within: 2) { i, j in i != 0 || j != 2 }
        #expect(some.count == 2)
    }
}

/// SplitMix64 for test data (the same generator as Support.SeededRandom, kept here so the test
/// data does not change if that one ever does).
struct SeededRandomStream {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
