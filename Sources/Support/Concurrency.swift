import Foundation

/// One slot per concurrent worker; each worker writes only its own slot, the caller reads all
/// after the workers finished (e.g. after `DispatchQueue.concurrentPerform`).
public final class OrderedSlots<Value>: @unchecked Sendable {
    private var slots: [Value?]
    private let lock = NSLock()

    public init(count: Int) {
        slots = Array(repeating: nil, count: count)
    }

    public func set(_ index: Int, _ value: Value) {
        lock.lock()
        slots[index] = value
        lock.unlock()
    }

    /// One slot's value, nil while unset.
    public func get(_ index: Int) -> Value? {
        lock.lock()
        defer { lock.unlock() }
        return slots[index]
    }

    /// The values in slot order; every slot must have been set.
    public func values() -> [Value] {
        lock.lock()
        defer { lock.unlock() }
        return slots.map { $0! }
    }
}

/// Carries a value that is safe to share by construction (e.g. a read-only buffer pointer that
/// outlives the concurrent workers reading it) across a `@Sendable` boundary.
public struct UnsafeSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}

/// Hands out consecutive blocks of `0..<count` to concurrent workers, first come first served: a
/// worker that finishes its block early takes the next one, so blocks of uneven cost (long and short
/// captions, say) do not leave a core idle at the end, as fixed halves would.
public final class BlockQueue: @unchecked Sendable {
    public let count: Int
    public let blockSize: Int
    private var next = 0
    private let lock = NSLock()

    public init(count: Int, blockSize: Int) {
        self.count = max(0, count)
        self.blockSize = max(1, blockSize)
    }

    /// Number of blocks in all.
    public var blockCount: Int { (count + blockSize - 1) / blockSize }

    /// The next block (its number and its range), or nil when every block was handed out.
    public func take() -> (block: Int, range: Range<Int>)? {
        lock.lock()
        defer { lock.unlock() }
        guard next < count else { return nil }
        let start = next
        next = min(count, start + blockSize)
        return (start / blockSize, start..<next)
    }
}
