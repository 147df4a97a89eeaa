import CPUHints
import Support

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A word's 128-bit fingerprint (`Support.ByteFingerprint` of its UTF-8 bytes). `WordTable` identifies
/// words by it (see there).
typealias WordFingerprint = ByteFingerprint

/// Where the caption scanner counts words: it says whether a word is new in the current caption.
protocol WordCounter {
    mutating func add(_ bytes: UnsafePointer<UInt8>, _ count: Int, fingerprint: WordFingerprint, caption: Int32) -> Bool
    /// Starts loading the memory that `add` will touch for this word (a hint; changes nothing).
    func prefetch(_ fingerprint: WordFingerprint)
}

extension WordCounter {
    func prefetch(_ fingerprint: WordFingerprint) {}
}

/// A hash table from words (UTF-8 bytes) to counts and a per-caption stamp.
///
/// Counting 20 million words of half a million distinct ones is the innermost loop of `analyze`,
/// and its cost is memory latency, not arithmetic: a table of slots pointing into entries pointing
/// into a byte arena costs three dependent cache misses per word. Here a word is identified by its
/// 128-bit fingerprint (`WordFingerprint`: two 64-bit hashes, its byte length mixed into both), and
/// everything a lookup needs (fingerprint, length, count, last caption, where its bytes are) sits in
/// one 32-byte bucket, two to a cache line: one miss per rare word, none for frequent ones. The
/// bytes are kept in an arena only to name the top words. Two distinct words of a vocabulary of n
/// words share a fingerprint with probability about n²/2¹²⁹ (10⁻²⁶ for a million words, far below
/// the rate of memory errors), which is the only way this count could differ from an exact one.
///
/// The per-caption stamp gives each caption's unique-word count without a per-caption set. Storage
/// is manual; one table belongs to one worker, which calls `release()` when done.
struct WordTable: WordCounter, @unchecked Sendable {
    struct Bucket {
        var primary: UInt64
        var secondary: UInt64
        var count: UInt32
        /// The caption number in which the word was last seen.
        var lastSeen: Int32
        /// Where the word's bytes start in the arena.
        var start: UInt32
        /// Byte length; 0 marks an empty bucket (words are never empty).
        var length: UInt32
    }

    private var arena: UnsafeMutablePointer<UInt8>
    private var arenaCount = 0
    private var arenaCapacity: Int
    private var buckets: UnsafeMutablePointer<Bucket>
    private var bucketCount: Int
    private(set) var uniqueCount = 0

