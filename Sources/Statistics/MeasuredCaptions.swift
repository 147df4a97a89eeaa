import Foundation
import Manifest
import Support

/// Every caption of a dataset measured (SPEC §2's definitions, see `CaptionScanner`): per item its
/// length, word count and type–token ratio, and the word table of them all. Owns the table's memory.
public final class MeasuredCaptions: @unchecked Sendable {
    let table: WordTable
    let lengths: [Double]
    let words: [Double]
    let ttr: [Double?]
    /// Captions that were not in NFC and were normalised before measuring.
    let normalised: Int

    init(table: WordTable, lengths: [Double], words: [Double], ttr: [Double?], normalised: Int) {
        self.table = table
        self.lengths = lengths
        self.words = words
        self.ttr = ttr
        self.normalised = normalised
    }

    deinit { table.release() }

    /// Number of captions measured.
    public var count: Int { lengths.count }

    /// Measures the items' captions on `workers` threads, each with its own word table, taking blocks
    /// of captions from a shared queue (uneven captions do not leave a core idle).
    static func measure(_ items: [ManifestItem], workers: Int, progress: ProgressCounter) -> MeasuredCaptions {
        let count = items.count
        let lanes = CaptionLanes(count: max(1, min(workers, count / 2000)))
        var lengths = [Double](repeating: 0, count: count)
        var words = [Double](repeating: 0, count: count)
        var ttr = [Double?](repeating: nil, count: count)
        lanes.run(count: count, lengths: &lengths, words: &words, ttr: &ttr, blockSize: 2048, progress: progress) {
            lane, index in
            // The item's index is its caption number: unique in every table.
            lane.scanner.measure(
                items[index].caption, table: &lane.table, captionNumber: Int32(truncatingIfNeeded: index))
        }
        return lanes.finish(lengths: lengths, words: words, ttr: ttr)
    }

    /// The captions of several datasets together (e.g. the union of the splits), in order.
    static func union(_ parts: [MeasuredCaptions]) -> MeasuredCaptions {
        var table = WordTable(capacity: max(1 << 10, parts.map(\.table.uniqueCount).max() ?? 0))
        for part in parts { table.merge(part.table) }
        return MeasuredCaptions(
            table: table, lengths: parts.flatMap(\.lengths), words: parts.flatMap(\.words), ttr: parts.flatMap(\.ttr),
            normalised: parts.reduce(0) { $0 + $1.normalised })
    }
}

/// Measures the captions that `ManifestReader` hands over while it reads a CSV manifest (see
/// `CaptionSink`): each window's captions on all cores while its bytes are still in memory, so no
/// caption is ever kept as a `String`. Pass it to `read(path:progress:captions:)`, then take
/// `finish()` for `NamedManifest.captions`.
public final class CaptionCollector: CaptionSink, @unchecked Sendable {
    private let lanes: CaptionLanes
    private var lengths: [Double] = []
    private var words: [Double] = []
    private var ttr: [Double?] = []
    private var finished = false
    private let distinct: DistinctCaptions?
    /// Each item's number among `distinct`'s captions (empty without it).
    public private(set) var captionNumbers: [Int32] = []

    /// `distinct`: also write every caption not seen before into this file for the morpheme analysis.
    public init(workers: Int = ProcessInfo.processInfo.activeProcessorCount, distinct: DistinctCaptions? = nil) {
        lanes = CaptionLanes(count: max(1, workers))
        self.distinct = distinct
    }

    public func receive(_ batch: CaptionBatch) {
        precondition(!finished && batch.firstItem == lengths.count, "captions out of order")
        if let distinct {
            // In file order on the reading thread: a caption's number is that of its first appearance.
            var scratch: [UInt8] = []
            for index in 0..<batch.count {
                captionNumbers.append(batch.withCaption(index, scratch: &scratch) { distinct.number(of: $0) })
            }
        }
        let first = lengths.count
        lengths.append(contentsOf: repeatElement(0, count: batch.count))
        words.append(contentsOf: repeatElement(0, count: batch.count))
        ttr.append(contentsOf: repeatElement(nil, count: batch.count))
        lanes.run(
            count: batch.count, offset: first, lengths: &lengths, words: &words, ttr: &ttr, blockSize: 512,
            progress: nil
        ) { lane, index in
            batch.withCaption(index, scratch: &lane.scratch) { bytes in
                lane.scanner.measure(
                    bytes: bytes, table: &lane.table, captionNumber: Int32(truncatingIfNeeded: first + index))
            }
        }
    }

    /// The measures of every caption received; the collector is done afterwards.
    public func finish() -> MeasuredCaptions {
        precondition(!finished, "finish() twice")
        finished = true
        return lanes.finish(lengths: lengths, words: words, ttr: ttr)
    }
}

/// One word table, scanner and scratch buffer per worker thread; `run` measures captions in blocks
/// taken from a shared queue, worker `w` always using lane `w`.
final class CaptionLanes: @unchecked Sendable {
    final class Lane {
        var table = WordTable(capacity: 1 << 16)
        let scanner = CaptionScanner()
        var scratch: [UInt8] = []
    }

    private let lanes: [Lane]

    init(count: Int) {
        lanes = (0..<count).map { _ in Lane() }
    }

    /// Measures captions `0..<count` (written at `offset + index` of the outputs).
    func run(
        count: Int, offset: Int = 0, lengths: inout [Double], words: inout [Double], ttr: inout [Double?],
        blockSize: Int, progress: ProgressCounter?, measure: (Lane, Int) -> CaptionMeasure
    ) {
        let queue = BlockQueue(count: count, blockSize: blockSize)
        let threads = min(lanes.count, queue.blockCount)
        guard threads > 0 else { return }
        lengths.withUnsafeMutableBufferPointer { lengthsOut in
            words.withUnsafeMutableBufferPointer { wordsOut in
                ttr.withUnsafeMutableBufferPointer { ttrOut in
                    // Each index is written by the one worker whose block holds it.
                    let outputs = UnsafeSendable((lengthsOut, wordsOut, ttrOut))
                    withoutActuallyEscaping(measure) { measure in
                        let measure = UnsafeSendable(measure)
                        DispatchQueue.concurrentPerform(iterations: threads) { worker in
                            let (lengthsOut, wordsOut, ttrOut) = outputs.value
                            let lane = lanes[worker]
                            while let (_, range) = queue.take() {
                                for index in range {
                                    let result = measure.value(lane, index)
                                    lengthsOut[offset + index] = Double(result.length)
                                    wordsOut[offset + index] = Double(result.words)
                                    ttrOut[offset + index] =
                                        result.words > 0 ? Double(result.uniqueWords) / Double(result.words) : nil
                                }
                                progress?.add(range.count)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Merges the lanes' tables (into the largest) and wraps the figures.
    func finish(lengths: [Double], words: [Double], ttr: [Double?]) -> MeasuredCaptions {
        let largest = lanes.indices.max { lanes[$0].table.uniqueCount < lanes[$1].table.uniqueCount }!
        var table = lanes[largest].table
        var normalised = 0
        for (index, lane) in lanes.enumerated() {
            normalised += lane.scanner.normalisedCount
            guard index != largest else { continue }
            table.merge(lane.table)
            lane.table.release()
        }
        return MeasuredCaptions(table: table, lengths: lengths, words: words, ttr: ttr, normalised: normalised)
    }
}
