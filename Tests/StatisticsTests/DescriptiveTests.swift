import Statistics
import Testing

@Test func giniMatchesTheReportForTheTrainCounts() throws {
    // all_train.csv category counts from the seed report; SPEC §2 gives G = 0.3954.
    let train: [Double] = [50_368, 28_710, 28_687, 28_525, 18_646, 12_295, 1_854, 1_095]
    let gini = try #require(Descriptive.gini(train))
    #expect(abs(gini - 0.3954) < 0.00005)
    // The O(n log n) form equals the SPEC's double sum exactly (up to rounding).
    let n = Double(train.count)
    let mean = train.reduce(0, +) / n
    var doubleSum = 0.0
    for a in train { for b in train { doubleSum += abs(a - b) } }
    #expect(abs(gini - doubleSum / (2 * n * n * mean)) < 1e-12)
}

@Test func giniEdgeCases() {
    #expect(Descriptive.gini([5, 5, 5]) == 0)
    #expect(Descriptive.gini([0, 0, 10]) == 2.0 / 3.0)  // one of three holds everything: (n−1)/n
    #expect(Descriptive.gini([]) == nil)
    #expect(Descriptive.gini([0, 0]) == nil)
}

@Test func pearsonKnownValues() throws {
    let r = try #require(Descriptive.pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]))
    #expect(abs(r - 0.7745966692414834) < 1e-12)
    #expect(Descriptive.pearson([1, 2, 3], [3, 2, 1]) == -1)
    #expect(Descriptive.pearson([1, 1, 1], [1, 2, 3]) == nil)  // constant variable
    #expect(Descriptive.pearson([1], [2]) == nil)
}

@Test func quantilesInterpolateLinearly() {
    let sorted: [Double] = [1, 2, 3, 4, 10]
    #expect(Descriptive.quantile(sorted: sorted, 0.25) == 2)
    #expect(Descriptive.quantile(sorted: sorted, 0.5) == 3)
    #expect(abs(Descriptive.quantile(sorted: sorted, 0.95)! - 8.8) < 1e-12)
    #expect(Descriptive.quantile(sorted: [], 0.5) == nil)
}

@Test func bucketsAreHalfOpen() {
    let buckets = Descriptive.buckets([0, 9.999, 10, 19.99, 20, 30, 59.99, 60, 2383.65], edges: [0, 10, 20, 30, 60])
    #expect(buckets.map(\.count) == [2, 2, 1, 2, 2])
    #expect(buckets.last?.upper == nil)
    #expect(buckets[0].share == 2.0 / 9.0)
}

@Test func distributionDistances() throws {
    let a = ["x": 50, "y": 50]
    let b = ["x": 100]
    #expect(Descriptive.totalVariation(a, a) == 0)
    #expect(Descriptive.totalVariation(a, b) == 0.5)
    #expect(Descriptive.totalVariation(["x": 1], ["y": 1]) == 1)
    let jsd = try #require(Descriptive.jensenShannon(["x": 1], ["y": 1]))
    #expect(abs(jsd - 1) < 1e-12)
    #expect(Descriptive.jensenShannon(a, a) == 0)
}
