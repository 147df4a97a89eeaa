import Testing

@testable import Curation

@Suite struct ClassWeightsTests {
    // Hand-computed for A = 100 and B = 25 train items (125 in all); the weights are scaled so
    // that 100·w_A + 25·w_B = 125.
    @Test func inverseFrequency() {
        let w = ClassWeights.compute(["A": 100, "B": 25], method: .inverse, beta: 0)
        // raw 1/100 and 1/25; Σ n·raw = 2; scale 125/2 = 62.5.
        #expect(abs(w["A"]! - 0.625) < 1e-12)
        #expect(abs(w["B"]! - 2.5) < 1e-12)
    }

    @Test func squareRootInverseFrequency() {
        let w = ClassWeights.compute(["A": 100, "B": 25], method: .sqrt, beta: 0)
        // raw 0.1 and 0.2; Σ n·raw = 15; scale 125/15.
        #expect(abs(w["A"]! - 5.0 / 6.0) < 1e-12)
        #expect(abs(w["B"]! - 5.0 / 3.0) < 1e-12)
    }

    @Test func effectiveNumberOfSamples() {
        let w = ClassWeights.compute(["A": 100, "B": 25], method: .effective, beta: 0.9)
        // raw (1 − 0.9)/(1 − 0.9ⁿ): 0.1000026562 and 0.1077341972; Σ n·raw = 12.6936208.
        #expect(abs(w["A"]! - 0.984772742216839) < 1e-9)
        #expect(abs(w["B"]! - 1.060909031132643) < 1e-9)
        // β = 0 weighs every class alike.
        let flat = ClassWeights.compute(["A": 100, "B": 25], method: .effective, beta: 0)
        #expect(flat["A"] == 1 && flat["B"] == 1)
    }

    @Test func theReportsFortySixFoldWeightIsInverseFrequency() {
        // The report's train split: 생활/문화 is 46.0 times 무형문화유산.
        let w = ClassWeights.compute(["생활/문화": 50_370, "무형문화유산": 1_095, "축제": 12_000], method: .inverse, beta: 0)
        #expect(abs(w["무형문화유산"]! / w["생활/문화"]! - 50_370.0 / 1_095.0) < 1e-9)
        #expect(abs(50_370.0 / 1_095.0 - 46.0) < 0.01)
    }

    @Test func meanWeightOverItemsIsOne() {
        let counts = ["a": 7, "b": 300, "c": 41, "d": 1]
        for method in WeightingMethod.allCases {
            let w = ClassWeights.compute(counts, method: method, beta: 0.999)
            let total = counts.reduce(0.0) { $0 + Double($1.value) * w[$1.key]! }
            #expect(abs(total / 349 - 1) < 1e-12, "\(method)")
        }
    }
}

@Suite struct AllocationTests {
    @Test func largestRemainderStaysWithinOneOfEachQuota() {
        // Floors 2, 2, 1 (5); one more goes to the first of the two largest remainders (0.5).
        #expect(Allocation.largestRemainder([2.5, 2.5, 1.0]) == [3, 2, 1])
        #expect(Allocation.largestRemainder([0.3, 0.3, 0.4]) == [0, 0, 1])
        let quotas = [13.7, 0.2, 8.1, 99.99, 4.5]
        let counts = Allocation.largestRemainder(quotas)
        #expect(counts.reduce(0, +) == 126)
        for (count, quota) in zip(counts, quotas) { #expect(abs(Double(count) - quota) < 1) }
    }

    @Test func cappedRedistributesWhatAFullStratumCannotTake() {
        // 10 shared 1:1:2, but the third holds only 3: 3 go there, 7 are shared 1:1.
        #expect(Allocation.capped(total: 10, weights: [1, 1, 2], capacity: [10, 10, 3]) == [4, 3, 3])
        // More asked than there is: everything.
        #expect(Allocation.capped(total: 50, weights: [1, 1], capacity: [5, 7]) == [5, 7])
    }

    @Test func tukeyFences() {
        // 1…9: Q1 = 3, Q3 = 7, IQR = 4; fences −3 and 13.
        let fences = Fences((1...9).map(Double.init), factor: 1.5)!
        #expect(fences.q1 == 3 && fences.q3 == 7)
        #expect(fences.lower == -3 && fences.upper == 13)
        #expect(fences.contains(13) && !fences.contains(13.01))
        #expect(Fences([], factor: 1.5) == nil)
    }
}
