import Statistics
import Support

/// A table in the report, rendered to Markdown, HTML or a terminal alike.
public struct ReportTable: Sendable {
    public var title: String
    public var header: [String]
    public var rows: [[String]]
    public var note: String?

    public init(title: String, header: [String], rows: [[String]], note: String? = nil) {
        self.title = title
        self.header = header
        self.rows = rows
        self.note = note
    }
}

/// Builds the report's tables from an `AnalysisReport`, datasets side by side. Markdown and HTML
/// render the same tables, so they can never disagree.
public enum ReportTables {
    static let n = NumberFormat.self

    static func countShare(_ value: CountShare) -> String {
        "\(n.grouped(value.count)) (\(n.percent(value.share)))"
    }

    public static func all(_ report: AnalysisReport) -> [ReportTable] {
        let tables: [ReportTable?] =
            [
                rows(report), mediaTypes(report), resolutions(report), durations(report), categories(report),
                captions(report), words(report), topWords(report), morphemes(report), topContentWords(report),
            ] + morphemesByCategory(report) + [
                templates(report), correlation(report), comparison(report), contentWordDistanceByCategory(report),
            ]
        return tables.compactMap { $0 }
    }

    static func names(_ report: AnalysisReport) -> [String] { report.datasets.map(\.name) }

    /// Labels of a distribution summed over all datasets, most frequent first (ties by label).
    static func labelsByTotal(_ distributions: [[LabelCount]], limit: Int) -> [String] {
        var totals: [String: Int] = [:]
        for distribution in distributions {
            for entry in distribution { totals[entry.label, default: 0] += entry.count }
        }
        return totals.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(limit).map(\.key)
    }

    /// One row per label: the label, then "count (share)" in each dataset (0 where absent).
    static func labelRows(
        _ labels: [String], _ data: [DatasetStatistics], _ distribution: KeyPath<DatasetStatistics, [LabelCount]>
    ) -> [[String]] {
        labels.map { label in
            [label]
                + data.map { dataset in
                    let count = dataset[keyPath: distribution].first { $0.label == label }?.count ?? 0
                    return countShare(CountShare(count: count, of: dataset.items))
                }
        }
    }

    public static func rows(_ report: AnalysisReport) -> ReportTable {
        ReportTable(
            title: "Rows read",
            header: ["dataset", "source", "rows read", "accepted", "rejected", "blank lines"],
            rows: report.rejects.map {
                [
                    $0.dataset, $0.source, n.grouped($0.rowsRead), n.grouped($0.accepted), n.grouped($0.rejected),
                    n.grouped($0.blankLines),
                ]
            },
            note: "rows read = accepted + rejected; rejected rows are "
                + "written with line, column and reason to the rejects file")
    }

    public static func mediaTypes(_ report: AnalysisReport) -> ReportTable {
        let data = report.datasets
        return ReportTable(
            title: "Media types",
            header: [""] + names(report),
            rows: [
                ["items"] + data.map { n.grouped($0.items) },
                ["images"] + data.map { countShare($0.mediaTypes.images) },
                ["videos"] + data.map { countShare($0.mediaTypes.videos) },
                ["images : videos"]
                    + data.map { $0.mediaTypes.imageToVideoRatio.map { "\(n.decimal($0, 2)):1" } ?? "—" },
            ])
    }

    public static func resolutions(_ report: AnalysisReport, top: Int = 6) -> ReportTable {
        let data = report.datasets
        let all = labelsByTotal(data.map(\.resolutions.distribution), limit: .max)
        let labels = Array(all.prefix(top))
        var rows = labelRows(labels, data, \.resolutions.distribution)
        if all.count > top {
            rows.append(
                ["other"]
                    + data.map { dataset in
                        let count = dataset.resolutions.distribution.filter { !labels.contains($0.label) }.reduce(0) {
                            $0 + $1.count
                        }
                        return countShare(CountShare(count: count, of: dataset.items))
                    })
        }
        rows.append(["at \(report.target)"] + data.map { countShare($0.resolutions.atTarget) })
        rows.append(["need conversion"] + data.map { countShare($0.resolutions.needConversion) })
        for kind in [ConversionKind.downscale, .upscale, .reframe] {
            rows.append(["· \(kind.rawValue)"] + data.map { n.grouped($0.resolutions.conversion[kind.rawValue] ?? 0) })
        }
        rows.append(["portrait (h > w)"] + data.map { n.grouped($0.resolutions.portrait) })
        return ReportTable(
            title: "Resolutions", header: ["resolution"] + names(report), rows: rows,
            note: "downscale: same aspect ratio, larger; upscale: same aspect ratio, "
                + "smaller; reframe: another aspect ratio (scale, then crop or pad)")
    }

