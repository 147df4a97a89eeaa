/// A hash table from words (UTF-8 bytes) to dense ids, counts and a per-caption stamp.
///
/// Words are interned into one byte arena, so counting 18 million words allocates no `String`s;
/// the per-caption stamp gives each caption's unique-word count without a per-caption set.
/// Where the caption scanner counts words: it says whether a word is new in the current caption.
protocol WordCounter {
    mutating func add(_ word: UnsafeBufferPointer<UInt8>, hash: UInt64, caption: Int32, count: Int) -> Bool
}

struct WordTable: WordCounter {
    private(set) var arena: [UInt8] = []
    private(set) var starts: [Int] = []
    private(set) var lengths: [Int32] = []
    private var hashes: [UInt64] = []
    /// Occurrences of each word id.
    private(set) var counts: [Int] = []
    /// The caption number in which each id was last seen.
    private var lastSeen: [Int32] = []
    private var slots: [Int32]
    private var mask: Int

    init(capacity: Int = 1 << 16) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = Array(repeating: -1, count: size)
        mask = size - 1
    }

    var uniqueCount: Int { counts.count }

    @inline(__always)
    static func hash(_ word: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in word {
            h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return h ^ (h >> 29)
    }

    /// Counts one occurrence of `word` in caption number `caption`; returns true when it is the
    /// word's first occurrence in that caption.
    @inline(__always)
    mutating func add(_ word: UnsafeBufferPointer<UInt8>, caption: Int32, count: Int = 1) -> Bool {
        add(word, hash: Self.hash(word), caption: caption, count: count)
    }

    @inline(__always)
    mutating func add(_ word: UnsafeBufferPointer<UInt8>, hash: UInt64, caption: Int32) -> Bool {
        add(word, hash: hash, caption: caption, count: 1)
    }

    /// As `add(_:caption:count:)`, with the word's `hash(_:)` already computed.
    @inline(__always)
    mutating func add(_ word: UnsafeBufferPointer<UInt8>, hash: UInt64, caption: Int32, count: Int) -> Bool {
        let id = intern(word, hash: hash)
        counts[id] += count
        if lastSeen[id] != caption {
            lastSeen[id] = caption
            return true
        }
        return false
    }

    @inline(__always)
    private mutating func intern(_ word: UnsafeBufferPointer<UInt8>, hash: UInt64) -> Int {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let id = Int(slots[slot])
            if id < 0 { break }
            if hashes[id] == hash && Int(lengths[id]) == word.count && equals(id, word) { return id }
            slot = (slot + 1) & mask
        }
        let id = counts.count
        starts.append(arena.count)
        lengths.append(Int32(word.count))
        hashes.append(hash)
        arena.append(contentsOf: word)
        counts.append(0)
        lastSeen.append(-1)
        slots[slot] = Int32(id)
        if counts.count * 2 > slots.count { grow() }
        return id
    }

    @inline(__always)
    private func equals(_ id: Int, _ word: UnsafeBufferPointer<UInt8>) -> Bool {
        let start = starts[id]
        return arena.withUnsafeBufferPointer { stored in
            for offset in 0..<word.count where stored[start + offset] != word[offset] { return false }
            return true
        }
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = Array(repeating: -1, count: size)
        mask = size - 1
        for id in 0..<hashes.count {
            var slot = Int(truncatingIfNeeded: hashes[id]) & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(id)
        }
    }

    func word(_ id: Int) -> String {
        String(decoding: arena[starts[id]..<(starts[id] + Int(lengths[id]))], as: UTF8.self)
    }

    /// Adds every word and count of `other` into this table.
    mutating func merge(_ other: WordTable) {
        other.arena.withUnsafeBufferPointer { bytes in
            for id in 0..<other.counts.count {
                let word = UnsafeBufferPointer(rebasing: bytes[other.starts[id]..<(other.starts[id] + Int(other.lengths[id]))])
                let mine = intern(word, hash: other.hashes[id])
                counts[mine] += other.counts[id]
            }
        }
    }

    /// The `limit` most frequent words; ties broken by the words' UTF-8 bytes (= code point order).
    func top(_ limit: Int) -> [(word: String, count: Int)] {
        guard limit > 0 else { return [] }
        func less(_ a: Int, _ b: Int) -> Bool {  // true when a ranks before b
            if counts[a] != counts[b] { return counts[a] > counts[b] }
            let la = Int(lengths[a]), lb = Int(lengths[b])
            for offset in 0..<min(la, lb) {
                let x = arena[starts[a] + offset], y = arena[starts[b] + offset]
                if x != y { return x < y }
            }
            return la < lb
        }
        // Keep a small sorted window instead of sorting half a million ids.
        var best: [Int] = []
        best.reserveCapacity(limit + 1)
        for id in 0..<counts.count {
            if best.count == limit, !less(id, best[limit - 1]) { continue }
            var position = best.count
            while position > 0 && less(id, best[position - 1]) { position -= 1 }
            best.insert(id, at: position)
            if best.count > limit { best.removeLast() }
        }
        return best.map { (word($0), counts[$0]) }
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
    mutating func add(_ word: UnsafeBufferPointer<UInt8>, hash: UInt64, caption: Int32, count: Int) -> Bool {
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
