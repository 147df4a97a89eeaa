/// An exact ratio such as a frame rate (`30000/1001`) or an aspect ratio (`16:9`), kept as
/// integers because broadcast rates are not representable as binary fractions and a rate
/// compared through `Double` would call 29.97 fps "variable".
public struct Rational: Hashable, Sendable, Codable, CustomStringConvertible {
    public var numerator: Int
    public var denominator: Int

    /// A ratio in lowest terms with a positive denominator; `denominator` must not be 0.
    public init(_ numerator: Int, _ denominator: Int) {
        precondition(denominator != 0, "a ratio needs a non-zero denominator")
        let divisor = Rational.gcd(abs(numerator), abs(denominator))
        let sign = denominator < 0 ? -1 : 1
        self.numerator = sign * numerator / max(divisor, 1)
        self.denominator = sign * denominator / max(divisor, 1)
    }

    /// Parses `30000/1001`, `16:9` or a whole number `25`. ffprobe writes `0/0` or `0:1` for
    /// "unknown": those give `nil`, as does any zero or negative part.
    public init?(parsing text: some StringProtocol) {
        let trimmed = String(text).trimmingCharacters(in: [" "])
        if let whole = Int(trimmed) {
            guard whole > 0 else { return nil }
            self.init(whole, 1)
            return
        }
        guard let separator = trimmed.firstIndex(where: { $0 == "/" || $0 == ":" }),
            let numerator = Int(trimmed[..<separator]),
            let denominator = Int(trimmed[trimmed.index(after: separator)...]),
            numerator > 0, denominator > 0
        else { return nil }
        self.init(numerator, denominator)
    }

    public var value: Double { Double(numerator) / Double(denominator) }

    /// `30000/1001`, the way ffmpeg writes rates.
    public var description: String { "\(numerator)/\(denominator)" }
    /// `16:9`, the way aspect ratios are written.
    public var aspectDescription: String { "\(numerator):\(denominator)" }

    public static let one = Rational(1, 1)

    static func gcd(_ a: Int, _ b: Int) -> Int {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        guard let first = firstIndex(where: { !set.contains($0) }) else { return "" }
        let last = lastIndex(where: { !set.contains($0) })!
        return String(self[first...last])
    }
}