    public static func durations(_ report: AnalysisReport) -> ReportTable {
        let data = report.datasets
        var rows: [[String]] = [
            ["videos"] + data.map { n.grouped($0.durations.seconds.count) },
            ["mean (s)"] + data.map { n.decimal($0.durations.seconds.mean, 2) },
            ["min (s)"] + data.map { n.decimal($0.durations.seconds.min, 2) },
            ["max (s)"] + data.map { n.decimal($0.durations.seconds.max, 2) },
            ["median (s)"] + data.map { n.decimal($0.durations.seconds.median, 2) },
        ]
        for (index, edge) in StatisticsCalculator.durationEdges.enumerated() {
            let label =
                index + 1 < StatisticsCalculator.durationEdges.count
                ? "[\(Int(edge)), \(Int(StatisticsCalculator.durationEdges[index + 1]))) s" : "[\(Int(edge)), ∞) s"
            rows.append(
                [label]
                    + data.map { dataset in
                        dataset.durations.buckets.count > index
                            ? "\(n.grouped(dataset.durations.buckets[index].count)) "
                                + "(\(n.percent(dataset.durations.buckets[index].share)))" : "—"
                    })
        }
        rows.append(["shorter than 81 frames @16 fps"] + data.map { n.grouped($0.durations.shorterThan81Frames) })
        rows.append(["shorter than 49 frames @16 fps"] + data.map { n.grouped($0.durations.shorterThan49Frames) })
        rows.append(["upper Tukey fence (s)"] + data.map { n.decimal($0.durations.upperFence, 2) })
        rows.append(["videos above the fence"] + data.map { n.grouped($0.durations.outliersAbove) })
        return ReportTable(title: "Video durations", header: [""] + names(report), rows: rows)
    }

    public static func categories(_ report: AnalysisReport) -> ReportTable {
        let data = report.datasets
        let labels = labelsByTotal(data.map(\.categories.distribution), limit: .max)
        var rows = labelRows(labels, data, \.categories.distribution)
        rows.append(["max / min"] + data.map { $0.categories.maxMinRatio.map { "\(n.decimal($0, 1)):1" } ?? "—" })
        rows.append(["Gini"] + data.map { n.decimal($0.categories.gini, 4) })
        return ReportTable(
            title: "Categories", header: ["category"] + names(report), rows: rows,
            note: "Gini G = Σi Σj |xi − xj| / (2 n² mean) over the category counts of each dataset")
    }

    public static func captions(_ report: AnalysisReport) -> ReportTable {
        let data = report.datasets
        let limit = report.captionLengthLimit
        return ReportTable(
            title: "Caption length (characters)",
            header: [""] + names(report),
            rows: [
                ["mean"] + data.map { n.decimal($0.captions.length.mean, 1) },
                ["min"] + data.map { n.decimal($0.captions.length.min, 0) },
                ["max"] + data.map { n.decimal($0.captions.length.max, 0) },
                ["median"] + data.map { n.decimal($0.captions.length.median, 0) },
                ["95th percentile"] + data.map { n.decimal($0.captions.length.p95, 0) },
                ["over \(n.grouped(limit))"] + data.map { n.grouped($0.captions.overLimit) },
                ["normalised to NFC"] + data.map { n.grouped($0.captions.normalised) },
            ],
            note: "length = Unicode scalars of the caption after NFC normalisation and trimming")
    }

    public static func words(_ report: AnalysisReport) -> ReportTable {
        let data = report.datasets
        return ReportTable(
            title: "Words",
            header: [""] + names(report),
            rows: [
                ["total words"] + data.map { n.grouped($0.words.totalWords) },
                ["unique words"] + data.map { n.grouped($0.words.uniqueWords) },
                ["corpus TTR"] + data.map { n.decimal($0.words.corpusTTR, 4) },
                ["caption TTR mean"] + data.map { n.decimal($0.words.captionTTR.mean, 4) },
                ["caption TTR min"] + data.map { n.decimal($0.words.captionTTR.min, 4) },
                ["caption TTR max"] + data.map { n.decimal($0.words.captionTTR.max, 4) },
                ["words per caption mean"] + data.map { n.decimal($0.words.wordsPerCaption.mean, 1) },
                ["words per caption min"] + data.map { n.decimal($0.words.wordsPerCaption.min, 0) },
                ["words per caption max"] + data.map { n.decimal($0.words.wordsPerCaption.max, 0) },
            ],
            note: "a word is a maximal run of letters, marks and numbers (Unicode "
                + "general categories L, M, N), lower-cased; TTR = unique / total words")
    }

