import Foundation
import Manifest
import Support

/// Options that change what is computed.
public struct StatisticsOptions: Sendable {
    /// The training resolution items are compared against.
    public var target: Resolution
    /// How many top words to keep.
    public var topWords: Int
    /// Captions longer than this many characters are counted in `overLimit`.
    public var captionLengthLimit: Int
    /// Parallel workers (default: active processors).
    public var workers: Int

    public init(
        target: Resolution = Resolution(width: 1280, height: 720), topWords: Int = 20, captionLengthLimit: Int = 1000,
        workers: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        self.target = target
        self.topWords = topWords
        self.captionLengthLimit = captionLengthLimit
        self.workers = max(1, workers)
    }
}

/// Computes `DatasetStatistics` from manifest items.
public enum StatisticsCalculator {
    /// The SPEC's duration buckets, in seconds.
    public static let durationEdges: [Double] = [0, 10, 20, 30, 60]

    public static func compute(
        name: String, source: String, items: [ManifestItem], rejectedRows: Int = 0,
        options: StatisticsOptions = StatisticsOptions(), progress: ProgressReporter = .silent,
        captions: MeasuredCaptions? = nil
    ) -> DatasetStatistics {
        let total = items.count

        // Captions: the expensive part, measured while reading (`CaptionCollector`) or here, on all cores.
        let measured =
            captions
            ?? MeasuredCaptions.measure(
                items, workers: options.workers,
                progress: ProgressCounter(
                    reporter: progress, stage: "measure captions of \(name)", total: items.count, unit: "captions"))
        precondition(measured.lengths.count == items.count, "caption measures of another manifest")
        let table = measured.table
        let lengths = measured.lengths
        let wordsPerCaption = measured.words
        let ttrs = measured.ttr
        let normalised = measured.normalised

        // Media types. (Loops read fields by index: `for item in items` would copy every item,
        // retaining and releasing its strings, 200,000 times per loop.)
        var images = 0
        for index in items.indices where items[index].mediaType == .image { images += 1 }
        let videos = total - images
        let mediaTypes = MediaTypeStatistics(
            images: CountShare(count: images, of: total), videos: CountShare(count: videos, of: total),
            imageToVideoRatio: videos > 0 ? Double(images) / Double(videos) : nil)

        // Resolutions.
        var resolutionCounts: [Resolution: Int] = [:]
        var conversion: [ConversionKind: Int] = [:]
        var portrait = 0
        for index in items.indices {
            let resolution = items[index].resolution
            resolutionCounts[resolution, default: 0] += 1
            conversion[conversionKind(resolution, target: options.target), default: 0] += 1
            if resolution.height > resolution.width { portrait += 1 }
        }
        let atTarget = resolutionCounts[options.target] ?? 0
        let resolutions = ResolutionStatistics(
            target: options.target.description,
            distribution: distribution(resolutionCounts.map { ($0.key.description, $0.value) }, total: total),
            atTarget: CountShare(count: atTarget, of: total),
            needConversion: CountShare(count: total - atTarget, of: total),
            conversion: Dictionary(
                uniqueKeysWithValues: ConversionKind.allCases.map { ($0.rawValue, conversion[$0] ?? 0) }),
            portrait: portrait)

        // Durations, over videos.
        var durations: [Double] = []
        var videoCaptionLengths: [Double] = []
        var videoIndices: [Int] = []
        durations.reserveCapacity(videos)
        for index in items.indices where items[index].mediaType == .video {
            durations.append(items[index].duration ?? 0)
            videoCaptionLengths.append(lengths[index])
            videoIndices.append(index)
        }
        // Four arrays of up to 100,000s of values to sort: all at once, on all cores. The durations'
        // order serves their summary and their quartile fences.
        let definedTTR = ttrs.compactMap { $0 }
        let unsorted = [durations, lengths, definedTTR, wordsPerCaption]
        let sortedSlots = OrderedSlots<[Double]>(count: unsorted.count)
        DispatchQueue.concurrentPerform(iterations: unsorted.count) { sortedSlots.set($0, unsorted[$0].sorted()) }
        let sorted = sortedSlots.values()
        let sortedDurations = sorted[0]
        let (durationSummary, lengthSummary, ttrSummary, wordsSummary) = (
            Descriptive.summary(sorted: sorted[0]), Descriptive.summary(sorted: sorted[1]),
            Descriptive.summary(sorted: sorted[2]), Descriptive.summary(sorted: sorted[3])
        )
        var lowerFence: Double?
        var upperFence: Double?
        if let q1 = Descriptive.quantile(sorted: sortedDurations, 0.25),
            let q3 = Descriptive.quantile(sorted: sortedDurations, 0.75)
        {
            lowerFence = q1 - 1.5 * (q3 - q1)
            upperFence = q3 + 1.5 * (q3 - q1)
        }
        let durationStatistics = DurationStatistics(
            seconds: durationSummary,
            buckets: Descriptive.buckets(durations, edges: durationEdges),
            shorterThan81Frames: durations.lazy.filter { $0 < 81.0 / 16.0 }.count,
            shorterThan49Frames: durations.lazy.filter { $0 < 49.0 / 16.0 }.count,
            lowerFence: lowerFence, upperFence: upperFence,
            outliersAbove: upperFence.map { fence in durations.lazy.filter { $0 > fence }.count } ?? 0,
            outliersBelow: lowerFence.map { fence in durations.lazy.filter { $0 < fence }.count } ?? 0,
            longest: largest(durations, 5).map {
                ItemRef(path: items[videoIndices[$0]].path, line: items[videoIndices[$0]].line, value: durations[$0])
            },
            histogram: Descriptive.buckets(durations, edges: stride(from: 0.0, through: 120.0, by: 5.0).map { $0 }))

        // Categories.
        var categoryCounts: [String: Int] = [:]
        for index in items.indices {
            let category = items[index].category
            categoryCounts[category.isEmpty ? "(none)" : category, default: 0] += 1
        }
        let categoryDistribution = distribution(categoryCounts.map { ($0.key, $0.value) }, total: total)
        let counts = categoryDistribution.map { Double($0.count) }
        let uniformQuarter = categoryCounts.isEmpty ? 0 : Double(total) / Double(categoryCounts.count) / 4
        let categories = CategoryStatistics(
            distribution: categoryDistribution,
            maxMinRatio: counts.isEmpty ? nil : counts.max()! / counts.min()!,
            gini: Descriptive.gini(counts),
            minority: categoryDistribution.filter { Double($0.count) < uniformQuarter }.sorted { $0.count < $1.count })

        // Captions.
        let captions = CaptionStatistics(
            length: lengthSummary,
            lengthLimit: options.captionLengthLimit,
            overLimit: lengths.lazy.filter { $0 > Double(options.captionLengthLimit) }.count,
            normalised: normalised,
            histogram: Descriptive.buckets(lengths, edges: stride(from: 0.0, through: 2000.0, by: 100.0).map { $0 }),
            longest: largest(lengths, 5).map { ItemRef(path: items[$0].path, line: items[$0].line, value: lengths[$0]) }
        )

        // Words.
        let totalWords = Int(wordsPerCaption.reduce(0, +))
        let words = WordStatistics(
            totalWords: totalWords, uniqueWords: table.uniqueCount,
            corpusTTR: totalWords > 0 ? Double(table.uniqueCount) / Double(totalWords) : nil,
            captionTTR: ttrSummary,
            wordsPerCaption: wordsSummary,
            topWords: table.top(options.topWords).map { WordCount(word: $0.word, count: $0.count) },
            captionsWithoutWords: ttrs.count - definedTTR.count)

        return DatasetStatistics(
            name: name, source: source, rowsRead: total + rejectedRows, rejectedRows: rejectedRows, items: total,
            mediaTypes: mediaTypes, resolutions: resolutions, durations: durationStatistics, categories: categories,
            captions: captions, words: words,
            durationCaptionCorrelation: Descriptive.pearson(durations, videoCaptionLengths))
    }

    public static func conversionKind(_ size: Resolution, target: Resolution) -> ConversionKind {
        if size == target { return .atTarget }
        // Same aspect ratio within 1% (e.g. 1366×768 vs 16:9).
        let ratio = Double(size.width) / Double(size.height)
        let targetRatio = Double(target.width) / Double(target.height)
        if abs(ratio - targetRatio) / targetRatio <= 0.01 {
            return size.pixels > target.pixels ? .downscale : .upscale
        }
        return .reframe
    }

    static func distribution(_ pairs: [(String, Int)], total: Int) -> [LabelCount] {
        pairs.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
            .map { LabelCount(label: $0.0, count: $0.1, share: total > 0 ? Double($0.1) / Double(total) : 0) }
    }

    /// Indices of the `limit` largest values, largest first (ties: earlier index first), in one pass.
    static func largest(_ values: [Double], _ limit: Int) -> [Int] {
        var best: [Int] = []
        for index in values.indices {
            if best.count == limit, values[index] <= values[best[limit - 1]] { continue }
            var position = best.count
            while position > 0 && values[index] > values[best[position - 1]] { position -= 1 }
            best.insert(index, at: position)
            if best.count > limit { best.removeLast() }
        }
        return best
    }
}
