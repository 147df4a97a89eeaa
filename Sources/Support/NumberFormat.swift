/// Number formatting for people: thousands separators, fixed decimals, percentages.
/// Locale-independent so that reports are identical on every machine.
public enum NumberFormat {
    /// `1234567` → `1,234,567`.
    public static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return value < 0 ? "-" + out : out
    }

    /// Fixed decimals with grouping of the integer part: `2383.654` → `2,383.65`.
    public static func decimal(_ value: Double, _ places: Int = 2) -> String {
        guard value.isFinite else { return value.isNaN ? "NaN" : (value > 0 ? "∞" : "-∞") }
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let rounded = (value.magnitude * scale).rounded()
        let integer = Int(rounded / scale)
        let fraction = Int(rounded - Double(integer) * scale)
        var text = grouped(integer)
        if places > 0 {
            var fractionText = String(fraction)
            while fractionText.count < places { fractionText = "0" + fractionText }
            text += "." + fractionText
        }
        return (value < 0 && rounded > 0 ? "-" : "") + text
    }

    /// A share in 0…1 as a percentage: `0.9381` → `93.81%`.
    public static func percent(_ share: Double, _ places: Int = 2) -> String {
        decimal(share * 100, places) + "%"
    }

    /// Optional values print as an em dash when absent.
    public static func decimal(_ value: Double?, _ places: Int = 2) -> String {
        value.map { decimal($0, places) } ?? "—"
    }
}