    public static func topWords(_ report: AnalysisReport) -> ReportTable? {
        let data = report.datasets
        let depth = data.map(\.words.topWords.count).max() ?? 0
        guard depth > 0 else { return nil }
        return ReportTable(
            title: "Top words",
            header: ["#"] + names(report),
            rows: (0..<depth).map { rank in
                ["\(rank + 1)"]
                    + data.map { dataset in
                        rank < dataset.words.topWords.count
                            ? "\(dataset.words.topWords[rank].word) (\(n.grouped(dataset.words.topWords[rank].count)))"
                            : ""
                    }
            },
            note: "ties are ordered by the words' code points")
    }

    /// The datasets that have morpheme statistics, with them.
    static func morphemeData(_ report: AnalysisReport) -> [(name: String, statistics: MorphemeStatistics)] {
        report.datasets.compactMap { dataset in dataset.morphemes.map { (dataset.name, $0) } }
    }

    /// Space-split words and Kiwi's morphemes side by side (`--morphemes`).
    public static func morphemes(_ report: AnalysisReport) -> ReportTable? {
        guard let info = report.morphemeAnalysis else { return nil }
        let data = report.datasets.filter { $0.morphemes != nil }
        let all = data.map { $0.morphemes!.all }
        func scripts(_ key: CaptionScript) -> [String] {
            all.map { countShare(CountShare(count: $0.scripts[key.label] ?? 0, of: $0.captions)) }
        }
        return ReportTable(
            title: "Words and morphemes",
            header: [""] + data.map(\.name),
            rows: [
                ["space-split words"] + data.map { n.grouped($0.words.totalWords) },
                ["morphemes"] + all.map { n.grouped($0.morphemes) },
                ["unique space-split words"] + data.map { n.grouped($0.words.uniqueWords) },
                ["morpheme types"] + all.map { n.grouped($0.morphemeTypes) },
                ["corpus TTR, words"] + data.map { n.decimal($0.words.corpusTTR, 4) },
                ["corpus TTR, morphemes"] + all.map { n.decimal($0.corpusTTR, 4) },
                ["caption TTR mean, words"] + data.map { n.decimal($0.words.captionTTR.mean, 4) },
                ["caption TTR mean, morphemes"] + all.map { n.decimal($0.captionTTR.mean, 4) },
                ["caption TTR min, morphemes"] + all.map { n.decimal($0.captionTTR.min, 4) },
                ["caption TTR max, morphemes"] + all.map { n.decimal($0.captionTTR.max, 4) },
                ["content words"] + all.map { n.grouped($0.contentWords) },
                ["unique content words"] + all.map { n.grouped($0.uniqueContentWords) },
                ["content words per caption mean"] + all.map { n.decimal($0.contentWordsPerCaption.mean, 1) },
                ["content words per caption min"] + all.map { n.decimal($0.contentWordsPerCaption.min, 0) },
                ["content words per caption max"] + all.map { n.decimal($0.contentWordsPerCaption.max, 0) },
                ["captions without content words"] + all.map { n.grouped($0.captionsWithoutContentWords) },
                ["template captions"] + all.map { countShare($0.templateCaptions) },
                ["captions in Hangul"] + scripts(.hangul),
                ["captions mixing Hangul and Latin"] + scripts(.mixed),
                ["captions without Hangul (e.g. English)"] + scripts(.other),
                ["captions without letters"] + scripts(.noLetters),
            ],
            note: "morphemes by \(info.analyser) (\(info.unitNote); \(n.grouped(info.distinctCaptions)) distinct "
                + "captions): every token but punctuation and symbols, types as form/TAG; content words: NNG/NNP nouns "
                + "and VV/VA stems + 다; a template caption's first \(info.templateWords) distinct content words, as a "
                + "set, are those of more than \(info.templateThreshold) captions "
                + "of its dataset (docs/report-schema.md)"
        )
    }

