/// Text put into HTML (the reports, the sample gallery, the evaluation page, the run page, SVG charts).
public enum HTMLText {
    /// The font families of every page and chart: the system's interface font for Latin text, then fonts with
    /// Hangul, so Korean captions and categories render on a stock machine (Debian's fonts-noto-cjk, macOS,
    /// Windows, Naver's Nanum fonts) instead of empty boxes. Names in single quotes: the list goes into CSS
    /// and into SVG's double-quoted `font-family` attribute alike.
    public static let fontFamily =
        "system-ui, -apple-system, 'Noto Sans CJK KR', 'Noto Sans KR', 'Apple SD Gothic Neo', 'Malgun Gothic', "
        + "NanumGothic, sans-serif"

    /// `&`, `<`, `>`, `"` and `'` as character references: safe in element content and in quoted
    /// attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// `text` escaped, with Markdown code spans (`` `wanlora prepare` ``) as `<code>` elements: findings and
    /// messages are written once, for the terminal and Markdown, and shown without their backticks here.
    /// A backtick without a partner stays as it is.
    public static func inline(_ text: String) -> String {
        let parts = text.split(separator: "`", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return escape(text) }
        var out = ""
        for (index, part) in parts.enumerated() {
            let inCode = index % 2 == 1
            if inCode && index == parts.count - 1 {
                out += "`" + escape(String(part))  // unpaired: the last backtick opens nothing
            } else if inCode {
                out += "<code>" + escape(String(part)) + "</code>"
            } else {
                out += escape(String(part))
            }
        }
        return out
    }
}
