import Foundation
import Manifest
import Testing

@testable import Curation

/// The promises curate makes about every run, checked on a 3,009-row manifest without media.
@Suite struct CurationInvariantTests {
    let folder = TemporaryFolder()

    @Test(arguments: [DuplicatePolicy.drop, .group])
    func everyRowEndsInExactlyOnePlace(policy: DuplicatePolicy) async throws {
        let manifest = try MetadataFixture.manifest(in: folder)
        let result = try await Curator.curate(
            manifest, options: MetadataFixture.options { $0.duplicatePolicy = policy })
        let log = records(CurationWriter.logCSV(result))
        let train = records(CurationWriter.splitCSV(result, .train))
        let val = records(CurationWriter.splitCSV(result, .val))

        // One log line per data row of the input, read or rejected.
        #expect(manifest.rowsRead == 3_009)
        #expect(log.count == manifest.rowsRead)
        let expectedLines = Set(manifest.items.map(\.line) + manifest.rejected.map(\.line))
        #expect(Set(log.map { Int($0["line"]!)! }) == expectedLines)
        #expect(expectedLines.count == log.count)

        // train.csv and val.csv hold exactly the rows the log sends there, each once.
        let trainIDs = train.map { $0["id"]! }
        let valIDs = val.map { $0["id"]! }
        #expect(Set(trainIDs).count == trainIDs.count && Set(valIDs).count == valIDs.count)
        #expect(Set(trainIDs).isDisjoint(with: valIDs))
        #expect(Set(trainIDs) == Set(log.filter { $0["outcome"] == "train" }.map { $0["id"]! }))
        #expect(Set(valIDs) == Set(log.filter { $0["outcome"] == "val" }.map { $0["id"]! }))

        // Every row not in a split says why.
        let reasons = Set(DropReason.allCases.map(\.rawValue))
        for row in log where row["outcome"] == "dropped" { #expect(reasons.contains(row["reason"]!), "\(row)") }
        // Each of the nine broken rows breaks its own rule (the ninth repeats the first row's path).
        #expect(manifest.rejected.count == 9)
        #expect(log.filter { $0["outcome"] == "rejected" }.count == manifest.rejected.count)
        #expect(log.filter { $0["reason"] == "duration out of range" }.count == 1)
        #expect(log.filter { $0["reason"] == "resolution out of range" }.count == 1)
        if policy == .drop {
            // 75 caption groups of 2, 3 or 4 items: 25·1 + 25·2 + 25·3 = 150 copies dropped.
            #expect(log.filter { $0["reason"] == "same caption" }.count == 150)
        }

        // The summary reconciles.
        let summary = result.summary
        #expect(summary.reasons.reduce(0) { $0 + $1.count } == manifest.rowsRead)
        #expect(summary.train + summary.val + summary.dropped + summary.rejected == manifest.rowsRead)
        #expect(summary.train == train.count && summary.val == val.count)
    }

    @Test func duplicateGroupsNeverStraddleTheSplit() async throws {
        let manifest = try MetadataFixture.manifest(in: folder)
        let result = try await Curator.curate(
            manifest, options: MetadataFixture.options { $0.duplicatePolicy = .group })
        var outcomes: [String: Set<Outcome>] = [:]
        for row in result.rows where row.outcome == .train || row.outcome == .val {
            outcomes[row.group, default: []].insert(row.outcome)
        }
        let groupSizes = Dictionary(grouping: result.rows.filter { $0.outcome != .dropped }, by: \.group).mapValues(
            \.count)
        let multi = groupSizes.filter { $0.value > 1 }
        #expect(multi.count == 75)
        #expect(multi.values.reduce(0, +) == 75 + 150)
        for (group, seen) in outcomes { #expect(seen.count == 1, "group \(group) is in \(seen)") }
        // Groups do land on both sides (the rule is exercised, not avoided).
        #expect(multi.keys.contains { outcomes[$0] == [.val] })
        #expect(multi.keys.contains { outcomes[$0] == [.train] })
    }

    @Test(arguments: [0.1, 0.25])
    func splitSharesAreWithinOneItemOfTheTargetPerStratum(fraction: Double) async throws {
        let manifest = try MetadataFixture.manifest(in: folder)
        let result = try await Curator.curate(manifest, options: MetadataFixture.options { $0.valFraction = fraction })
        var kept: [String: Int] = [:]
        var val: [String: Int] = [:]
        for (row, item) in zip(result.rows, manifest.items) where row.outcome == .train || row.outcome == .val {
            let stratum = "\(item.mediaType.rawValue)/\(item.category)"
            kept[stratum, default: 0] += 1
            if row.outcome == .val { val[stratum, default: 0] += 1 }
        }
        #expect(kept.count == 16)
        for (stratum, count) in kept {
            let target = fraction * Double(count)
            #expect(abs(Double(val[stratum] ?? 0) - target) < 1, "\(stratum): \(val[stratum] ?? 0) of \(count)")
        }
        let total = kept.values.reduce(0, +)
        #expect(abs(Double(result.summary.val) - fraction * Double(total)) <= 0.5)
    }

    @Test func sampleIsFiftyFiftyAndKeepsCategorySharesWithinOneItem() async throws {
        let manifest = try MetadataFixture.manifest(in: folder)
        let result = try await Curator.curate(
            manifest,
            options: MetadataFixture.options {
                $0.sampleSize = 1_000
                $0.stratifySampleByCategory = true
            })
        var available: [String: Int] = [:]
        var sampled: [String: Int] = [:]
        var byType: [MediaType: Int] = [:]
        var availableByType: [MediaType: Int] = [:]
        for (row, item) in zip(result.rows, manifest.items) {
            let inPool = row.outcome == .train || row.outcome == .val || row.reason == DropReason.sampledOut.rawValue
            guard inPool else { continue }
            let stratum = "\(item.mediaType.rawValue)/\(item.category)"
            available[stratum, default: 0] += 1
            availableByType[item.mediaType, default: 0] += 1
            if row.outcome != .dropped {
                sampled[stratum, default: 0] += 1
                byType[item.mediaType, default: 0] += 1
            }
        }
        #expect(byType[.image] == 500 && byType[.video] == 500)
        for (stratum, count) in available {
            let type: MediaType = stratum.hasPrefix("image") ? .image : .video
            let target = 500 * Double(count) / Double(availableByType[type]!)
            #expect(abs(Double(sampled[stratum] ?? 0) - target) < 1, "\(stratum)")
        }
        #expect(
            result.rows.filter { $0.reason == DropReason.sampledOut.rawValue }.count == availableByType.values.reduce(
                0, +) - 1_000)
    }

    @Test func sampleMaxKeepsTheRatioAndSaysSoWhenASizeCannot() async throws {
        let manifest = try MetadataFixture.manifest(in: folder)
        let max = try await Curator.curate(manifest, options: MetadataFixture.options { $0.sampleSize = Int.max })
        let images = zip(max.rows, manifest.items).filter { $0.0.outcome != .dropped && $0.1.mediaType == .image }.count
        let kept = max.summary.train + max.summary.val
        #expect(images * 2 == kept)
        #expect(max.summary.samplingNote == nil)
        let tooMany = try await Curator.curate(manifest, options: MetadataFixture.options { $0.sampleSize = 10_000 })
        #expect(tooMany.summary.train + tooMany.summary.val == kept)
        #expect(tooMany.summary.samplingNote?.contains("keeps images:videos at 50:50") == true)
    }

    @Test func sameSeedSameBytesOtherSeedOtherSplit() async throws {
        let manifest = try MetadataFixture.manifest(in: folder)
        let options = MetadataFixture.options { $0.sampleSize = 2_000 }
        let first = try await Curator.curate(manifest, options: options)
        let second = try await Curator.curate(manifest, options: options)
        let a = TemporaryFolder()
        let b = TemporaryFolder()
        try CurationWriter.write(first, to: a.path)
        try CurationWriter.write(second, to: b.path)
        for name in ["train.csv", "val.csv", "curation-log.csv"] {
            let bytesA = try Data(contentsOf: URL(fileURLWithPath: a.file(name)))
            let bytesB = try Data(contentsOf: URL(fileURLWithPath: b.file(name)))
            #expect(bytesA == bytesB, "\(name) differs between two runs")
            #expect(bytesA.count > 1_000)
        }
        var otherSeed = options
        otherSeed.seed = 43
        let third = try await Curator.curate(manifest, options: otherSeed)
        #expect(CurationWriter.splitCSV(third, .val) != CurationWriter.splitCSV(first, .val))
    }

    @Test func weightColumnHoldsTheTrainSplitsClassWeights() async throws {
        let manifest = try MetadataFixture.manifest(in: folder)
        let result = try await Curator.curate(manifest, options: MetadataFixture.options { $0.weighting = .inverse })
        let train = records(CurationWriter.splitCSV(result, .train))
        var counts: [String: Int] = [:]
        for row in train { counts[row["category"]!, default: 0] += 1 }
        let expected = ClassWeights.compute(counts, method: .inverse, beta: 0)
        for row in train { #expect(abs(Double(row["weight"]!)! - expected[row["category"]!]!) < 5e-7) }
        let mean = train.reduce(0.0) { $0 + Double($1["weight"]!)! } / Double(train.count)
        #expect(abs(mean - 1) < 1e-5)
        // Inverse frequency: the rarest category's weight over the commonest's is their count ratio.
        let rarest = counts.min { $0.value < $1.value }!
        let commonest = counts.max { $0.value < $1.value }!
        #expect(
            abs(expected[rarest.key]! / expected[commonest.key]! - Double(commonest.value) / Double(rarest.value))
                < 1e-9)
        // The header keeps the input's columns and adds three.
        #expect(
            parseCSV(CurationWriter.splitCSV(result, .train))[0] == manifest.columns + ["weight", "quality", "group"])
    }

