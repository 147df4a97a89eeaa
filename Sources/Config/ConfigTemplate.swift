/// Writes a configuration as a commented TOML file: every key, its meaning and what it allows.
public enum ConfigTemplate {
    public static func toml(_ config: WanLoRAConfig) -> String {
        var out = """
            # wanlora configuration (docs/config.md describes every key).
            # Start from a preset and change what differs: a key left out keeps the preset's value.
            preset = \(TOMLLiteral.string(config.preset.rawValue))

            """
        for section in ConfigKeys.sections {
            out += "\n[\(section)]\n"
            for key in ConfigKeys.all where key.section == section {
                out += "# \(key.summary) Allowed: \(key.allowed).\n"
                out += "\(key.name) = \(key.tomlValue(in: config))\n"
            }
        }
        return out
    }
}

/// The key tables of docs/config.md, written from the key registry and the presets so that the
/// documentation cannot drift from the code (a test compares them).
public enum ConfigDocumentation {
    /// One Markdown table per section: key, the value of each preset (″ = same as h100), what
    /// is allowed and what the key means.
    public static func keyTables() -> String {
        let presets: [Preset] = [.h100, .a100, .v100]
        let configs = presets.map { WanLoRAConfig.preset($0) }
        var out = ""
        for section in ConfigKeys.sections {
            out += "### [\(section)]\n\n"
            out += "| key | h100 (default) | a100 | v100 | allowed | meaning |\n|---|---|---|---|---|---|\n"
            for key in ConfigKeys.all where key.section == section {
                let values = configs.map { key.tomlValue(in: $0) }
                let cells = values.enumerated().map { index, value in
                    index > 0 && value == values[0] ? "″" : "`\(value)`"
                }
                out +=
                    "| `\(key.path)` | \(cells.joined(separator: " | ")) "
                    + "| \(escape(key.allowed)) | \(escape(key.summary)) |\n"
            }
            out += "\n"
        }
        return out
    }

    static func escape(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|") }
}
