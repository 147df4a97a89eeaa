import Support
import Testing

@Test func sameSeedSameStream() {
    var a = SeededRandom(seed: 42)
    var b = SeededRandom(seed: 42)
    var c = SeededRandom(seed: 43)
    let first = (0..<5).map { _ in a.next() }
    #expect(first == (0..<5).map { _ in b.next() })
    #expect(first != (0..<5).map { _ in c.next() })
    // SplitMix64's published first output for seed 0 pins the algorithm.
    var zero = SeededRandom(seed: 0)
    #expect(zero.next() == 0xE220_A839_7B1D_CDAF)
}

@Test func belowIsInRangeAndRoughlyUniform() {
    var random = SeededRandom(seed: 7)
    var counts = [0, 0, 0]
    for _ in 0..<30_000 { counts[random.below(3)] += 1 }
    for count in counts { #expect(abs(count - 10_000) < 400) }
}

@Test func pickFollowsWeights() {
    var random = SeededRandom(seed: 1)
    var counts = [0, 0]
    for _ in 0..<20_000 { counts[random.pick(weights: [1, 3])] += 1 }
    #expect(abs(Double(counts[1]) / 20_000 - 0.75) < 0.015)
}
