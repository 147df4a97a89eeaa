import Foundation
import Manifest
import Support
import Testing

@testable import Curation

/// Precision and recall of near-duplicate grouping on 244 generated items: 40 image families
/// (an original, a copy resized to half, one re-encoded as a low-quality JPEG, one cropped by 3%
/// off-centre), 12 video families (the same three kinds of copy of a 3-second pan) and 36
/// unrelated items. Frames are extracted once (with the same `FrameExtractor` curate uses) and
/// both hash kinds are grouped by `DuplicateFinder`, the code curate runs.
@Suite struct NearDuplicateTests {
    struct Score: CustomStringConvertible {
        var truePairs = 0, predictedPairs = 0, correctPairs = 0
        var precision: Double { predictedPairs > 0 ? Double(correctPairs) / Double(predictedPairs) : 1 }
        var recall: Double { truePairs > 0 ? Double(correctPairs) / Double(truePairs) : 1 }
        var description: String {
            "precision \(fixed(precision, 4)) (\(correctPairs)/\(predictedPairs) "
                + "pairs), recall \(fixed(recall, 4)) (\(correctPairs)/\(truePairs) pairs)"
        }
    }

    /// Pair counts: same family (truth) against same group (prediction).
    static func score(roots: [Int], families: [Int]) -> Score {
        var score = Score()
        for i in families.indices {
            for j in (i + 1)..<families.count {
                let truth = families[i] == families[j]
                let predicted = roots[i] == roots[j]
                if truth { score.truePairs += 1 }
                if predicted { score.predictedPairs += 1 }
                if truth && predicted { score.correctPairs += 1 }
            }
        }
        return score
    }

    @Test func findsResizedReencodedAndCroppedCopiesAndNothingElse() async throws {
        let folder = TemporaryFolder("near-duplicates")
        let items = try await MediaFixture.build(
            in: folder.path, imageFamilies: 40, unrelatedImages: 30, videoFamilies: 12, unrelatedVideos: 6)
        #expect(items.count == 244)
        let options = CurationOptions()
        let extractor = FrameExtractor(ffmpeg: try MediaFixture.ffmpeg())
        let root = folder.path
        let count = options.videoFrames
        let frames = try await withThrowingTaskGroup(of: (Int, [GreyFrame]).self) { group in
            for (index, item) in items.enumerated() {
                group.addTask {
                    let path = root + "/" + item.path
                    do {
                        return (
                            index,
                            item.type == .image
                                ? [try await extractor.imageFrame(path: path)]
                                : try await extractor.videoFrames(path: path, duration: item.duration, count: count)
                        )
                    } catch {
                        throw MediaFixture.Failure(description: "\(item.path): \(error)")
                    }
                }
            }
            var frames = [[GreyFrame]](repeating: [], count: items.count)
            for try await (index, extracted) in group { frames[index] = extracted }
            return frames
        }
        #expect(frames.filter { $0.count == 3 }.count == 54)
        let families = items.map(\.family)

        var report: [String] = []
        var scores: [PerceptualHashKind: Score] = [:]
        for kind in PerceptualHashKind.allCases {
            let hashes = frames.map { $0.map { PerceptualHash.hash($0, kind: kind) } }
            let candidates = items.indices.map {
                DuplicateCandidate(mediaType: items[$0].type, digest: nil, captionHash: nil, hashes: hashes[$0])
            }
            let groups = DuplicateFinder.find(candidates, captions: false, bits: options.nearDuplicateBits)
            let score = Self.score(roots: groups.root, families: families)
            scores[kind] = score
            report.append("\(kind.rawValue) at \(options.nearDuplicateBits) bits: \(score)")

            // The distances behind the threshold: each copy to its original; the closest unrelated pair.
            var copyDistances: [String: [Int]] = [:]
            var unrelatedMinimum = 64
            for i in items.indices {
                for j in (i + 1)..<items.count where items[i].type == items[j].type {
                    let distance = zip(hashes[i], hashes[j]).map { PerceptualHash.distance($0, $1) }.max() ?? 64
                    if families[i] != families[j] {
                        unrelatedMinimum = min(unrelatedMinimum, distance)
                    } else if items[i].variant == "original" {
                        copyDistances["\(items[j].type.rawValue) \(items[j].variant)", default: []].append(distance)
                    }
                }
            }
            let copies = copyDistances.keys.sorted().map { key in
                let values = copyDistances[key]!
                return
                    "\(key) mean \(fixed(Double(values.reduce(0, +)) / Double(values.count), 1)) max \(values.max()!)"
            }
            report.append(
                "  \(kind.rawValue) bits from the original: " + copies.joined(separator: "; ")
                    + "; closest unrelated pair \(unrelatedMinimum)")
        }
        // bench/curate_near_duplicates.sh copies these lines into docs/BENCHMARKS.md.
        print("NEAR-DUPLICATES " + report.joined(separator: "\nNEAR-DUPLICATES "))
        let pHash = scores[.pHash]!
        #expect(pHash.truePairs == 52 * 6)
        #expect(pHash.precision >= 0.99, "\(pHash)")
        #expect(pHash.recall >= 0.95, "\(pHash)")
    }
}
