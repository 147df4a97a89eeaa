import Foundation
import Support
import Testing
@testable import Config

/// config.resolved.json is the engine contract's format; these tests read the same fixture files
/// as the engine's own tests (engine/tests/fixtures/).
@Suite struct ResolvedConfigTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = repoRoot.appendingPathComponent("engine/tests/fixtures")

    func fixture(_ name: String) throws -> JSONValue {
        let text = try String(contentsOf: Self.fixtures.appendingPathComponent(name), encoding: .utf8)
        return try JSONValue.parse(text)
    }

    /// The V100 preset of SPEC §6, with only the model folder given, in a file /data/mbc-v100.toml:
    /// every other value (paths included) is a default.
    @Test func v100PresetResolvesToTheEngineFixture() throws {
        let file = "/data/mbc-v100.toml"
        let config = try ConfigLoader.parse(toml: """
        preset = "v100"
        [model]
        checkpoint = "/models/Wan2.2-T2V-A14B"
        """, source: file)
        let name = ResolvedConfig.defaultRunName(config: config, configFile: file)
        #expect(name == "mbc-v100")
        let resolved = try ResolvedConfig(resolving: config, runName: name).anchored(at: "/data")
        let expected = try fixture("config.resolved.v100.json")
        #expect(resolved.json() == expected, "\(resolved.formatted())")
        // And the fixture reads back into the same value.
        #expect(try ResolvedConfig(json: expected) == resolved)
    }

    @Test func demoTomlResolvesToTheDemoFixture() throws {
        let file = Self.repoRoot.appendingPathComponent("configs/demo.toml").path
        let config = try ConfigLoader.load(file: file)
        let resolved = try ResolvedConfig(resolving: config, runName: ResolvedConfig.defaultRunName(config: config, configFile: file))
        let expected = try fixture("config.resolved.demo.json")
        #expect(resolved.json() == expected, "\(resolved.formatted())")
        // Relative paths stay relative to the TOML file's folder until anchored there.
        #expect(resolved.run.dir == "runs/demo" && resolved.model.path == "model")
        let anchored = resolved.anchored(at: "/work/demo")
        #expect(anchored.run.dir == "/work/demo/runs/demo")
        #expect(anchored.data.trainManifest == "/work/demo/data/train.csv")
        #expect(anchored.data.cacheDir == "/work/demo/cache")
        #expect(anchored.model.path == "/work/demo/model")
    }

    /// Every config.invalid.* fixture is refused, naming the key the engine's test expects.
    @Test func invalidFixturesAreRefusedNamingTheKey() throws {
        guard case .object(let cases) = try fixture("config.invalid.cases.json") else {
            Issue.record("config.invalid.cases.json is not an object")
            return
        }
        #expect(cases.count == 6)
        for member in cases {
            guard case .string(let key) = member.value else { continue }
            let path = Self.fixtures.appendingPathComponent(member.key).path
            let error = try #require(throws: ConfigError.self, "\(member.key)") { try ResolvedConfig.read(file: path) }
            #expect(error.key == key, "\(member.key): \(error)")
            #expect(error.problem.contains(key), "\(member.key): \(error.problem)")
            #expect(!error.remedy.isEmpty)
        }
    }

    @Test func writtenFileReadsBackForEveryPreset() throws {
        for preset in Preset.allCases {
            var config = WanLoRAConfig.preset(preset)
            config.model.checkpoint = "/models/wan"
            if preset == .v100 { config.training.mixedPrecision = .fp32 }
            let resolved = try ResolvedConfig(resolving: config, runName: preset.rawValue).anchored(at: "/work/project")
            let text = resolved.formatted()
            #expect(text.hasSuffix("}\n") && text.hasPrefix("{\n  \"schema_version\": 1,\n  \"run\": {"))
            #expect(try ResolvedConfig(json: try JSONValue.parse(text)) == resolved)
            #expect(resolved.formatted() == text)  // the same input gives the same bytes
        }
    }

    @Test func tomlValuesMapOntoTheEngineKeys() throws {
        var c = WanLoRAConfig.preset(.h100)
        c.model.checkpoint = "weights/wan"
        c.training.expert = .low
        c.training.maxSteps = 0
        c.training.overfitSamples = 100
        c.data.valManifest = ""
        c.data.weightColumn = ""
        c.hardware.inactiveExpert = .offload
        c.training.frames = 49
        c.training.width = 832
        c.training.height = 480
        c.training.textLength = 256
        c.cache.freeDiskMarginGiB = 0.5
        c.run.runsDir = "../runs"
        let r = try ResolvedConfig(resolving: c, runName: "x")
        #expect(r.lora.experts == [.low])
        #expect(r.train.maxSteps == nil && r.train.overfitSamples == 100)
        #expect(r.data.valManifest == nil && r.data.weightColumn == nil && r.data.categoryColumn == "category")
        #expect(r.model.inactiveExpertDevice == .cpu)
        #expect(r.data.cacheDir == "cache/832x480-49f-256t")
        #expect(r.cache.freeDiskMarginBytes == 536_870_912)
        #expect(r.model.dtype == .bfloat16 && r.train.mixedPrecision == .bf16)
        #expect(r.train.optimizer.name == .adamw && r.train.gradAccum == 8)  // the h100 preset
        let json = r.json()
        #expect(json["data"]?["val_manifest"] == .null && json["train"]?["max_steps"] == .null)
        let anchored = r.anchored(at: "/work/project/configs")
        #expect(anchored.run.dir == "/work/project/runs/x")
        #expect(anchored.model.path == "/work/project/configs/weights/wan")
    }

    @Test func whatTheEngineCannotDoIsRefusedNamingTheTomlKey() throws {
        var c = WanLoRAConfig.preset(.v100)
        let missing = try #require(throws: ConfigError.self) { try ResolvedConfig(resolving: c, runName: "r") }
        #expect(missing.key == "model.checkpoint" && missing.kind == .missingKey)
        c.model.checkpoint = "/m"
        // fp8 is the host format of streamed blocks: the GPU computes on bf16 weights.
        c.model.weightsDtype = .fp8
        let fp8 = try ResolvedConfig(resolving: c, runName: "r")
        #expect(fp8.model.dtype == .bfloat16 && fp8.model.hostWeightsDtype == .float8E4M3FN)
        #expect(fp8.json()["model"]?["host_weights_dtype"] == .string("float8_e4m3fn"))
        c.model.weightsDtype = .bf16
        #expect(try ResolvedConfig(resolving: c, runName: "r").model.hostWeightsDtype == .bfloat16)
        c.training.mixedPrecision = .fp16
        let fp16 = try #require(throws: ConfigError.self) { try ResolvedConfig(resolving: c, runName: "r") }
        #expect(fp16.key == "training.mixed_precision" && fp16.remedy.contains("fp32"))
    }

    @Test func readingIsAsStrictAsTheEngine() throws {
        let base = try fixture("config.resolved.v100.json")
        func replacing(_ section: String, _ key: String, with value: JSONValue) -> JSONValue {
            guard case .object(var top) = base, let i = top.firstIndex(where: { $0.key == section }),
                  case .object(var inner) = top[i].value, let j = inner.firstIndex(where: { $0.key == key }) else { return base }
            inner[j].value = value
            top[i].value = .object(inner)
            return .object(top)
        }
        let cases: [(JSONValue, String)] = [
            (replacing("lora", "rank", with: .bool(true)), "lora.rank"),        // a boolean is not an integer
            (replacing("lora", "rank", with: .double(16.5)), "lora.rank"),
            (replacing("train", "cfg_dropout", with: .double(1.0)), "train.cfg_dropout"),
            (replacing("data", "width", with: .int(840)), "data.width"),
            (replacing("data", "val_manifest", with: .string("")), "data.val_manifest"),
            (replacing("model", "dtype", with: .string("bf16")), "model.dtype"),
            (replacing("eval", "timesteps", with: .array([.int(100), .int(1000)])), "eval.timesteps"),
            (replacing("train", "max_steps", with: .int(0)), "train.max_steps"),
            (replacing("lora", "experts", with: .array([])), "lora.experts"),
        ]
        for (value, key) in cases {
            let error = try #require(throws: ConfigError.self, "\(key)") { try ResolvedConfig(json: value) }
            #expect(error.key == key, "\(error)")
        }
        // An integer where a float belongs is fine (alpha 16), as in Python.
        let alpha = try ResolvedConfig(json: replacing("lora", "alpha", with: .int(32)))
        #expect(alpha.lora.alpha == 32)
        // Not JSON at all, with where.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wanlora-resolved-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("config.resolved.json")
        try Data("{\"schema_version\": 1,\n \"run\": NaN}".utf8).write(to: bad)
        let syntax = try #require(throws: ConfigError.self) { try ResolvedConfig.read(file: bad.path) }
        #expect(syntax.kind == .syntax && syntax.problem.contains("line 2"))
    }

    @Test func runNames() throws {
        let c = WanLoRAConfig.preset(.a100)
        #expect(ResolvedConfig.defaultRunName(config: c, configFile: "configs/my-run.toml") == "my-run")
        #expect(ResolvedConfig.defaultRunName(config: c, configFile: nil) == "a100")
        var named = c
        named.run.name = "exp-7"
        #expect(ResolvedConfig.defaultRunName(config: named, configFile: "x.toml") == "exp-7")
        for bad in ["a/b", ".hidden", "two words"] {
            let error = try #require(throws: ConfigError.self) { try ConfigLoader.parse(toml: "[run]\nname = \"\(bad)\"") }
            #expect(error.key == "run.name")
        }
    }

    @Test func pathNormalisation() {
        #expect(ResolvedConfig.normalise("/a/./b/../c//d") == "/a/c/d")
        #expect(ResolvedConfig.normalise("/../x") == "/x")
        #expect(ResolvedConfig.normalise("a/../../b") == "../b")
    }

    /// The format is documented once, in docs/engine-contract.md: every key of the file appears
    /// there with the TOML key it comes from; docs/config.md documents every TOML key and links to it.
    @Test func docsDescribeEveryKey() throws {
        let contract = try String(contentsOf: Self.repoRoot.appendingPathComponent("docs/engine-contract.md"), encoding: .utf8)
        var c = WanLoRAConfig.preset(.h100)
        c.model.checkpoint = "/m"
        func leaves(_ value: JSONValue, _ prefix: String) -> [String] {
            guard case .object(let members) = value else { return [prefix] }
            return members.flatMap { member -> [String] in
                let path = prefix.isEmpty ? member.key : "\(prefix).\(member.key)"
                if case .object = member.value { return leaves(member.value, path) }
                return [path]
            }
        }
        for path in leaves(try ResolvedConfig(resolving: c, runName: "r").json(), "") {
            let name = path.split(separator: ".").last.map(String.init) ?? path
            #expect(contract.contains("| `\(name)` |"), "docs/engine-contract.md lacks a row for \(path)")
        }
        let docs = try String(contentsOf: Self.repoRoot.appendingPathComponent("docs/config.md"), encoding: .utf8)
        for key in ConfigKeys.all {
            #expect(docs.contains("`\(key.path)`"), "docs/config.md lacks `\(key.path)`")
        }
        #expect(docs.contains("engine-contract.md"))
        // The old, second resolved format and its fixture are gone.
        #expect(!FileManager.default.fileExists(atPath: Self.repoRoot.appendingPathComponent("fixtures/contract").path))
    }
}
