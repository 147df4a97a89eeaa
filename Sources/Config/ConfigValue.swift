/// A value read from a TOML file, copied out of the parser into a plain value.
public indirect enum ConfigValue: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([ConfigValue])
    /// Key order as the parser gives it (sorted).
    case table([String: ConfigValue])
    /// Dates and times: TOML has them, wanlora uses none.
    case dateOrTime(String)

    /// The TOML name of this value's type, for error messages.
    public var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a floating-point number"
        case .boolean: "a boolean"
        case .array: "an array"
        case .table: "a table"
        case .dateOrTime: "a date/time"
        }
    }

    /// The value as it would be written in TOML, for error messages.
    public var literal: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .integer(let i): String(i)
        case .float(let d): TOMLLiteral.number(d)
        case .boolean(let b): b ? "true" : "false"
        case .array(let items): "[" + items.map(\.literal).joined(separator: ", ") + "]"
        case .table(let t): "{" + t.keys.sorted().map { "\($0) = \(t[$0]!.literal)" }.joined(separator: ", ") + "}"
        case .dateOrTime(let s): s
        }
    }
}

/// TOML spellings of Swift values (used by error messages, the template writer and docs).
public enum TOMLLiteral {
    /// A float written so that TOML reads it back as a float: 1e-4 as "1e-4", 16 as "16.0".
    public static func number(_ value: Double) -> String {
        if value != 0, abs(value) < 1e-3 {
            // 0.0001 reads better as 1e-4; Swift writes "0.0001", so build the exponent form.
            var exponent = 0
            var mantissa = value
            while abs(mantissa) < 1 {
                mantissa *= 10
                exponent -= 1
            }
            let rounded = (mantissa * 1e6).rounded() / 1e6
            let m = rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
            return "\(m)e\(exponent)"
        }
        if value == value.rounded(), abs(value) < 1e15 { return String(format1(value)) }
        return String(value)
    }

    private static func format1(_ value: Double) -> String { "\(Int(value)).0" }

    public static func string(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    public static func stringArray(_ values: [String]) -> String {
        "[" + values.map(string).joined(separator: ", ") + "]"
    }
}