    public static func topContentWords(_ report: AnalysisReport) -> ReportTable? {
        let data = morphemeData(report)
        let depth = data.map(\.statistics.all.topContentWords.count).max() ?? 0
        guard depth > 0 else { return nil }
        return ReportTable(
            title: "Top content words",
            header: ["#"] + data.map(\.name),
            rows: (0..<depth).map { rank in
                ["\(rank + 1)"]
                    + data.map { entry in
                        let top = entry.statistics.all.topContentWords
                        return rank < top.count ? "\(top[rank].word) (\(n.grouped(top[rank].count)))" : ""
                    }
            },
            note: "nouns (NNG, NNP) and verb and adjective stems + 다 (VV, VA), particles and endings set aside; "
                + "compare with the space-split top words above")
    }

    /// One table per dataset: its categories' morpheme figures.
    public static func morphemesByCategory(_ report: AnalysisReport, topWords: Int = 5) -> [ReportTable?] {
        morphemeData(report).map { entry in
            ReportTable(
                title: "Content words by category: \(entry.name)",
                header: [
                    "category", "captions", "content words / caption", "morpheme caption TTR mean",
                    "morpheme corpus TTR", "template captions", "top content words",
                ],
                rows: entry.statistics.categories.map { category in
                    let figures = category.statistics
                    let top = figures.topContentWords.prefix(topWords).map { "\($0.word) \(n.grouped($0.count))" }
                    return [
                        category.category, n.grouped(figures.captions),
                        n.decimal(figures.contentWordsPerCaption.mean, 1), n.decimal(figures.captionTTR.mean, 4),
                        n.decimal(figures.corpusTTR, 4), countShare(figures.templateCaptions),
                        top.joined(separator: ", "),
                    ]
                })
        }
    }

    public static func templates(_ report: AnalysisReport) -> ReportTable? {
        let rows = morphemeData(report).flatMap { entry in
            entry.statistics.topTemplates.map {
                [entry.name, $0.words.joined(separator: " · "), n.grouped($0.captions)]
            }
        }
        guard let info = report.morphemeAnalysis else { return nil }
        return ReportTable(
            title: "Most shared caption templates",
            header: ["dataset", "first \(info.templateWords) content words (as a set)", "captions"],
            rows: rows.isEmpty ? [["—", "no key is shared by more than \(info.templateThreshold) captions", ""]] : rows)
    }

    public static func contentWordDistanceByCategory(_ report: AnalysisReport) -> ReportTable? {
        let comparisons = report.comparisons.filter { $0.contentWordJSDByCategory != nil }
        guard !comparisons.isEmpty else { return nil }
        let categories = Set(comparisons.flatMap { $0.contentWordJSDByCategory!.keys }).sorted()
        return ReportTable(
            title: "Content-word distance by category",
            header: ["category"] + comparisons.map { "\($0.a) vs \($0.b)" },
            rows: [["all captions"] + comparisons.map { n.decimal($0.contentWordJSD, 4) }]
                + categories.map { category in
                    [category] + comparisons.map { n.decimal($0.contentWordJSDByCategory![category], 4) }
                },
            note: "Jensen–Shannon divergence in bits (0 identical, 1 disjoint) of the content-word distributions "
                + "of the same category in two datasets")
    }

    public static func correlation(_ report: AnalysisReport) -> ReportTable {
        ReportTable(
            title: "Duration and caption length",
            header: [""] + names(report),
            rows: [
                ["videos"] + report.datasets.map { n.grouped($0.mediaTypes.videos.count) },
                ["Pearson r"] + report.datasets.map { n.decimal($0.durationCaptionCorrelation, 4) },
            ],
            note: "Pearson correlation of video duration (s) and caption length (characters), over videos")
    }

    public static func comparison(_ report: AnalysisReport) -> ReportTable? {
        guard !report.comparisons.isEmpty else { return nil }
        var rows = report.comparisons.map { comparison in
            [
                "\(comparison.a) vs \(comparison.b)",
                n.decimal(comparison.categoryTVD, 4), n.decimal(comparison.categoryJSD, 4),
                n.decimal(comparison.mediaTypeTVD, 4), n.decimal(comparison.resolutionTVD, 4),
                n.decimal(comparison.resolutionJSD, 4),
            ]
        }
        for overlap in report.overlaps {
            rows.append([
                "\(overlap.a) ∩ \(overlap.b)", "shared paths: \(n.grouped(overlap.sharedPaths))", "", "", "", "",
            ])
        }
        return ReportTable(
            title: "Split comparison",
            header: [
                "datasets", "category TVD", "category JSD (bits)", "media type TVD", "resolution TVD",
                "resolution JSD (bits)",
            ],
            rows: rows,
            note: "TVD: total variation distance of the shares (0 identical, "
                + "1 disjoint); JSD: Jensen–Shannon divergence in bits (0…1)")
    }
}
