import Foundation
import Support
import Testing

@testable import Config

/// config.resolved.json is the engine contract's format; these tests read the same fixture files
/// as the engine's own tests (engine/tests/fixtures/).
@Suite struct ResolvedConfigTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let fixtures = repoRoot.appendingPathComponent("engine/tests/fixtures")

    func fixture(_ name: String) throws -> JSONValue {
        let text = try String(contentsOf: Self.fixtures.appendingPathComponent(name), encoding: .utf8)
        return try JSONValue.parse(text)
    }

    func resolvedJSON(_ name: String) throws -> ResolvedConfig {
        try ResolvedConfig.read(file: Self.fixtures.appendingPathComponent(name).path)
    }

    /// The files made from the registry (docs/config.md's tables, the engine's schema, the
    /// resolved-config fixtures) are what `wanlora config generate` writes today.
    @Test func generatedFilesAreCurrent() throws {
        for (path, text) in try GeneratedFiles.expected(root: Self.repoRoot.path) {
            let onDisk = try String(contentsOf: Self.repoRoot.appendingPathComponent(path), encoding: .utf8)
            #expect(onDisk == text, "\(path) differs from the registry: run `make generated`")
        }
    }

    /// No renamed keys: every registry key is in config.resolved.json under its own dotted name.
    @Test func everyKeyIsInTheResolvedJSONUnderItsTomlName() throws {
        var c = WanLoRAConfig.preset(.h100)
        c.model.checkpoint = "/m"
        let json = try ResolvedConfig(resolving: c, runName: "r").json()
        guard case .object(let top) = json else {
            Issue.record("not an object")
            return
        }
        #expect(top.map(\.key).sorted() == (["schema_version", "preset", "derived"] + ConfigKeys.sections).sorted())
        for entry in ConfigKeys.all {
            #expect(json[entry.section]?[entry.name] != nil, "\(entry.path) is not in config.resolved.json")
        }
        for section in ConfigKeys.sections {
            guard case .object(let members)? = json[section] else {
                Issue.record("\(section)")
                continue
            }
            #expect(members.count == ConfigKeys.all.filter { $0.section == section }.count, "\(section)")
        }
        #expect(json["training"]?["grad_accumulation"] == .int(8) && json["train"] == nil)
    }

    @Test func demoTomlResolvesToTheDemoFixture() throws {
        let resolved = try GeneratedFiles.demoResolved(root: Self.repoRoot.path)
        #expect(try resolvedJSON("config.resolved.demo.json") == resolved)
        // Relative paths stay relative to the TOML file's folder until anchored there.
        #expect(resolved.derived.runDir == "runs/demo" && resolved.model.checkpoint == "model")
        let anchored = resolved.anchored(at: "/work/demo")
        #expect(anchored.derived.runDir == "/work/demo/runs/demo")
        #expect(anchored.data.trainManifest == "/work/demo/data/train.csv")
        #expect(anchored.data.cacheDir == "/work/demo/cache")
        #expect(anchored.model.checkpoint == "/work/demo/model")
        #expect(anchored.eval.i3dWeights == "")  // empty stays empty ("none")
    }

    /// A Hugging Face repo id that the hub cache holds reaches the engine as written (it resolves it
    /// there); a folder that exists under the same spelling, a repo not downloaded and every other
    /// relative path are anchored.
    @Test func aRepoIDInTheHubCacheStaysAsWrittenAndPathsAreAnchored() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("model-source-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let base = root + "/configs"
        let hub = root + "/hub"
        let repo = "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        var c = WanLoRAConfig.preset(.h100)
        c.model.checkpoint = repo
        c.model.highNoiseFile = "experts/wan2.2_t2v_high_noise_14B_fp16.safetensors"
        let resolved = try ResolvedConfig(resolving: c, runName: "r")
        // not downloaded: a path like any other (RunSession then says it is neither)
        #expect(resolved.anchored(at: base, hubCache: hub).model.checkpoint == base + "/" + repo)
        try FileManager.default.createDirectory(
            atPath: hub + "/models--Wan-AI--Wan2.2-T2V-A14B-Diffusers/snapshots", withIntermediateDirectories: true)
        #expect(ModelSource.cacheEntry(repo, hubCache: hub) == hub + "/models--Wan-AI--Wan2.2-T2V-A14B-Diffusers")
        let anchored = resolved.anchored(at: base, hubCache: hub)
        #expect(anchored.model.checkpoint == repo)
        #expect(anchored.model.highNoiseFile == base + "/experts/wan2.2_t2v_high_noise_14B_fp16.safetensors")
        #expect(anchored.model.lowNoiseFile == "")
        try FileManager.default.createDirectory(atPath: base + "/" + repo, withIntermediateDirectories: true)
        #expect(ModelSource.anchored(repo, base: base, hubCache: hub) == base + "/" + repo)
        for path in ["model", "a/b/c", "./Org/Name", "~/Org", "Org/Name/", "Org--x/Name", "-Org/Name", "Org/Name."] {
            #expect(!ModelSource.looksLikeRepoID(path), "\(path)")
        }
        #expect(ModelSource.looksLikeRepoID("google/umt5-xxl") && !ModelSource.looksLikeRepoID("umt5-xxl"))
        // huggingface_hub's order of the variables
        #expect(ModelSource.hubCache(environment: ["HF_HOME": "/h", "HF_HUB_CACHE": "/c"]) == "/c")
        #expect(ModelSource.hubCache(environment: ["HF_HOME": "/h", "XDG_CACHE_HOME": "/x"]) == "/h/hub")
        #expect(ModelSource.hubCache(environment: ["XDG_CACHE_HOME": "/x"]) == "/x/huggingface/hub")
        #expect(ModelSource.hubCache(environment: ["HOME": "/root"]).hasSuffix("/.cache/huggingface/hub"))
    }

    /// Every edit of config.invalid.cases.json, applied to the demo fixture, is refused naming the
    /// key the engine's test expects (engine/tests/test_config.py applies the same edits).
    @Test func invalidCasesAreRefusedNamingTheKey() throws {
        guard case .array(let cases) = try fixture("config.invalid.cases.json"),
            case .object(let demo) = try fixture("config.resolved.demo.json")
        else {
            Issue.record("the fixtures are not as expected")
            return
        }
        #expect(cases.count == 6)
        func edit(_ members: [JSONMember], _ path: ArraySlice<String>, _ value: JSONValue?) -> [JSONMember] {
            var members = members.filter { $0.key != path.first! || path.count > 1 }
            if path.count == 1, let value { members.append(JSONMember(path.first!, value)) }
            if path.count > 1, let i = members.firstIndex(where: { $0.key == path.first! }),
                case .object(let inner) = members[i].value
            {
                members[i].value = .object(edit(inner, path.dropFirst(), value))
            }
            return members
        }
        for item in cases {
            guard case .string(let key)? = item["key"] else {
                Issue.record("no key")
                continue
            }
            let value: JSONValue?
            let target: String
            if case .string(let removed)? = item["remove"] {
                (target, value) = (removed, nil)
            } else if case .string(let set)? = item["set"] {
                (target, value) = (set, item["value"])
            } else {
                Issue.record("neither remove nor set")
                continue
            }
            let text = JSONValue.object(edit(demo, ArraySlice(target.split(separator: ".").map(String.init)), value))
                .formatted()
            let error = try #require(throws: ConfigError.self, "\(key)") {
                try JSONDecoder().decode(ResolvedConfig.self, from: Data(text.utf8))
            }
            #expect(error.key == key, "\(key): \(error)")
            #expect(error.problem.contains(key), "\(key): \(error.problem)")
            #expect(!error.remedy.isEmpty)
        }
    }

    @Test func writtenFileReadsBackForEveryPreset() throws {
        for preset in Preset.allCases {
            var config = WanLoRAConfig.preset(preset)
            config.model.checkpoint = "/models/wan"
            let resolved = try ResolvedConfig(resolving: config, runName: preset.rawValue).anchored(at: "/work/project")
            let text = resolved.formatted()
            #expect(text.hasSuffix("}\n") && text.hasPrefix("{\n  \"analyze\" : {"))
            #expect(try JSONDecoder().decode(ResolvedConfig.self, from: Data(text.utf8)) == resolved)
            #expect(resolved.formatted() == text)  // the same input gives the same bytes
        }
    }

    @Test func resolvingFillsTheDerivedValues() throws {
        var c = WanLoRAConfig.preset(.h100)
        c.model.checkpoint = "weights/wan"
        c.training.expert = .low
        c.training.frames = 49
        c.training.width = 832
        c.training.height = 480
        c.training.textLength = 256
        c.run.runsDir = "../runs"
        let r = try ResolvedConfig(resolving: c, runName: "x")
        #expect(r.derived.experts == [.low] && r.run.name == "x")
        #expect(r.data.cacheDir == "cache/832x480-49f-256t")
        let anchored = r.anchored(at: "/work/project/configs")
        #expect(anchored.derived.runDir == "/work/project/runs/x")
        #expect(anchored.model.checkpoint == "/work/project/configs/weights/wan")
    }

    @Test func whatTheEngineCannotDoIsRefusedNamingTheTomlKey() throws {
        var c = WanLoRAConfig.preset(.v100)
        let missing = try #require(throws: ConfigError.self) { try ResolvedConfig(resolving: c, runName: "r") }
        #expect(missing.key == "model.checkpoint" && missing.kind == .missingKey)
        c.model.checkpoint = "/m"
        // fp8 is the host format of streamed blocks (the GPU computes on bf16 weights): the engine reads it as is.
        c.model.weightsDtype = .fp8
        #expect(try ResolvedConfig(resolving: c, runName: "r").json()["model"]?["weights_dtype"] == .string("fp8"))
        c.model.weightsDtype = .bf16
        c.training.mixedPrecision = .fp16
        let fp16 = try #require(throws: ConfigError.self) { try ResolvedConfig(resolving: c, runName: "r") }
        #expect(fp16.key == "training.mixed_precision" && fp16.remedy.contains("fp32"))
        // Both at once: both named, in one run.
        c.model.checkpoint = ""
        let both = try #require(throws: ConfigErrors.self) { try ResolvedConfig(resolving: c, runName: "r") }
        #expect(both.errors.map(\.key) == ["model.checkpoint", "training.mixed_precision"])
    }

    @Test func readingChecksNamesAndTypes() throws {
        let text = try String(
            contentsOf: Self.fixtures.appendingPathComponent("config.resolved.v100.json"), encoding: .utf8)
        func replacing(_ old: String, _ new: String) throws -> ConfigError {
            #expect(text.contains(old), "\(old)")
            return try #require(throws: ConfigError.self) {
                try JSONDecoder().decode(
                    ResolvedConfig.self, from: Data(text.replacingOccurrences(of: old, with: new).utf8))
            }
        }
        #expect(try replacing("\"rank\" : 16", "\"rank\" : true").key == "lora.rank")
        #expect(try replacing("\"rank\" : 16", "\"rank\" : 16.5").key == "lora.rank")
        #expect(try replacing("\"optimizer\" : \"adamw8bit\"", "\"optimizer\" : \"sgd\"").key == "training.optimizer")
        #expect(try replacing("\"rank\" : 16", "\"rnk\" : 16").kind == .unknownKey)
        #expect(try replacing("\"schema_version\" : 2", "\"schema_version\" : 1").key == "schema_version")
        // An integer where a float belongs is fine (alpha 16), as in Python.
        let alpha = try JSONDecoder().decode(ResolvedConfig.self, from: Data(text.utf8))
        #expect(alpha.lora.alpha == 16)
    }

    @Test func runNames() throws {
        let c = WanLoRAConfig.preset(.a100)
        #expect(ResolvedConfig.defaultRunName(config: c, configFile: "configs/my-run.toml") == "my-run")
        #expect(ResolvedConfig.defaultRunName(config: c, configFile: nil) == "a100")
        var named = c
        named.run.name = "exp-7"
        #expect(ResolvedConfig.defaultRunName(config: named, configFile: "x.toml") == "exp-7")
        for bad in ["a/b", ".hidden", "two words"] {
            let error = try #require(throws: ConfigError.self) {
                try ConfigLoader.parse(toml: "[run]\nname = \"\(bad)\"")
            }
            #expect(error.key == "run.name")
        }
    }

    /// docs/config.md documents every TOML key and links to the contract.
    @Test func docsDescribeEveryKey() throws {
        let docs = try String(contentsOf: Self.repoRoot.appendingPathComponent("docs/config.md"), encoding: .utf8)
        for key in ConfigKeys.all {
            #expect(docs.contains("`\(key.path)`"), "docs/config.md lacks `\(key.path)`")
        }
        #expect(docs.contains("engine-contract.md"))
    }
}
