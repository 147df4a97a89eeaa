import Foundation
import Testing
@testable import Config

@Suite struct ResolvedConfigTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func object(_ data: Data) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func snakeCaseSectionsAndDerivedValues() throws {
        let resolved = ResolvedConfig(.preset(.v100), source: "preset v100", baseDir: "/work/run")
        let json = try object(try resolved.jsonData())
        #expect(Set(json.keys) == ["schema_version", "source", "base_dir", "preset", "data", "model", "lora", "training", "hardware", "sample", "eval", "derived"])
        #expect(json["schema_version"] as? Int == 1)
        let training = try #require(json["training"] as? [String: Any])
        #expect(training["grad_accumulation"] as? Int == 16)
        #expect(training["text_length"] as? Int == 256)
        #expect(training["width"] as? Int == 1280 && training["height"] as? Int == 720)
        #expect(training["learning_rate"] as? Double == 1e-4)
        #expect(training["optimizer"] as? String == "adamw8bit")
        #expect(training["gradient_checkpointing"] as? Bool == true)
        let hardware = try #require(json["hardware"] as? [String: Any])
        #expect(hardware["ulysses_degree"] as? Int == 2 && hardware["gpus_per_node"] as? Int == 2)
        #expect(hardware["inactive_expert"] as? String == "offload")
        let derived = try #require(json["derived"] as? [String: Any])
        // Ulysses 2 on 2 GPUs: one data-parallel group, so the report's batch of 32 is really 16.
        #expect(derived["world_size"] as? Int == 2)
        #expect(derived["data_parallel_size"] as? Int == 1)
        #expect(derived["effective_batch"] as? Int == 16)
        #expect(derived["lora_scale"] as? Double == 1.0)
        let model = try #require(json["model"] as? [String: Any])
        #expect(model["architecture"] as? String == "Wan2.2-T2V-A14B")
        #expect(model["boundary"] as? Double == 0.875)
    }

    @Test func stableOutputAndRoundTrip() throws {
        for preset in Preset.allCases {
            let resolved = ResolvedConfig(.preset(preset), source: "preset \(preset.rawValue)", baseDir: "/tmp")
            let a = try resolved.jsonData(), b = try resolved.jsonData()
            #expect(a == b)
            let text = String(decoding: a, as: UTF8.self)
            #expect(text.hasSuffix("}\n"))
            // Keys sorted: "data" comes before "derived" before "eval".
            let positions = ["\"data\"", "\"derived\"", "\"eval\"", "\"hardware\""].map { text.range(of: $0)!.lowerBound }
            #expect(positions == positions.sorted())
            let back = try ResolvedConfig.decode(a)
            #expect(back == resolved)
            #expect(back.config == .preset(preset))
        }
    }

    /// The committed fixture the engine's tests read too: Swift must write exactly it.
    @Test func matchesTheContractFixture() throws {
        let url = Self.repoRoot.appendingPathComponent("fixtures/contract/config.resolved.v100.json")
        let fixture = try Data(contentsOf: url)
        let written = try ResolvedConfig(.preset(.v100), source: "preset v100", baseDir: "/data/wanlora").jsonData()
        #expect(String(decoding: written, as: UTF8.self) == String(decoding: fixture, as: UTF8.self),
                "regenerate with: wanlora config show --preset v100 --json (base_dir /data/wanlora) after changing the schema on purpose")
    }

    @Test func otherSchemaVersionsAreRefused() throws {
        var resolved = ResolvedConfig(.preset(.h100), source: "x", baseDir: "/")
        resolved.schemaVersion = 99
        let data = try resolved.jsonData()
        let error = try #require(throws: ConfigError.self) { try ResolvedConfig.decode(data) }
        #expect(error.key == "schema_version" && error.problem.contains("99"))
        #expect(throws: ConfigError.self) { try ResolvedConfig.decode(Data("{}".utf8)) }
    }

    /// docs/config.md documents every key of the file and of the resolved JSON.
    @Test func docsDescribeEveryKey() throws {
        let docs = try String(contentsOf: Self.repoRoot.appendingPathComponent("docs/config.md"), encoding: .utf8)
        for key in ConfigKeys.all {
            #expect(docs.contains("`\(key.path)`"), "docs/config.md lacks `\(key.path)`")
        }
        for derived in ["world_size", "data_parallel_size", "effective_batch", "lora_scale", "schema_version", "base_dir"] {
            #expect(docs.contains("`\(derived)`"), "docs/config.md lacks `\(derived)`")
        }
    }
}
