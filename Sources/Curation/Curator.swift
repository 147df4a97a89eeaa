import Foundation
import Manifest
import Statistics
import Support

/// Where a row ended.
public enum Outcome: String, Sendable, CaseIterable, Codable {
    case train
    case val
    /// Accepted by the reader, then removed by a curation rule (the reason says which).
    case dropped
    /// Rejected by the manifest reader (broken row).
    case rejected
}

/// Why a row was dropped, in the order the rules run: the first rule that applies names the row's fate.
public enum DropReason: String, Sendable, CaseIterable, Codable {
    case mediaUnreadable = "media unreadable"
    case fileMissing = "file missing"
    case resolutionOutOfRange = "resolution out of range"
    case durationOutOfRange = "duration out of range"
    case captionOutOfRange = "caption length out of range"
    case durationIQR = "duration IQR outlier"
    case captionIQR = "caption length IQR outlier"
    case lowQuality = "low quality"
    case identicalFile = "identical file"
    case sameCaption = "same caption"
    case nearDuplicate = "near duplicate"
    case sampledOut = "sampled out"
}

/// One input row's fate.
public struct CuratedRow: Sendable {
    /// Physical line of the row in the manifest (the header is line 1).
    public var line: Int
    public var id: String?
    public var path: String
    public var outcome: Outcome
    /// "kept", a `DropReason`, or the reader's rejection reason.
    public var reason: String
    /// The numbers behind the reason, and notes (file missing, caption truncated, outliers kept).
    public var detail: String
    /// Duplicate group label (every curated item has one; a singleton is its own group).
    public var group: String
    public var quality: Double?
    /// Class-balanced sampling weight (train and val rows).
    public var weight: Double?
    /// The cleaned caption (train and val rows).
    public var caption: String
    /// The row's original fields, in `CurationResult.inputColumns` order.
    public var fields: [String]
}

/// Everything `curate` decided, ready to be written (`CurationWriter`) and summarised.
public struct CurationResult: Sendable {
    public var source: String
    public var inputColumns: [String]
    /// Index of the caption column in `inputColumns`.
    public var captionColumn: Int
    /// Index of the path column in `inputColumns`.
    public var pathColumn: Int = 0
    /// The folder relative paths resolve against (`--media-root`, or the manifest's folder).
    public var mediaRoot: String = "."
    /// One per accepted item, in input order.
    public var rows: [CuratedRow]
    /// The reader's rejected rows.
    public var rejected: [RejectedRow]
    public var summary: CurationSummary
}

