/// A 128-bit fingerprint of a byte string: two 64-bit hashes computed in one pass, with different
/// multipliers and mixing (the analyze word table keys words by both; the manifest reader's
/// duplicate-path check uses the primary). Not cryptographic.
public struct ByteFingerprint: Hashable, Sendable {
    public var primary: UInt64
    public var secondary: UInt64

    @inlinable
    public init(primary: UInt64, secondary: UInt64) {
        self.primary = primary
        self.secondary = secondary
    }

    /// Two 64-bit hashes in one pass reading 8 bytes at a time (multiply–xorshift and
    /// multiply–rotate rounds, then murmur3 finalisers with different constants). The last partial
    /// block is read with overlapping loads inside the word, not byte by byte: for a given length
    /// they still determine every byte (8+: the word's last 8 bytes; 4–7: its first and last 4;
    /// 1–3: its first, middle and last byte), and the length is mixed into both seeds.
    @inlinable @inline(__always)
    public init(_ bytes: UnsafePointer<UInt8>, _ count: Int) {
        let raw = UnsafeRawPointer(bytes)
        var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ (UInt64(count) &* 0x9E37_79B9_7F4A_7C15)
        var g: UInt64 = 0x1319_8A2E_0370_7344 ^ (UInt64(count) &* 0xC2B2_AE3D_27D4_EB4F)
        var offset = 0
        while offset + 8 <= count {
            let word = raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            h = (h ^ word) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 29
            g = (g &+ word) &* 0xD6E8_FEB8_6659_FD93
            g = (g << 31) | (g >> 33)
            offset += 8
        }
        if offset < count {
            let tail: UInt64
            if count >= 8 {
                tail = raw.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
            } else if count >= 4 {
                tail =
                    UInt64(raw.loadUnaligned(as: UInt32.self))
                    | UInt64(raw.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self)) << 32
            } else {
                tail = UInt64(bytes[0]) | UInt64(bytes[count >> 1]) << 8 | UInt64(bytes[count - 1]) << 16
            }
            h = (h ^ tail) &* 0x9E37_79B9_7F4A_7C15
            g = (g &+ tail) &* 0xD6E8_FEB8_6659_FD93
        }
        h ^= h >> 33
        h &*= 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h &*= 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        g ^= g >> 30
        g &*= 0xBF58_476D_1CE4_E5B9
        g ^= g >> 27
        g &*= 0x94D0_49BB_1331_11EB
        g ^= g >> 31
        primary = h
        secondary = g
    }

}
