import Manifest

/// The numbers behind a curation run: counts per outcome and reason, strata, class weights,
/// duplicates, outliers, captions and media. `Reports.CurationTables` renders it.
public struct CurationSummary: Sendable {
    public struct ReasonCount: Sendable, Equatable {
        public var outcome: Outcome
        public var reason: String
        public var count: Int

        public init(outcome: Outcome, reason: String, count: Int) {
            self.outcome = outcome
            self.reason = reason
            self.count = count
        }
    }

    public struct StratumRow: Sendable, Equatable {
        public var mediaType: MediaType
        public var category: String
        /// Items the reader accepted in this stratum.
        public var accepted: Int
        public var train: Int
        public var val: Int
    }

    public struct WeightRow: Sendable, Equatable {
        public var category: String
        public var trainItems: Int
        public var inverse: Double
        public var sqrt: Double
        public var effective: Double
        /// The weight written to the `weight` column (by the chosen method).
        public var chosen: Double

        public init(category: String, trainItems: Int, inverse: Double, sqrt: Double, effective: Double, chosen: Double)
        {
            self.category = category
            self.trainItems = trainItems
            self.inverse = inverse
            self.sqrt = sqrt
            self.effective = effective
            self.chosen = chosen
        }
    }

    public var options: CurationOptions
    public var rowsRead = 0
    public var rejected = 0
    public var accepted = 0
    public var train = 0
    public var val = 0
    public var dropped = 0
    /// Every row's (outcome, reason), counted; sums to `rowsRead`.
    public var reasons: [ReasonCount] = []
    public var strata: [StratumRow] = []
    public var classWeights: [WeightRow] = []
    public var captionsCleaned = 0
    /// Template captions found (with `template_captions` on; they score 0 on that quality part).
    public var templateCaptions: Int?
    public var captionsTruncated = 0
    public var media = FingerprintTotals()
    /// Pairs found per link kind ("identical file", "same caption", "near duplicate").
    public var duplicatePairs: [String: Int] = [:]
    /// Groups with more than one member, and the items in them.
    public var duplicateGroups = 0
    public var itemsInDuplicateGroups = 0
    public var durationFences: Fences?
    public var captionFences: Fences?
    /// Items outside an absolute range / outside Tukey's fences (dropped or not, per the options).
    public var rangeOutliers = 0
    public var iqrOutliers = 0
    public var samplingNote: String?

    public init(options: CurationOptions) {
        self.options = options
    }

    /// The weight of every category by every method, for the summary table.
    static func weightTable(_ counts: [String: Int], chosen: WeightingMethod, beta: Double) -> [WeightRow] {
        let inverse = ClassWeights.compute(counts, method: .inverse, beta: beta)
        let sqrt = ClassWeights.compute(counts, method: .sqrt, beta: beta)
        let effective = ClassWeights.compute(counts, method: .effective, beta: beta)
        return counts.keys.sorted {
            counts[$0]! != counts[$1]! ? counts[$0]! > counts[$1]! : $0.utf8.lexicographicallyPrecedes($1.utf8)
        }
        .filter { counts[$0]! > 0 }
        .map { category in
            let byMethod = [
                WeightingMethod.inverse: inverse[category]!, .sqrt: sqrt[category]!, .effective: effective[category]!,
            ]
            return WeightRow(
                category: category, trainItems: counts[category]!, inverse: inverse[category]!, sqrt: sqrt[category]!,
                effective: effective[category]!, chosen: byMethod[chosen]!)
        }
    }

    mutating func tally(rows: [CuratedRow], items: [ManifestItem], rejected: [RejectedRow]) {
        var counts: [String: Int] = [:]
        func key(_ outcome: Outcome, _ reason: String) -> String { outcome.rawValue + "\u{1F}" + reason }
        var strata: [Curator.Stratum: StratumRow] = [:]
        for (row, item) in zip(rows, items) {
            counts[key(row.outcome, row.reason), default: 0] += 1
            switch row.outcome {
            case .train: train += 1
            case .val: val += 1
            default: dropped += 1
            }
            let stratum = Curator.Stratum(type: item.mediaType, category: item.category)
            var entry =
                strata[stratum]
                ?? StratumRow(mediaType: item.mediaType, category: item.category, accepted: 0, train: 0, val: 0)
            entry.accepted += 1
            if row.outcome == .train { entry.train += 1 }
            if row.outcome == .val { entry.val += 1 }
            strata[stratum] = entry
        }
        for row in rejected { counts[key(.rejected, row.kind.rawValue), default: 0] += 1 }
        var ordered: [ReasonCount] = []
        for outcome in [Outcome.train, .val] where counts[key(outcome, "kept")] != nil {
            ordered.append(ReasonCount(outcome: outcome, reason: "kept", count: counts[key(outcome, "kept")]!))
        }
        for reason in DropReason.allCases {
            if let count = counts[key(.dropped, reason.rawValue)] {
                ordered.append(ReasonCount(outcome: .dropped, reason: reason.rawValue, count: count))
            }
        }
        for kind in RejectedRow.Kind.allCases {
            if let count = counts[key(.rejected, kind.rawValue)] {
                ordered.append(ReasonCount(outcome: .rejected, reason: kind.rawValue, count: count))
            }
        }
        reasons = ordered
        self.strata = strata.keys.sorted().map { strata[$0]! }
    }
}
