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
