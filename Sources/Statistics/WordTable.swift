#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the caption scanner counts words: it says whether a word is new in the current caption.
protocol WordCounter {
    mutating func add(_ bytes: UnsafePointer<UInt8>, _ count: Int, hash: UInt64, caption: Int32) -> Bool
}

/// A hash table from words (UTF-8 bytes) to dense ids, counts and a per-caption stamp.
///
/// Words are interned into one byte arena, so counting 18 million words allocates no `String`s;
/// the per-caption stamp gives each caption's unique-word count without a per-caption set. Each
/// word's bookkeeping sits in one 24-byte entry so that a lookup touches few cache lines. Storage
/// is manual (this is the innermost loop of `analyze`); one table belongs to one worker, which
/// calls `release()` when done. A struct, so that accesses are checked at compile time, not per word.
struct WordTable: WordCounter, @unchecked Sendable {
    struct Entry {
        var hash: UInt64
        var start: UInt32
        var length: UInt32
        var count: UInt32
        /// The caption number in which the word was last seen.
        var lastSeen: Int32
    }

    private var arena: UnsafeMutablePointer<UInt8>
    private var arenaCount = 0
    private var arenaCapacity: Int
    private var entries: UnsafeMutablePointer<Entry>
    private(set) var uniqueCount = 0
    private var entryCapacity: Int
    private var slots: UnsafeMutablePointer<Int32>
    private var slotCount: Int

    init(capacity: Int = 1 << 16) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slotCount = size
        slots = .allocate(capacity: size)
        slots.initialize(repeating: -1, count: size)
        entryCapacity = max(16, capacity)
        entries = .allocate(capacity: entryCapacity)
        arenaCapacity = max(256, capacity * 8)
        arena = .allocate(capacity: arenaCapacity)
    }

    /// Frees the storage; the table must not be used afterwards.
    func release() {
        slots.deallocate()
        entries.deallocate()
        arena.deallocate()
    }

    /// 64-bit hash reading 8 bytes at a time (multiply–xorshift rounds, then a murmur3 finaliser).
    @inline(__always)
    static func hash(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> UInt64 {
        let raw = UnsafeRawPointer(bytes)
        var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ (UInt64(count) &* 0x9E37_79B9_7F4A_7C15)
        var offset = 0
        while offset + 8 <= count {
            h = (h ^ raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 29
            offset += 8
        }
        if offset < count {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while offset < count {
                tail |= UInt64(bytes[offset]) << shift
                shift &+= 8
                offset += 1
            }
            h = (h ^ tail) &* 0x9E37_79B9_7F4A_7C15
        }
        h ^= h >> 33
        h &*= 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h &*= 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return h
    }

    /// Counts one occurrence of the word in caption number `caption`; returns true when it is the
    /// word's first occurrence in that caption.
    @inline(__always)
    mutating func add(_ bytes: UnsafePointer<UInt8>, _ count: Int, caption: Int32) -> Bool {
        add(bytes, count, hash: Self.hash(bytes, count), caption: caption)
    }

    /// As `add(_:_:caption:)`, with the word's `hash(_:_:)` already computed.
    @inline(__always)
    mutating func add(_ bytes: UnsafePointer<UInt8>, _ count: Int, hash: UInt64, caption: Int32) -> Bool {
        let id = intern(bytes, count, hash: hash)
        entries[id].count &+= 1
        if entries[id].lastSeen != caption {
            entries[id].lastSeen = caption
            return true
        }
        return false
    }

    @inline(__always)
    private mutating func intern(_ bytes: UnsafePointer<UInt8>, _ count: Int, hash: UInt64) -> Int {
        let mask = slotCount - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let id = Int(slots[slot])
            if id < 0 { break }
            let entry = entries[id]
            if entry.hash == hash && Int(entry.length) == count && Self.same(arena + Int(entry.start), bytes, count) {
                return id
            }
            slot = (slot + 1) & mask
        }
        return insert(bytes, count, hash: hash, slot: slot)
    }

    /// Byte equality, 8 bytes at a time (words are short; a libc call costs more than the compare).
    @inline(__always)
    static func same(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        let x = UnsafeRawPointer(a), y = UnsafeRawPointer(b)
        var offset = 0
        while offset + 8 <= count {
            if x.loadUnaligned(fromByteOffset: offset, as: UInt64.self) != y.loadUnaligned(fromByteOffset: offset, as: UInt64.self) {
                return false
            }
            offset += 8
        }
        while offset < count {
            if a[offset] != b[offset] { return false }
            offset += 1
        }
        return true
    }

    private mutating func insert(_ bytes: UnsafePointer<UInt8>, _ count: Int, hash: UInt64, slot: Int) -> Int {
        if arenaCount + count > arenaCapacity {
            var capacity = arenaCapacity * 2
            while arenaCount + count > capacity { capacity *= 2 }
            let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
            grown.update(from: arena, count: arenaCount)
            arena.deallocate()
            arena = grown
            arenaCapacity = capacity
        }
        if uniqueCount == entryCapacity {
            let capacity = entryCapacity * 2
            let grown = UnsafeMutablePointer<Entry>.allocate(capacity: capacity)
            grown.moveInitialize(from: entries, count: uniqueCount)
            entries.deallocate()
            entries = grown
            entryCapacity = capacity
        }
        let id = uniqueCount
        (arena + arenaCount).update(from: bytes, count: count)
        (entries + id).initialize(to: Entry(hash: hash, start: UInt32(arenaCount), length: UInt32(count), count: 0, lastSeen: -1))
        arenaCount += count
        uniqueCount += 1
        slots[slot] = Int32(id)
        if uniqueCount * 2 > slotCount { grow() }
        return id
    }

    private mutating func grow() {
        let size = slotCount * 2
        slots.deallocate()
        slots = .allocate(capacity: size)
        slots.initialize(repeating: -1, count: size)
        slotCount = size
        let mask = size - 1
        for id in 0..<uniqueCount {
            var slot = Int(truncatingIfNeeded: entries[id].hash) & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(id)
        }
    }

    func count(_ id: Int) -> Int { Int(entries[id].count) }

    func word(_ id: Int) -> String {
        let entry = entries[id]
        return String(decoding: UnsafeBufferPointer(start: arena + Int(entry.start), count: Int(entry.length)), as: UTF8.self)
    }

    /// Adds every word and count of `other` into this table.
    mutating func merge(_ other: WordTable) {
        for index in 0..<other.uniqueCount {
            let entry = other.entries[index]
            let mine = intern(other.arena + Int(entry.start), Int(entry.length), hash: entry.hash)
            entries[mine].count &+= entry.count
        }
    }

    /// The `limit` most frequent words; ties broken by the words' UTF-8 bytes (= code point order).
    func top(_ limit: Int) -> [(word: String, count: Int)] {
        guard limit > 0 else { return [] }
        func ranksBefore(_ a: Int, _ b: Int) -> Bool {
            let x = entries[a], y = entries[b]
            if x.count != y.count { return x.count > y.count }
            let order = memcmp(arena + Int(x.start), arena + Int(y.start), Int(min(x.length, y.length)))
            return order != 0 ? order < 0 : x.length < y.length
        }
        // Keep a small sorted window instead of sorting half a million ids.
        var best: [Int] = []
        best.reserveCapacity(limit + 1)
        for id in 0..<uniqueCount {
            if best.count == limit, !ranksBefore(id, best[limit - 1]) { continue }
            var position = best.count
            while position > 0 && ranksBefore(id, best[position - 1]) { position -= 1 }
            best.insert(id, at: position)
            if best.count > limit { best.removeLast() }
        }
        return best.map { (word($0), count($0)) }
    }
}

