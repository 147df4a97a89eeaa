import Foundation
import Manifest
import Support

/// Whether a dataset is the whole collection or one split of it.
public enum DatasetRole: String, Codable, Sendable {
    /// The positional manifest, or the union of the splits when none is given.
    case whole
    case split
}

/// A manifest to analyse, with its display name and role.
public struct NamedManifest: Sendable {
    public var name: String
    public var role: DatasetRole
    public var manifest: Manifest
    /// The captions measured while reading (`CaptionCollector`); required when the reader sent the
    /// captions to it (`manifest.captionsSentToSink`), else measured from the items.
    public var captions: MeasuredCaptions?
    /// Each item's number among the distinct captions sent to the morpheme analysis
    /// (`DistinctCaptions`), when it runs.
    public var captionNumbers: [Int32]?

    public init(
        name: String, role: DatasetRole, manifest: Manifest, captions: MeasuredCaptions? = nil,
        captionNumbers: [Int32]? = nil
    ) {
        precondition(captions != nil || !manifest.captionsSentToSink, "\(name): its captions went to a sink; pass them")
        precondition(
            captionNumbers == nil || captionNumbers!.count == manifest.items.count,
            "\(name): one caption number per item")
        self.name = name
        self.role = role
        self.manifest = manifest
        self.captions = captions
        self.captionNumbers = captionNumbers
    }
}

/// How far apart two datasets' distributions are.
public struct SplitComparison: Codable, Sendable {
    public var a: String
    public var b: String
    /// Total variation distance (0 = identical shares, 1 = disjoint) per distribution.
    public var categoryTVD: Double?
    public var mediaTypeTVD: Double?
    public var resolutionTVD: Double?
    /// Jensen–Shannon divergence in bits (0…1) per distribution.
    public var categoryJSD: Double?
    public var mediaTypeJSD: Double?
    public var resolutionJSD: Double?
    /// Jensen–Shannon divergence in bits of the content-word distributions (`--morphemes`): over all
    /// captions, and per category present in both.
    public var contentWordJSD: Double?
    public var contentWordJSDByCategory: [String: Double]?
}

/// Items (by path) present in two splits at once: a leak between training and validation.
public struct SplitOverlap: Codable, Sendable {
    public var a: String
    public var b: String
    public var sharedPaths: Int
    public var examples: [String]
}

/// A dataset's rejected rows in summary.
public struct RejectSummary: Codable, Sendable {
    public var dataset: String
    public var source: String
    public var rowsRead: Int
    public var accepted: Int
    public var rejected: Int
    public var blankLines: Int
    public var reasons: [String: Int]
    /// Where the rejected rows were written (filled in by the caller that writes them).
    public var rejectsFile: String?
}

public enum Severity: String, Codable, Sendable, Comparable {
    case critical, warning, info

    private var rank: Int { self == .critical ? 0 : self == .warning ? 1 : 2 }
    public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rank < rhs.rank }
}

/// A plain statement about the data, with its numbers and the rows or files it is about.
public struct Finding: Codable, Sendable, Equatable {
    public var severity: Severity
    /// Stable machine name, e.g. `unconverted_split`.
    public var code: String
    public var dataset: String?
    public var message: String
    /// Paths or `file:line` references the finding is about (a few examples).
    public var examples: [String]
}

/// The whole result of `wanlora analyze`.
public struct AnalysisReport: Codable, Sendable {
    public var schemaVersion: Int
    public var generator: String
    public var target: String
    public var captionLengthLimit: Int
    /// How the morpheme-level statistics were made (nil without `--morphemes`).
    public var morphemeAnalysis: MorphemeAnalysisInfo?
    public var datasets: [DatasetStatistics]
    public var comparisons: [SplitComparison]
    public var overlaps: [SplitOverlap]
    public var rejects: [RejectSummary]
    public var findings: [Finding]
}

public enum Analyzer {
    public static let schemaVersion = 1

    /// The engine's analysis of the inputs' distinct captions (`NamedManifest.captionNumbers` point into it).
    public struct Morphemes: Sendable {
        public var table: MorphemeTable
        public var options: MorphemeOptions
        public var info: MorphemeAnalysisInfo

        public init(table: MorphemeTable, options: MorphemeOptions, info: MorphemeAnalysisInfo) {
            self.table = table
            self.options = options
            self.info = info
        }
    }

