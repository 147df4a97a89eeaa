import Foundation
import Support
import Testing

@Suite struct BlockQueueTests {
    @Test func handsOutEveryIndexOnceAcrossThreads() {
        let queue = BlockQueue(count: 10_001, blockSize: 64)
        #expect(queue.blockCount == 157)
        let seen = OrderedSlots<[Int]>(count: queue.blockCount)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            while let (block, range) = queue.take() { seen.set(block, Array(range)) }
        }
        #expect(seen.values().flatMap { $0 } == Array(0..<10_001))
        #expect(queue.take() == nil)
        #expect(BlockQueue(count: 0, blockSize: 8).take() == nil)
    }
}