/// The pipeline: captions → media → quality and outliers → duplicates → sampling → split → weights.
public enum Curator {
    /// `templateCaptions`: each item's template-caption flag (`MorphemeCalculator.templateFlags`),
    /// required when `options.templateCaptions` is on.
    public static func curate(
        _ manifest: Manifest, options: CurationOptions, fingerprintCache: String? = nil,
        progress: ProgressReporter = .silent, templateCaptions: [Bool]? = nil
    ) async throws(CurationError) -> CurationResult {
        try options.validate()
        precondition(
            !options.templateCaptions || templateCaptions?.count == manifest.items.count,
            "template_captions is on: pass one flag per item")
        let items = manifest.items
        let count = items.count
        var summary = CurationSummary(options: options)
        summary.rowsRead = manifest.rowsRead
        summary.rejected = manifest.rejected.count
        summary.accepted = count

        // 1. Captions: clean, measure (length, words, type-token ratio, word-sequence hash).
        let captions = measureCaptions(items, options: options, progress: progress)
        summary.captionsCleaned = captions.lazy.filter(\.cleaned.changed).count
        summary.captionsTruncated = captions.lazy.filter(\.cleaned.truncated).count

        // 2. Media: existence, SHA-256, perceptual hashes, frame measures.
        let root =
            options.mediaRoot
            ?? {
                let folder = (manifest.source as NSString).deletingLastPathComponent
                return folder.isEmpty ? "." : folder
            }()
        let fingerprinter = MediaFingerprinter(options: options, root: root, cachePath: fingerprintCache)
        let (fingerprints, mediaTotals) = try await fingerprinter.fingerprint(items, progress: progress)
        summary.media = mediaTotals

        // 3. Quality and outliers.
        var quality: [QualityScore] = []
        quality.reserveCapacity(count)
        for index in 0..<count {
            quality.append(
                QualityScore(
                    item: items[index], captionLength: captions[index].metrics.length,
                    typeTokenRatio: captions[index].metrics.typeTokenRatio, measures: fingerprints[index].measures,
                    options: options, isTemplateCaption: templateCaptions?[index]))
        }
        if options.templateCaptions { summary.templateCaptions = templateCaptions!.lazy.filter { $0 }.count }
        let durations = items.compactMap { $0.mediaType == .video ? $0.duration : nil }
        summary.durationFences = Fences(durations, factor: options.iqrFactor)
        summary.captionFences = Fences(captions.map { Double($0.metrics.length) }, factor: options.iqrFactor)

        var fate = [Fate](repeating: Fate(), count: count)
        for index in 0..<count {
            decideEarly(
                item: items[index], caption: captions[index], media: fingerprints[index], quality: quality[index],
                options: options, summary: &summary, fate: &fate[index])
        }

        // 4. Duplicates among the items still in.
        let survivors = (0..<count).filter { fate[$0].reason == nil }
        let candidates = survivors.map { index in
            DuplicateCandidate(
                mediaType: items[index].mediaType, digest: fingerprints[index].digest,
                captionHash: captions[index].metrics.words > 0 ? captions[index].metrics.wordSequenceHash : nil,
                hashes: options.perceptualHash ? fingerprints[index].hashes : [])
        }
        let duplicates = DuplicateFinder.find(
            candidates, captions: options.captionDuplicates,
            bits: options.perceptualHash ? options.nearDuplicateBits : nil)
        summary.duplicatePairs = duplicates.pairCounts
        var positionOf = [Int](repeating: -1, count: count)  // item index → position in survivors
        for (position, index) in survivors.enumerated() { positionOf[index] = position }
        var membersOfRoot: [Int: [Int]] = [:]  // survivor positions by root position
        for position in survivors.indices { membersOfRoot[duplicates.root[position], default: []].append(position) }
        let roots = membersOfRoot.keys.sorted()
        let labelWidth = max(6, String(roots.count).count)
        var unitsInOrder: [[Int]] = []  // item indices per group, groups in order of their first line
        for (number, root) in roots.enumerated() {
            let members = membersOfRoot[root]!.map { survivors[$0] }
            let label =
                "g" + String(repeating: "0", count: max(0, labelWidth - String(number + 1).count)) + String(number + 1)
            for member in members { fate[member].group = label }
            if members.count > 1 {
                summary.duplicateGroups += 1
                summary.itemsInDuplicateGroups += members.count
            }
            switch options.duplicatePolicy {
            case .group:
                unitsInOrder.append(members)
                if members.count > 1 {
                    for member in members {
                        let position = positionOf[member]
                        let link = duplicates.link[position]!
                        fate[member].notes.append(
                            "in duplicate group \(label) of \(members.count) "
                                + "(\(describe(link.kind)) line \(items[survivors[link.partner]].line))")
                    }
                }
            case .drop:
                let keeper = members.min { a, b in
                    let qa = quality[a].value
                    let qb = quality[b].value
                    if qa != qb { return qa > qb }
                    if items[a].path != items[b].path {
                        return items[a].path.utf8.lexicographicallyPrecedes(items[b].path.utf8)
                    }
                    return items[a].line < items[b].line
                }!
                unitsInOrder.append([keeper])
                for member in members where member != keeper {
                    let position = positionOf[member]
                    let link = duplicates.link[position]!
                    let reason: DropReason =
                        switch link.kind {
                        case .identicalFile: .identicalFile
                        case .sameCaption: .sameCaption
                        case .nearDuplicate: .nearDuplicate
                        }
                    fate[member].drop(
                        reason,
                        "\(describe(link.kind)) line \(items[survivors[link.partner]].line); group \(label) "
                            + "keeps line \(items[keeper].line) (\(items[keeper].path), "
                            + "quality \(fixed(quality[keeper].value, 4)))")
                }
                if members.count > 1 {
                    fate[keeper].notes.append(
                        "kept for duplicate group \(label) of \(members.count) (highest quality, then path order)")
                }
            }
        }

        // 5. Sampling to a target size, stratified by media type (and category).
        var sampleRandom = SeededRandom(seed: options.seed)
        var units = unitsInOrder
        if let size = options.sampleSize {
            let (chosen, note) = sample(units, items: items, size: size, options: options, random: &sampleRandom)
            summary.samplingNote = note
            let chosenSet = Set(chosen.flatMap { $0 })
            for unit in units {
                for member in unit where !chosenSet.contains(member) {
                    fate[member].drop(.sampledOut, "not drawn in the seeded stratified sample (seed \(options.seed))")
                }
            }
            units = chosen
        }

        // 6. Train/val split stratified by type × category; a unit (duplicate group) goes whole.
        var splitRandom = SeededRandom(seed: options.seed ^ 0x5851_F42D_4C95_7F2D)
        let valUnits = split(units, items: items, fraction: options.valFraction, random: &splitRandom)
        for (position, unit) in units.enumerated() {
            for member in unit { fate[member].outcome = valUnits.contains(position) ? .val : .train }
        }

        // 7. Class weights from the train split's categories.
        var trainCounts: [String: Int] = [:]
        for index in 0..<count where fate[index].outcome == .train {
            trainCounts[items[index].category, default: 0] += 1
        }
        let chosenWeights = ClassWeights.compute(trainCounts, method: options.weighting, beta: options.beta)
        let fallbackWeight = chosenWeights.values.max() ?? 1
        summary.classWeights = CurationSummary.weightTable(trainCounts, chosen: options.weighting, beta: options.beta)

        // 8. Rows.
        var rows: [CuratedRow] = []
        rows.reserveCapacity(count)
        for index in 0..<count {
            let item = items[index]
            var f = fate[index]
            if f.reason == nil {
                if case .missing = fingerprints[index].status, !options.requireMedia {
                    f.notes.insert("file missing: media rules skipped", at: 0)
                }
                if captions[index].cleaned.truncated {
                    f.notes.append(
                        "caption truncated from "
                            + "\(NumberFormat.grouped(captions[index].cleaned.lengthBeforeTruncation)) "
                            + "to \(NumberFormat.grouped(options.captionTruncate!)) characters or fewer")
                } else if captions[index].cleaned.changed {
                    f.notes.append("caption cleaned")
                }
            }
            let kept = f.outcome == .train || f.outcome == .val
            let outcome: Outcome = f.reason == nil ? f.outcome : .dropped
            rows.append(
                CuratedRow(
                    line: item.line, id: item.id, path: item.path, outcome: outcome,
                    reason: f.reason?.rawValue ?? "kept",
                    detail: ((f.detail.map { [$0] } ?? []) + f.notes).joined(separator: "; "),
                    group: f.group, quality: quality[index].value,
                    weight: kept ? (chosenWeights[item.category] ?? fallbackWeight) : nil,
                    caption: kept ? captions[index].cleaned.text : captions[index].cleaned.untruncated,
                    fields: item.fields))
        }
        summary.tally(rows: rows, items: items, rejected: manifest.rejected)
        return CurationResult(
            source: manifest.source, inputColumns: manifest.columns, captionColumn: manifest.columnMap[.caption] ?? 0,
            pathColumn: manifest.columnMap[.path] ?? 0, mediaRoot: root,
            rows: rows, rejected: manifest.rejected, summary: summary)
    }

