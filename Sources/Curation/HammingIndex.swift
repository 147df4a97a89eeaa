/// Finds all pairs of 64-bit hashes within a Hamming distance, without comparing all pairs.
///
/// Multi-index hashing (Norouzi, Punjani and Fleet, CVPR 2012): the 64 bits are cut into four
/// 16-bit blocks, and each block value indexes a table of the items having it. If two hashes
/// differ in at most t bits, then by the pigeonhole principle at least one block differs in at
/// most ⌊t/4⌋ bits; so each item probes, in each of the four tables, every block value within
/// ⌊t/4⌋ bits of its own (1 + 16 + 120 + … values) and checks only the items found there. At the
/// default t = 10 that is 137 probes per table instead of 200,000 comparisons.
///
/// Tables are stored compactly (counting sort: an offsets array of 65,537 entries per block and
/// the item numbers in block-value order), so building them is O(n) and needs no hashing.
public struct HammingIndex: Sendable {
    public let hashes: [UInt64]
    /// Per block: where each block value's items start in `members` (65,537 offsets).
    private var offsets: [[Int32]] = []
    /// Per block: item numbers in block-value order, and their hashes in the same order, so that
    /// checking a bucket reads contiguous memory.
    private var members: [[Int32]] = []
    private var memberHashes: [[UInt64]] = []

    static let blocks = 4

    public init(_ hashes: [UInt64]) {
        self.hashes = hashes
        for block in 0..<Self.blocks {
            var counts = [Int32](repeating: 0, count: 65_537)
            for hash in hashes { counts[Int(Self.blockValue(hash, block)) + 1] += 1 }
            for value in 1..<counts.count { counts[value] += counts[value - 1] }
            var cursor = counts
            var order = [Int32](repeating: 0, count: hashes.count)
            var ordered = [UInt64](repeating: 0, count: hashes.count)
            for (item, hash) in hashes.enumerated() {
                let value = Int(Self.blockValue(hash, block))
                order[Int(cursor[value])] = Int32(item)
                ordered[Int(cursor[value])] = hash
                cursor[value] += 1
            }
            offsets.append(counts)
            members.append(order)
            memberHashes.append(ordered)
        }
    }

    @inline(__always)
    static func blockValue(_ hash: UInt64, _ block: Int) -> UInt16 {
        UInt16(truncatingIfNeeded: hash >> UInt64(16 * block))
    }

    /// Every pair (i, j), i < j, with distance(hashes[i], hashes[j]) ≤ `threshold` and for which
    /// `accept` (a further check, e.g. every frame of two videos) holds; sorted by (i, j).
    ///
    /// A pair can sit in the probed buckets of several blocks; it is taken only from the first
    /// block in which its blocks differ by at most ⌊t/4⌋ bits, so each pair is checked once.
    public func pairs(
        within threshold: Int, accept: (Int, Int) -> Bool = { _, _ in true }
    ) -> [(first: Int, second: Int, distance: Int)] {
        let radius = threshold / Self.blocks
        let masks = Self.masks(upTo: radius)
        var found: [(first: Int, second: Int, distance: Int)] = []
        for block in 0..<Self.blocks {
            offsets[block].withUnsafeBufferPointer { offsets in
                members[block].withUnsafeBufferPointer { members in
                    memberHashes[block].withUnsafeBufferPointer { bucketHashes in
                        // Queries in block-value order: consecutive queries probe the same or
                        // nearby buckets, which are then still in cache.
                        for query in 0..<bucketHashes.count {
                            let i = Int(members[query])
                            let hash = bucketHashes[query]
                            let own = Self.blockValue(hash, block)
                            for mask in masks {
                                let value = Int(own ^ mask)
                                for slot in Int(offsets[value])..<Int(offsets[value + 1]) {
                                    let difference = hash ^ bucketHashes[slot]
                                    let distance = difference.nonzeroBitCount
                                    guard distance <= threshold else { continue }
                                    let j = Int(members[slot])
                                    guard j > i, Self.firstClose(difference, radius) == block, accept(i, j) else {
                                        continue
                                    }
                                    found.append((i, j, distance))
                                }
                            }
                        }
                    }
                }
            }
        }
        found.sort { ($0.first, $0.second) < ($1.first, $1.second) }
        return found
    }

    /// The first block in which `difference` has at most `radius` bits set.
    @inline(__always)
    static func firstClose(_ difference: UInt64, _ radius: Int) -> Int {
        var block = 0
        while block < blocks - 1 && blockValue(difference, block).nonzeroBitCount > radius { block += 1 }
        return block
    }

    /// All 16-bit masks with at most `radius` bits set, fewest bits first.
    static func masks(upTo radius: Int) -> [UInt16] {
        var masks: [UInt16] = []
        for bits in 0...min(radius, 16) {
            for value in 0...Int(UInt16.max) where value.nonzeroBitCount == bits {
                masks.append(UInt16(value))
            }
        }
        return masks
    }
}