    @Test func cleanedAndTruncatedCaptionsAreWrittenAndCounted() async throws {
        let manifest = try MetadataFixture.manifest(in: folder)
        let result = try await Curator.curate(manifest, options: MetadataFixture.options { $0.captionTruncate = 300 })
        let written = records(CurationWriter.splitCSV(result, .train)) + records(CurationWriter.splitCSV(result, .val))
        for row in written {
            let caption = row["caption"]!
            #expect(caption.unicodeScalars.count <= 300)
            #expect(
                !caption.contains("  ") && !caption.contains("\n")
                    && caption == caption.trimmingCharacters(in: .whitespaces))
        }
        let longer = result.rows.filter { $0.outcome != .dropped && $0.detail.contains("caption truncated") }.count
        #expect(longer > 100)
        #expect(result.summary.captionsTruncated >= longer)
    }

    @Test func filesAbsentMeansMetadataRulesOnlyOrDroppedWhenRequired() async throws {
        let manifest = try MetadataFixture.manifest(rows: 200, in: folder)
        let lenient = try await Curator.curate(manifest, options: MetadataFixture.options())
        #expect(lenient.summary.media.missing == 200)
        #expect(lenient.rows.filter { $0.outcome != .dropped }.allSatisfy { $0.detail.hasPrefix("file missing") })
        let strict = try await Curator.curate(manifest, options: MetadataFixture.options { $0.requireMedia = true })
        #expect(strict.rows.allSatisfy { $0.outcome == .dropped && $0.reason == "file missing" })
    }
}