    /// The decision so far about one item.
    struct Fate {
        var reason: DropReason?
        var detail: String?
        var notes: [String] = []
        var group = ""
        var outcome: Outcome = .dropped

        mutating func drop(_ reason: DropReason, _ detail: String) {
            guard self.reason == nil else { return }
            self.reason = reason
            self.detail = detail
        }
    }

    /// Media, range, IQR and quality rules, in that order.
    static func decideEarly(
        item: ManifestItem, caption: CaptionFacts, media: MediaFingerprint, quality: QualityScore,
        options: CurationOptions, summary: inout CurationSummary, fate: inout Fate
    ) {
        switch media.status {
        case .unreadable(let why): fate.drop(.mediaUnreadable, "\(media.resolvedPath): \(why)")
        case .missing where options.requireMedia:
            fate.drop(.fileMissing, "\(media.resolvedPath) does not exist (require_media is on)")
        default: break
        }
        // Absolute ranges.
        let length = caption.metrics.length
        var rangeProblems: [(DropReason, String)] = []
        let shortSide = min(item.resolution.width, item.resolution.height)
        if shortSide < options.minShortSide {
            rangeProblems.append(
                (
                    .resolutionOutOfRange,
                    "\(item.resolution) has a short side of \(shortSide) px, below \(options.minShortSide) px"
                ))
        }
        if item.mediaType == .video, let duration = item.duration {
            if duration < options.durationMin {
                rangeProblems.append(
                    (.durationOutOfRange, "duration \(fixed(duration, 2)) s below \(fixed(options.durationMin, 2)) s"))
            } else if duration > options.durationMax {
                rangeProblems.append(
                    (.durationOutOfRange, "duration \(fixed(duration, 2)) s above \(fixed(options.durationMax, 2)) s"))
            }
        }
        if length < options.captionLengthMin {
            rangeProblems.append(
                (.captionOutOfRange, "caption of \(length) characters, below \(options.captionLengthMin)"))
        } else if length > options.captionLengthMax {
            rangeProblems.append(
                (
                    .captionOutOfRange,
                    "caption of \(NumberFormat.grouped(length)) characters, "
                        + "above \(NumberFormat.grouped(options.captionLengthMax))"
                ))
        }
        if !rangeProblems.isEmpty { summary.rangeOutliers += 1 }
        for (reason, detail) in rangeProblems {
            if options.dropRangeOutliers {
                fate.drop(reason, detail)
            } else {
                fate.notes.append("range outlier kept: \(detail)")
            }
        }
        // Tukey's fences.
        var iqrProblems: [(DropReason, String)] = []
        if item.mediaType == .video, let duration = item.duration, let fences = summary.durationFences,
            !fences.contains(duration)
        {
            let side =
                duration > fences.upper
                ? "above the upper fence \(fixed(fences.upper, 2))" : "below the lower fence \(fixed(fences.lower, 2))"
            iqrProblems.append((.durationIQR, "duration \(fixed(duration, 2)) s \(side) s"))
        }
        if let fences = summary.captionFences, !fences.contains(Double(length)) {
            let side =
                Double(length) > fences.upper
                ? "above the upper fence \(fixed(fences.upper, 1))" : "below the lower fence \(fixed(fences.lower, 1))"
            iqrProblems.append((.captionIQR, "caption of \(NumberFormat.grouped(length)) characters \(side)"))
        }
        if !iqrProblems.isEmpty { summary.iqrOutliers += 1 }
        for (reason, detail) in iqrProblems {
            if options.dropIQROutliers {
                fate.drop(reason, detail)
            } else {
                fate.notes.append("IQR outlier kept: \(detail)")
            }
        }
        // Quality.
        let score = quality.value
        if score < options.minQuality {
            let weakest = quality.weakest
            fate.drop(
                .lowQuality,
                "quality \(fixed(score, 4)) below \(fixed(options.minQuality, 2)); "
                    + "weakest part: \(weakest.name) \(fixed(weakest.value, 2))")
        }
    }

