/// Small, exact descriptive statistics used throughout the report.
public enum Descriptive {
    /// Gini coefficient of non-negative counts: G = Σi Σj |xi − xj| / (2 n² mean),
    /// computed in O(n log n) as Σi (2i − n − 1)·x(i) / (n · Σx) over the sorted values.
    public static func gini(_ values: [Double]) -> Double? {
        let n = values.count
        guard n > 0 else { return nil }
        let total = values.reduce(0, +)
        guard total > 0 else { return nil }
        let sorted = values.sorted()
        var weighted = 0.0
        for (index, value) in sorted.enumerated() {
            weighted += Double(2 * (index + 1) - n - 1) * value
        }
        return weighted / (Double(n) * total)
    }

    /// Pearson's correlation coefficient; nil when either variable is constant or n < 2.
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double? {
        let n = min(x.count, y.count)
        guard n >= 2 else { return nil }
        let meanX = x.prefix(n).reduce(0, +) / Double(n)
        let meanY = y.prefix(n).reduce(0, +) / Double(n)
        var sxy = 0.0
        var sxx = 0.0
        var syy = 0.0
        for i in 0..<n {
            let dx = x[i] - meanX
            let dy = y[i] - meanY
            sxy += dx * dy
            sxx += dx * dx
            syy += dy * dy
        }
        guard sxx > 0, syy > 0 else { return nil }
        return sxy / (sxx * syy).squareRoot()
    }

    /// Quantile with linear interpolation between order statistics (numpy's default, "type 7").
    public static func quantile(sorted: [Double], _ q: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let position = q * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        let fraction = position - Double(lower)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
    }

    public static func summary(_ values: [Double]) -> Summary {
        summary(sorted: values.sorted())
    }

    /// `summary` of values already in ascending order.
    public static func summary(sorted: [Double]) -> Summary {
        guard !sorted.isEmpty else { return Summary(count: 0, mean: nil, min: nil, max: nil, median: nil, p95: nil) }
        // Kahan-free but exact enough: sums of at most millions of moderate numbers in Double.
        let mean = sorted.reduce(0, +) / Double(sorted.count)
        return Summary(
            count: sorted.count, mean: mean, min: sorted.first, max: sorted.last,
            median: quantile(sorted: sorted, 0.5), p95: quantile(sorted: sorted, 0.95))
    }

    /// Counts `values` into half-open buckets [edges[i], edges[i+1]) plus [edges.last, ∞).
    public static func buckets(_ values: [Double], edges: [Double]) -> [Bucket] {
        var counts = Array(repeating: 0, count: edges.count)
        for value in values {
            // Values below the first edge go to the first bucket (edges start at 0 for non-negative data).
            var index = 0
            while index + 1 < edges.count && value >= edges[index + 1] { index += 1 }
            counts[index] += 1
        }
        let total = values.count
        return edges.indices.map { index in
            Bucket(
                lower: edges[index], upper: index + 1 < edges.count ? edges[index + 1] : nil, count: counts[index],
                share: total > 0 ? Double(counts[index]) / Double(total) : 0)
        }
    }

    /// The labels of two distributions, sorted: sums run in this order so that a report is the same in every run
    /// (a `Set`'s order changes from process to process, and floating-point addition is not associative).
    static func sortedLabels<Label: Hashable & Comparable>(_ a: [Label: Int], _ b: [Label: Int]) -> [Label] {
        Set(a.keys).union(b.keys).sorted()
    }

    /// Total variation distance between two distributions given as label → count (0 = same, 1 = disjoint).
    public static func totalVariation(_ a: [String: Int], _ b: [String: Int]) -> Double? {
        let totalA = Double(a.values.reduce(0, +))
        let totalB = Double(b.values.reduce(0, +))
        guard totalA > 0, totalB > 0 else { return nil }
        var sum = 0.0
        for label in sortedLabels(a, b) {
            sum += abs(Double(a[label] ?? 0) / totalA - Double(b[label] ?? 0) / totalB)
        }
        return sum / 2
    }

    /// Jensen–Shannon divergence in bits (0 = same, 1 = disjoint): with M = (P + Q) / 2,
    /// JSD = ½ Σ p log2(p / m) + ½ Σ q log2(q / m) over the labels of either distribution.
    public static func jensenShannon<Label: Hashable & Comparable>(_ a: [Label: Int], _ b: [Label: Int]) -> Double? {
        let totalA = Double(a.values.reduce(0, +))
        let totalB = Double(b.values.reduce(0, +))
        guard totalA > 0, totalB > 0 else { return nil }
        var divergence = 0.0
        for label in sortedLabels(a, b) {
            let p = Double(a[label] ?? 0) / totalA
            let q = Double(b[label] ?? 0) / totalB
            let m = (p + q) / 2
            if p > 0 { divergence += 0.5 * p * log2(p / m) }
            if q > 0 { divergence += 0.5 * q * log2(q / m) }
        }
        return max(0, divergence)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