    init(capacity: Int = 1 << 16) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        bucketCount = size
        buckets = Self.emptyBuckets(size)
        arenaCapacity = max(256, capacity * 8)
        arena = .allocate(capacity: arenaCapacity)
    }

    /// Bucket arrays of at least this many bytes come from the system as huge pages where it has them.
    private static let hugePageBytes = 2 << 20

    /// `count` zeroed buckets. A large table is mapped straight from the system (zeroed already) and
    /// asks for 2 MiB pages: its lookups land anywhere in tens of MiB, and with 4 KiB pages nearly
    /// every one would also miss the address-translation cache.
    private static func emptyBuckets(_ count: Int) -> UnsafeMutablePointer<Bucket> {
        let bytes = count * MemoryLayout<Bucket>.stride
        if bytes >= hugePageBytes,
            let memory = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            memory != MAP_FAILED
        {
            #if canImport(Glibc)
                _ = madvise(memory, bytes, Int32(MADV_HUGEPAGE))
            #endif
            return memory.bindMemory(to: Bucket.self, capacity: count)
        }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        return memory.bindMemory(to: Bucket.self, capacity: count)
    }

    private static func freeBuckets(_ buckets: UnsafeMutablePointer<Bucket>, count: Int) {
        let bytes = count * MemoryLayout<Bucket>.stride
        if bytes >= hugePageBytes {
            munmap(UnsafeMutableRawPointer(buckets), bytes)
        } else {
            UnsafeMutableRawPointer(buckets).deallocate()
        }
    }

    /// Frees the storage; the table must not be used afterwards.
    func release() {
        Self.freeBuckets(buckets, count: bucketCount)
        arena.deallocate()
    }

    /// The 64-bit hash of `fingerprint(_:_:)` (its primary half).
    @inline(__always)
    static func hash(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> UInt64 {
        fingerprint(bytes, count).primary
    }

    @inline(__always)
    static func fingerprint(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> WordFingerprint {
        ByteFingerprint(bytes, count)
    }

    /// Counts one occurrence of the word in caption number `caption`; returns true when it is the
    /// word's first occurrence in that caption.
    @inline(__always)
    mutating func add(_ bytes: UnsafePointer<UInt8>, _ count: Int, caption: Int32) -> Bool {
        add(bytes, count, fingerprint: Self.fingerprint(bytes, count), caption: caption)
    }

    /// As `add(_:_:caption:)`, with the word's `fingerprint(_:_:)` already computed.
    @inline(__always)
    mutating func add(_ bytes: UnsafePointer<UInt8>, _ count: Int, fingerprint: WordFingerprint, caption: Int32) -> Bool
    {
        let bucket = find(fingerprint, length: count) ?? insert(bytes, count, fingerprint: fingerprint)
        bucket.pointee.count &+= 1
        if bucket.pointee.lastSeen != caption {
            bucket.pointee.lastSeen = caption
            return true
        }
        return false
    }

    @inline(__always)
    func prefetch(_ fingerprint: WordFingerprint) {
        wanlora_prefetch_for_write(buckets + (Int(truncatingIfNeeded: fingerprint.primary) & (bucketCount - 1)))
    }

    /// The word's bucket, or nil when it is not in the table yet.
    @inline(__always)
    private func find(_ fingerprint: WordFingerprint, length: Int) -> UnsafeMutablePointer<Bucket>? {
        let mask = bucketCount - 1
        var slot = Int(truncatingIfNeeded: fingerprint.primary) & mask
        while true {
            let bucket = buckets + slot
            if bucket.pointee.length == 0 { return nil }
            if bucket.pointee.primary == fingerprint.primary && bucket.pointee.secondary == fingerprint.secondary
                && Int(bucket.pointee.length) == length
            {
                return bucket
            }
            slot = (slot + 1) & mask
        }
    }

    private mutating func insert(_ bytes: UnsafePointer<UInt8>, _ count: Int, fingerprint: WordFingerprint)
        -> UnsafeMutablePointer<Bucket>
    {
        if (uniqueCount + 1) * 4 > bucketCount * 3 { grow() }  // load factor at most 3/4
        if arenaCount + count > arenaCapacity {
            var capacity = arenaCapacity * 2
            while arenaCount + count > capacity { capacity *= 2 }
            let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
            grown.update(from: arena, count: arenaCount)
            arena.deallocate()
            arena = grown
            arenaCapacity = capacity
        }
        (arena + arenaCount).update(from: bytes, count: count)
        let mask = bucketCount - 1
        var slot = Int(truncatingIfNeeded: fingerprint.primary) & mask
        while buckets[slot].length != 0 { slot = (slot + 1) & mask }
        buckets[slot] = Bucket(
            primary: fingerprint.primary, secondary: fingerprint.secondary, count: 0, lastSeen: -1,
            start: UInt32(arenaCount), length: UInt32(count))
        arenaCount += count
        uniqueCount += 1
        return buckets + slot
    }

    private mutating func grow() {
        let old = buckets
        let oldCount = bucketCount
        bucketCount *= 2
        buckets = Self.emptyBuckets(bucketCount)
        let mask = bucketCount - 1
        for index in 0..<oldCount where old[index].length != 0 {
            var slot = Int(truncatingIfNeeded: old[index].primary) & mask
            while buckets[slot].length != 0 { slot = (slot + 1) & mask }
            buckets[slot] = old[index]
        }
        Self.freeBuckets(old, count: oldCount)
    }

    private func word(_ bucket: Bucket) -> String {
        String(
            decoding: UnsafeBufferPointer(start: arena + Int(bucket.start), count: Int(bucket.length)), as: UTF8.self)
    }

    /// Adds every word and count of `other` into this table.
    mutating func merge(_ other: WordTable) {
        for index in 0..<other.bucketCount where other.buckets[index].length != 0 {
            let theirs = other.buckets[index]
            let fingerprint = WordFingerprint(primary: theirs.primary, secondary: theirs.secondary)
            let mine =
                find(fingerprint, length: Int(theirs.length))
                ?? insert(other.arena + Int(theirs.start), Int(theirs.length), fingerprint: fingerprint)
            mine.pointee.count &+= theirs.count
        }
    }

    /// The `limit` most frequent words; ties broken by the words' UTF-8 bytes (= code point order).
    func top(_ limit: Int) -> [(word: String, count: Int)] {
        guard limit > 0 else { return [] }
        func ranksBefore(_ x: Bucket, _ y: Bucket) -> Bool {
            if x.count != y.count { return x.count > y.count }
            let order = memcmp(arena + Int(x.start), arena + Int(y.start), Int(min(x.length, y.length)))
            return order != 0 ? order < 0 : x.length < y.length
        }
        // Keep a small sorted window instead of sorting half a million words.
        var best: [Bucket] = []
        best.reserveCapacity(limit + 1)
        for index in 0..<bucketCount where buckets[index].length != 0 {
            let candidate = buckets[index]
            if best.count == limit, !ranksBefore(candidate, best[limit - 1]) { continue }
            var position = best.count
            while position > 0 && ranksBefore(candidate, best[position - 1]) { position -= 1 }
            best.insert(candidate, at: position)
            if best.count > limit { best.removeLast() }
        }
        return best.map { (word($0), Int($0.count)) }
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
    mutating func add(_ bytes: UnsafePointer<UInt8>, _ count: Int, fingerprint: WordFingerprint, caption: Int32) -> Bool
    {
        let hash = fingerprint.primary
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
        let oldKeys = keys
        let oldStamps = stamps
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