    static func describe(_ link: DuplicateLink) -> String {
        switch link {
        case .identicalFile: "identical file to"
        case .sameCaption: "same caption as"
        case .nearDuplicate(let bits): "near duplicate (\(bits) of 64 bits differ) of"
        }
    }

    // MARK: Captions

    struct CaptionFacts: Sendable {
        var cleaned: CaptionCleaner.Cleaned
        var metrics: CaptionMetrics
    }

    static func measureCaptions(_ items: [ManifestItem], options: CurationOptions, progress: ProgressReporter)
        -> [CaptionFacts]
    {
        let cleaner = CaptionCleaner(truncateTo: options.captionTruncate)
        let sliceCount = max(1, min(options.workers, items.count / 2_000))
        let bounds = (0...sliceCount).map { $0 * items.count / sliceCount }
        let slots = OrderedSlots<[CaptionFacts]>(count: sliceCount)
        DispatchQueue.concurrentPerform(iterations: sliceCount) { slice in
            var meter = CaptionMeter()
            var out: [CaptionFacts] = []
            out.reserveCapacity(bounds[slice + 1] - bounds[slice])
            for index in bounds[slice]..<bounds[slice + 1] {
                let cleaned = cleaner.clean(items[index].caption)
                out.append(CaptionFacts(cleaned: cleaned, metrics: meter.measure(cleaned.untruncated, knownNFC: true)))
            }
            slots.set(slice, out)
        }
        progress.report(
            ProgressEvent(stage: "clean captions", completed: items.count, total: items.count, unit: "captions"))
        return slots.values().flatMap { $0 }
    }

    // MARK: Sampling and split

    /// A stratum key: media type, then category (byte order).
    struct Stratum: Hashable, Comparable {
        var type: MediaType
        var category: String

        static func < (a: Stratum, b: Stratum) -> Bool {
            a.type != b.type ? a.type < b.type : a.category.utf8.lexicographicallyPrecedes(b.category.utf8)
        }
    }