/// The distinct words of one caption at a time, by their 64-bit hashes only: enough to count
/// unique words per caption (two distinct words of one caption sharing a 64-bit hash is
/// vanishingly unlikely) without building a vocabulary. Slots are cleared lazily by stamping
/// each with the caption number that filled it.
struct CaptionWordSet: WordCounter {
    private var keys: [UInt64]
    private var stamps: [Int32]
    private var mask: Int
    private var filled = 0
    private var current: Int32 = -1

    init(capacity: Int = 512) {
        var size = 16
        while size < capacity { size <<= 1 }
        keys = Array(repeating: 0, count: size)
        stamps = Array(repeating: -1, count: size)
        mask = size - 1
    }

    @inline(__always)
    mutating func add(_ bytes: UnsafePointer<UInt8>, _ count: Int, hash: UInt64, caption: Int32) -> Bool {
        if caption != current {
            current = caption
            filled = 0
        }
        var slot = Int(truncatingIfNeeded: hash ^ (hash >> 32)) & mask
        while stamps[slot] == caption {
            if keys[slot] == hash { return false }
            slot = (slot + 1) & mask
        }
        stamps[slot] = caption
        keys[slot] = hash
        filled += 1
        if filled * 2 > keys.count { grow() }
        return true
    }

    private mutating func grow() {
        let oldKeys = keys, oldStamps = stamps
        let size = keys.count * 2
        keys = Array(repeating: 0, count: size)
        stamps = Array(repeating: -1, count: size)
        mask = size - 1
        for index in oldKeys.indices where oldStamps[index] == current {
            var slot = Int(truncatingIfNeeded: oldKeys[index] ^ (oldKeys[index] >> 32)) & mask
            while stamps[slot] == current { slot = (slot + 1) & mask }
            stamps[slot] = current
            keys[slot] = oldKeys[index]
        }
    }
}