    /// Computes the statistics of every dataset, compares the splits and derives the findings.
    /// When no whole dataset is given and there are two splits or more, their union is added as
    /// "all splits". With `morphemes`, every input needs its `captionNumbers`.
    public static func analyze(
        _ inputs: [NamedManifest], options: StatisticsOptions = StatisticsOptions(), generator: String = "wanlora",
        progress: ProgressReporter = .silent, morphemes: Morphemes? = nil
    ) -> AnalysisReport {
        var inputs = inputs
        let splits = inputs.filter { $0.role == .split }
        if !inputs.contains(where: { $0.role == .whole }) && splits.count >= 2 {
            // Every split's captions measured once; the union's figures are theirs together.
            for index in inputs.indices where inputs[index].role == .split && inputs[index].captions == nil {
                inputs[index].captions = MeasuredCaptions.measure(
                    inputs[index].manifest.items, workers: options.workers,
                    progress: ProgressCounter(
                        reporter: progress, stage: "measure captions of \(inputs[index].name)",
                        total: inputs[index].manifest.items.count, unit: "captions"))
            }
            let measuredSplits = inputs.filter { $0.role == .split }
            var union = Manifest(
                source: splits.map(\.manifest.source).joined(separator: " + "), format: .csv, columns: [],
                columnMap: splits[0].manifest.columnMap, items: splits.flatMap(\.manifest.items),
                rejected: splits.flatMap(\.manifest.rejected))
            union.captionsSentToSink = splits.contains { $0.manifest.captionsSentToSink }
            let numbers =
                measuredSplits.allSatisfy { $0.captionNumbers != nil }
                ? measuredSplits.flatMap { $0.captionNumbers! } : nil
            inputs.insert(
                NamedManifest(
                    name: "all splits", role: .whole, manifest: union,
                    captions: MeasuredCaptions.union(measuredSplits.map { $0.captions! }),
                    captionNumbers: numbers), at: 0)
        }

        var datasets = inputs.map { input in
            StatisticsCalculator.compute(
                name: input.name, source: input.manifest.source, items: input.manifest.items,
                rejectedRows: input.manifest.rejected.count, options: options, progress: progress,
                captions: input.captions)
        }
        if let morphemes {
            for index in inputs.indices {
                datasets[index].morphemes = MorphemeCalculator.compute(
                    captionNumbers: inputs[index].captionNumbers!,
                    categories: inputs[index].manifest.items.map(\.category), table: morphemes.table,
                    options: morphemes.options)
            }
        }

        var comparisons: [SplitComparison] = []
        for i in datasets.indices {
            for j in datasets.indices where j > i {
                var comparison = compare(datasets[i], datasets[j])
                if let morphemes {
                    (comparison.contentWordJSD, comparison.contentWordJSDByCategory) = contentWordDistance(
                        inputs[i], inputs[j], table: morphemes.table)
                }
                comparisons.append(comparison)
            }
        }

        var overlaps: [SplitOverlap] = []
        let splitInputs = inputs.filter { $0.role == .split }
        for i in splitInputs.indices {
            let paths = Set(splitInputs[i].manifest.items.map(\.path))
            for j in splitInputs.indices where j > i {
                let shared = splitInputs[j].manifest.items.map(\.path).filter { paths.contains($0) }
                overlaps.append(
                    SplitOverlap(
                        a: splitInputs[i].name, b: splitInputs[j].name, sharedPaths: shared.count,
                        examples: Array(shared.prefix(5))))
            }
        }

        let rejects = inputs.filter { !($0.role == .whole && $0.name == "all splits") }.map { input in
            var reasons: [String: Int] = [:]
            for row in input.manifest.rejected { reasons[row.kind.rawValue, default: 0] += 1 }
            return RejectSummary(
                dataset: input.name, source: input.manifest.source, rowsRead: input.manifest.rowsRead,
                accepted: input.manifest.items.count, rejected: input.manifest.rejected.count,
                blankLines: input.manifest.blankLines, reasons: reasons, rejectsFile: nil)
        }

        var report = AnalysisReport(
            schemaVersion: schemaVersion, generator: generator, target: options.target.description,
            captionLengthLimit: options.captionLengthLimit, morphemeAnalysis: morphemes?.info, datasets: datasets,
            comparisons: comparisons,
            overlaps: overlaps, rejects: rejects, findings: [])
        report.findings = FindingRules.derive(report, inputs: inputs)
        return report
    }

    /// Jensen–Shannon divergence of two inputs' content-word distributions, overall and per category
    /// present in both (in bits).
    static func contentWordDistance(_ a: NamedManifest, _ b: NamedManifest, table: MorphemeTable)
        -> (Double?, [String: Double])
    {
        func numbers(_ input: NamedManifest) -> [String: [Int32]] {
            var byCategory: [String: [Int32]] = [:]
            for (item, number) in zip(input.manifest.items, input.captionNumbers!) {
                byCategory[item.category, default: []].append(number)
            }
            return byCategory
        }
        let overall = Descriptive.jensenShannon(
            MorphemeCalculator.contentWordCounts(captionNumbers: a.captionNumbers!, table: table),
            MorphemeCalculator.contentWordCounts(captionNumbers: b.captionNumbers!, table: table))
        let categoriesA = numbers(a)
        let categoriesB = numbers(b)
        var byCategory: [String: Double] = [:]
        for (category, numbersA) in categoriesA {
            guard let numbersB = categoriesB[category] else { continue }
            byCategory[category] = Descriptive.jensenShannon(
                MorphemeCalculator.contentWordCounts(captionNumbers: numbersA, table: table),
                MorphemeCalculator.contentWordCounts(captionNumbers: numbersB, table: table))
        }
        return (overall, byCategory)
    }

    static func compare(_ a: DatasetStatistics, _ b: DatasetStatistics) -> SplitComparison {
        func counts(_ distribution: [LabelCount]) -> [String: Int] {
            Dictionary(uniqueKeysWithValues: distribution.map { ($0.label, $0.count) })
        }
        let typesA = ["image": a.mediaTypes.images.count, "video": a.mediaTypes.videos.count]
        let typesB = ["image": b.mediaTypes.images.count, "video": b.mediaTypes.videos.count]
        return SplitComparison(
            a: a.name, b: b.name,
            categoryTVD: Descriptive.totalVariation(
                counts(a.categories.distribution), counts(b.categories.distribution)),
            mediaTypeTVD: Descriptive.totalVariation(typesA, typesB),
            resolutionTVD: Descriptive.totalVariation(
                counts(a.resolutions.distribution), counts(b.resolutions.distribution)),
            categoryJSD: Descriptive.jensenShannon(
                counts(a.categories.distribution), counts(b.categories.distribution)),
            mediaTypeJSD: Descriptive.jensenShannon(typesA, typesB),
            resolutionJSD: Descriptive.jensenShannon(
                counts(a.resolutions.distribution), counts(b.resolutions.distribution)))
    }
}
