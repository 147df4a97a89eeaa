import Curation
import Foundation
import Support

// n hashes, 1% of them near copies (1…10 bits flipped) of earlier ones. The others are either
// uniformly random (unrelated pictures differ in 32 ± 4 bits) or, harder for the index, drawn
// around 2,000 "look-alike" centres by 48 random set/clear steps (members of one cluster differ
// in about 20–30 bits, so block values repeat far more often than at random).
let n = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1])! : 200_000
let threshold = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2])! : 10
let clustered = CommandLine.arguments.count > 3 && CommandLine.arguments[3] == "clustered"
var random = SeededRandom(seed: 42)
let centres = (0..<2_000).map { _ in random.next() }
var hashes: [UInt64] = []
hashes.reserveCapacity(n)
for index in 0..<n {
    if index >= 100, random.below(100) == 0 {
        var copy = hashes[random.below(index)]
        for _ in 0..<(1 + random.below(10)) { copy ^= 1 << UInt64(random.below(64)) }
        hashes.append(copy)
    } else if clustered {
        var value = centres[random.below(centres.count)]
        for _ in 0..<48 { value = random.unit() < 0.5 ? value | (1 << UInt64(random.below(64))) : value & ~(1 << UInt64(random.below(64))) }
        hashes.append(value)
    } else {
        hashes.append(random.next())
    }
}
// CPU seconds of this (single-threaded) process: on a shared machine they measure the work
// better than wall time, which grows with other jobs' load.
func cpuSeconds() -> Double { Double(clock()) / Double(CLOCKS_PER_SEC) }
var start = cpuSeconds()
let index = HammingIndex(hashes)
let built = cpuSeconds() - start
start = cpuSeconds()
let pairs = index.pairs(within: threshold)
let searched = cpuSeconds() - start
// Brute force for the first 2,000 items against all, to check and to compare speed.
start = cpuSeconds()
var bruteCount = 0
for i in 0..<2_000 {
    for j in (i + 1)..<n where (hashes[i] ^ hashes[j]).nonzeroBitCount <= threshold { bruteCount += 1 }
}
let bruteSeconds = cpuSeconds() - start
let indexedCount = pairs.filter { $0.first < 2_000 }.count
let allPairsEstimate = bruteSeconds / Double(2_000 * n - 2_000 * 2_001 / 2) * Double(n) * Double(n - 1) / 2
print("\(clustered ? "clustered" : "uniform") hashes: items \(n), threshold \(threshold) bits: index built in \(String(format: "%.3f", built)) s, searched in \(String(format: "%.2f", searched)) s of CPU, \(pairs.count) pairs")
print("check: pairs of the first 2,000 items, index \(indexedCount), brute force \(bruteCount) (\(indexedCount == bruteCount ? "equal" : "DIFFERENT"))")
print("all pairs by brute force would take about \(String(format: "%.1f", allPairsEstimate)) s of CPU (measured on 2,000 × \(n))")
