/// Checks on raw UTF-8 bytes, without building a `String`.
public enum UTF8Bytes {
    /// True when the bytes are well-formed UTF-8 (Unicode §3.9, table 3-7: no overlong forms, no
    /// surrogates, nothing above U+10FFFF, no stray or missing continuation bytes) — exactly what
    /// `String(validating:as:)` accepts. ASCII goes 8 bytes at a time.
    public static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let count = bytes.count
        let raw = UnsafeRawPointer(base)
        var i = 0
        while i < count {
            let lead = base[i]
            if lead < 0x80 {
                i &+= 1
                while i &+ 8 <= count
                    && raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
                {
                    i &+= 8
                }
                continue
            }
            if lead & 0xF0 == 0xE0 {
                // Three bytes (Hangul, Han, most punctuation): the common case of a Korean caption.
                guard i &+ 2 < count else { return false }
                let second = base[i &+ 1]
                let third = base[i &+ 2]
                guard second & 0xC0 == 0x80, third & 0xC0 == 0x80 else { return false }
                if lead == 0xE0 && second < 0xA0 { return false }  // overlong
                if lead == 0xED && second > 0x9F { return false }  // surrogates U+D800–U+DFFF
                i &+= 3
                continue
            }
            if lead >= 0xC2 && lead <= 0xDF {
                guard i &+ 1 < count, base[i &+ 1] & 0xC0 == 0x80 else { return false }
                i &+= 2
                continue
            }
            if lead >= 0xF0 && lead <= 0xF4 {
                guard i &+ 3 < count else { return false }
                let second = base[i &+ 1]
                guard second & 0xC0 == 0x80, base[i &+ 2] & 0xC0 == 0x80, base[i &+ 3] & 0xC0 == 0x80 else {
                    return false
                }
                if lead == 0xF0 && second < 0x90 { return false }  // overlong
                if lead == 0xF4 && second > 0x8F { return false }  // above U+10FFFF
                i &+= 4
                continue
            }
            return false  // continuation byte without a lead, C0/C1 (overlong), F5–FF
        }
        return true
    }

    /// The Unicode White_Space property (the one set of it in the project: the caption statistics
    /// trim and split with it too).
    @inlinable
    public static func isWhiteSpace(_ scalar: UInt32) -> Bool {
        switch scalar {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: true
        default: false
        }
    }

    /// True when the (valid) UTF-8 bytes hold only White_Space scalars, or none: what
    /// `unicodeScalars.allSatisfy(\.properties.isWhitespace)` says of the string.
    public static func isBlank(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var i = 0
        while i < bytes.count {
            let lead = base[i]
            let scalar: UInt32
            let width: Int
            if lead < 0x80 {
                scalar = UInt32(lead)
                width = 1
            } else if lead < 0xE0 {
                scalar = (UInt32(lead & 0x1F) << 6) | UInt32(base[i + 1] & 0x3F)
                width = 2
            } else if lead < 0xF0 {
                scalar = (UInt32(lead & 0x0F) << 12) | (UInt32(base[i + 1] & 0x3F) << 6) | UInt32(base[i + 2] & 0x3F)
                width = 3
            } else {
                return false  // nothing above U+FFFF is White_Space
            }
            guard isWhiteSpace(scalar) else { return false }
            i += width
        }
        return true
    }
}
