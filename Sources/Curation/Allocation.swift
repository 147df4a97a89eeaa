import Foundation
import Statistics

/// Integer counts for strata from real-valued quotas.
public enum Allocation {
    /// Largest-remainder (Hamilton) rounding: each count is ⌊quota⌋ or ⌊quota⌋ + 1, so it lies
    /// within one item of its quota, and the counts sum to the quotas' sum rounded to the nearest
    /// whole number. Remainders are handed out largest fraction first, ties to the lower index.
    public static func largestRemainder(_ quotas: [Double]) -> [Int] {
        var counts = quotas.map { Int($0.rounded(.down)) }
        let total = Int(quotas.reduce(0, +).rounded())
        var left = total - counts.reduce(0, +)
        let order = quotas.indices.sorted {
            let a = quotas[$0] - Double(counts[$0])
            let b = quotas[$1] - Double(counts[$1])
            return a != b ? a > b : $0 < $1
        }
        var position = 0
        while left > 0 && position < order.count {
            counts[order[position]] += 1
            left -= 1
            position += 1
        }
        return counts
    }

    /// Shares `total` among strata in proportion to `weights`, never giving a stratum more than
    /// its `capacity`: strata that would overflow are filled, and what they could not take is
    /// shared among the others in the same proportions, until everything is placed or all are full.
    public static func capped(total: Int, weights: [Double], capacity: [Int]) -> [Int] {
        var counts = Array(repeating: 0, count: weights.count)
        var open = Set(weights.indices.filter { capacity[$0] > 0 && weights[$0] > 0 })
        var remaining = min(total, capacity.reduce(0, +))
        while remaining > 0 && !open.isEmpty {
            let sum = open.reduce(0.0) { $0 + weights[$1] }
            let members = open.sorted()
            let shares = largestRemainder(members.map { Double(remaining) * weights[$0] / sum })
            var overflow = false
            for (member, share) in zip(members, shares) where counts[member] + share > capacity[member] {
                overflow = true
                remaining -= capacity[member] - counts[member]
                counts[member] = capacity[member]
                open.remove(member)
            }
            if !overflow {
                for (member, share) in zip(members, shares) { counts[member] += share }
                remaining = 0
            }
        }
        // Strata with zero weight take what no other stratum could (only when the rest are full).
        if remaining > 0 {
            for index in weights.indices where remaining > 0 {
                let room = min(capacity[index] - counts[index], remaining)
                counts[index] += room
                remaining -= room
            }
        }
        return counts
    }
}

/// Class-balanced sampling weights per category.
public enum ClassWeights {
    /// Weights for categories with train counts `counts`, by `method`, scaled so that the mean
    /// weight over the train items is 1 (Σ n_c·w_c = Σ n_c). A weight's ratio to another is the
    /// method's: inverse frequency gives n_max / n_min to the rarest category.
    public static func compute(_ counts: [String: Int], method: WeightingMethod, beta: Double) -> [String: Double] {
        // Sorted, so that the floating-point sums below add up in the same order in every run.
        let present = counts.filter { $0.value > 0 }.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        guard !present.isEmpty else { return [:] }
        var raw: [String: Double] = [:]
        for (category, count) in present {
            let n = Double(count)
            switch method {
            case .inverse: raw[category] = 1 / n
            case .sqrt: raw[category] = 1 / n.squareRoot()
            case .effective:
                // (1 − β)/(1 − βⁿ); β = 0 gives 1 for every class (no re-weighting).
                raw[category] = beta == 0 ? 1 : (1 - beta) / (1 - Foundation.pow(beta, n))
            }
        }
        let total = present.reduce(0) { $0 + $1.value }
        let weighted = present.reduce(0.0) { $0 + Double($1.value) * raw[$1.key]! }
        let scale = Double(total) / weighted
        return raw.mapValues { $0 * scale }
    }
}

/// Tukey's fences of a sample.
public struct Fences: Sendable, Equatable {
    public var q1: Double
    public var q3: Double
    public var lower: Double
    public var upper: Double

    /// [Q1 − k·IQR, Q3 + k·IQR] with quartiles interpolated as numpy does by default; nil for no values.
    public init?(_ values: [Double], factor: Double) {
        let sorted = values.sorted()
        guard let q1 = Quartile.of(sorted, 0.25), let q3 = Quartile.of(sorted, 0.75) else { return nil }
        self.q1 = q1
        self.q3 = q3
        lower = q1 - factor * (q3 - q1)
        upper = q3 + factor * (q3 - q1)
    }

    public func contains(_ value: Double) -> Bool { value >= lower && value <= upper }
}

enum Quartile {
    static func of(_ sorted: [Double], _ q: Double) -> Double? { Descriptive.quantile(sorted: sorted, q) }
}
