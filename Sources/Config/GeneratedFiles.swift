import Foundation

/// The files written from the registry rather than by hand: docs/config.md's key tables, the
/// engine's schema and the resolved-config fixtures the engine's tests read. `wanlora config
/// generate` (or `make generated`) writes them; a test fails when one differs from the registry.
public enum GeneratedFiles {
    public static let docs = "docs/config.md"
    public static let schema = "engine/wanlora_engine/config_schema.json"
    public static let demoFixture = "engine/tests/fixtures/config.resolved.demo.json"
    public static let v100Fixture = "engine/tests/fixtures/config.resolved.v100.json"
    static let tablesBegin = "<!-- key tables: begin -->\n"
    static let tablesEnd = "<!-- key tables: end -->"

    /// Each generated file's path (relative to the repository root) and the text it must hold.
    public static func expected(root: String) throws -> [(path: String, text: String)] {
        let docsText = try String(contentsOfFile: (root as NSString).appendingPathComponent(docs), encoding: .utf8)
        return [
            (docs, try docsWithTables(docsText)),
            (schema, schemaJSON()),
            (demoFixture, try demoResolved(root: root).formatted()),
            (v100Fixture, try v100Resolved().formatted()),
        ]
    }

    /// docs/config.md with the text between its key-table markers written from the registry.
    public static func docsWithTables(_ text: String) throws -> String {
        guard let begin = text.range(of: tablesBegin), let end = text.range(of: tablesEnd),
            begin.upperBound <= end.lowerBound
        else {
            throw ConfigError(
                kind: .unreadable, key: nil, problem: "\(docs) lacks the key-table markers.",
                remedy: "Put the lines \(tablesBegin.dropLast()) and \(tablesEnd) where the tables go.")
        }
        return String(text[..<begin.upperBound]) + ConfigDocumentation.keyTables() + String(text[end.lowerBound...])
    }

    /// The engine's schema: per section, each key's type (and choices), in file order as arrays so
    /// that the order survives any JSON reader.
    public static func schemaJSON() -> String {
        var out = "{\n  \"schema_version\": \(ResolvedConfig.schemaVersion),\n"
        out += "  \"preset\": \(json(.table(Preset.schemaType))),\n"
        out += "  \"constants\": \(EngineConstants.schemaJSON),\n"
        out += "  \"sections\": {\n"
        out += ConfigKeys.sections.map { section in
            let keys = ConfigKeys.all.filter { $0.section == section }.map { entry in
                var type = entry.key.schemaType
                type["name"] = .string(entry.name)
                return "      " + json(.table(type))
            }
            return "    \"\(section)\": [\n" + keys.joined(separator: ",\n") + "\n    ]"
        }.joined(separator: ",\n")
        return out + "\n  }\n}\n"
    }

    /// configs/demo.toml resolved, paths as written (relative to the file's folder).
    public static func demoResolved(root: String) throws -> ResolvedConfig {
        let file = (root as NSString).appendingPathComponent("configs/demo.toml")
        let config = try ConfigLoader.load(file: file)
        return try ResolvedConfig(
            resolving: config, runName: ResolvedConfig.defaultRunName(config: config, configFile: file))
    }

    /// The V100 preset of SPEC §6 with only the model folder given, in a file /data/mbc-v100.toml.
    public static func v100Resolved() throws -> ResolvedConfig {
        let file = "/data/mbc-v100.toml"
        let config = try ConfigLoader.parse(
            toml: """
                preset = "v100"
                [model]
                checkpoint = "/models/Wan2.2-T2V-A14B"
                """, source: file)
        let name = ResolvedConfig.defaultRunName(config: config, configFile: file)
        return try ResolvedConfig(resolving: config, runName: name).anchored(at: "/data")
    }

    /// One line of JSON, keys sorted.
    static func json(_ value: ConfigValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }
}
