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