    /// Picks units per stratum: the largest sample of at most `size` items whose images:videos
    /// ratio is `imageShare` (within one item), optionally with each category's share per type.
    static func sample(
        _ units: [[Int]], items: [ManifestItem], size: Int, options: CurationOptions, random: inout SeededRandom
    ) -> (chosen: [[Int]], note: String?) {
        func type(_ unit: [Int]) -> MediaType { items[unit[0]].mediaType }
        let available = MediaType.allCases.map { t in units.filter { type($0) == t }.reduce(0) { $0 + $1.count } }
        let shares = [options.imageShare, 1 - options.imageShare]
        // Keep the ratio: the sample cannot be larger than what the scarcer type allows.
        var limit = Double(size)
        for (share, have) in zip(shares, available) where share > 0 { limit = min(limit, Double(have) / share) }
        let total = Int(limit.rounded(.down))
        var typeCounts = Allocation.largestRemainder(shares.map { Double(total) * $0 })
        typeCounts = zip(typeCounts, available).map { min($0, $1) }
        var note: String?
        if total < size && size != Int.max {
            note =
                "asked for \(NumberFormat.grouped(size)) items; \(NumberFormat.grouped(total)) is the most that keeps "
                + "images:videos at \(fixed(options.imageShare * 100, 0)):\(fixed((1 - options.imageShare) * 100, 0)) "
                + "(\(NumberFormat.grouped(available[0])) "
                + "images and \(NumberFormat.grouped(available[1])) videos available)"
        }
        var quotas: [Stratum: Int] = [:]
        var unitsByStratum: [Stratum: [[Int]]] = [:]
        for unit in units {
            let key = Stratum(
                type: type(unit), category: options.stratifySampleByCategory ? items[unit[0]].category : "")
            unitsByStratum[key, default: []].append(unit)
        }
        for (typeIndex, mediaType) in MediaType.allCases.enumerated() {
            let keys = unitsByStratum.keys.filter { $0.type == mediaType }.sorted()
            let sizes = keys.map { unitsByStratum[$0]!.reduce(0) { $0 + $1.count } }
            let have = sizes.reduce(0, +)
            guard have > 0 else { continue }
            let counts = Allocation.largestRemainder(
                sizes.map { Double(typeCounts[typeIndex]) * Double($0) / Double(have) })
            for (key, quota) in zip(keys, counts) { quotas[key] = quota }
        }
        var chosen: [[Int]] = []
        for key in unitsByStratum.keys.sorted() {
            chosen += take(unitsByStratum[key]!, quota: quotas[key] ?? 0, random: &random)
        }
        chosen.sort { $0[0] < $1[0] }
        return (chosen, note)
    }

    /// Shuffles the units and takes them, in that order, while they fit in `quota` items.
    static func take(_ units: [[Int]], quota: Int, random: inout SeededRandom) -> [[Int]] {
        var order = units
        random.shuffle(&order)
        var taken: [[Int]] = []
        var filled = 0
        for unit in order where filled + unit.count <= quota {
            taken.append(unit)
            filled += unit.count
            if filled == quota { break }
        }
        return taken
    }

    /// Positions (in `units`) of the units that go to val: per stratum (type × category of the
    /// unit's first item) a largest-remainder share of `fraction`, so each stratum's val count is
    /// within one item of fraction × its size.
    static func split(_ units: [[Int]], items: [ManifestItem], fraction: Double, random: inout SeededRandom) -> Set<Int>
    {
        var byStratum: [Stratum: [Int]] = [:]
        for (position, unit) in units.enumerated() {
            byStratum[Stratum(type: items[unit[0]].mediaType, category: items[unit[0]].category), default: []].append(
                position)
        }
        let keys = byStratum.keys.sorted()
        let sizes = keys.map { byStratum[$0]!.reduce(0) { $0 + units[$1].count } }
        let quotas = Allocation.largestRemainder(sizes.map { Double($0) * fraction })
        var val = Set<Int>()
        for (key, quota) in zip(keys, quotas) {
            var order = byStratum[key]!
            random.shuffle(&order)
            var filled = 0
            for position in order where filled + units[position].count <= quota {
                val.insert(position)
                filled += units[position].count
                if filled == quota { break }
            }
        }
        return val
    }
}

/// `value` with exactly `places` decimals, no grouping (locale-independent, fast).
func fixed(_ value: Double, _ places: Int) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    let scaled = (value.magnitude * scale).rounded()
    guard scaled < 9e15 else { return String(value) }
    let whole = Int64(scaled)
    let divisor = Int64(scale)
    var text = String(whole / divisor)
    if places > 0 {
        let fraction = String(whole % divisor)
        text += "." + String(repeating: "0", count: places - fraction.count) + fraction
    }
    return (value < 0 && whole != 0 ? "-" : "") + text
}
