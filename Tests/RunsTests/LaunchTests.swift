import Foundation
import Testing
@testable import Runs

/// Scratch folders for the tests, removed by the caller.
func scratchFolder(_ label: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("wanlora-\(label)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// An executable shell script at `path`.
func writeScript(_ path: String, _ body: String) throws {
    try Data(("#!/bin/sh\n" + body).utf8).write(to: URL(fileURLWithPath: path))
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
}

@Suite struct LaunchTests {
    let venv = EngineInstallation(python: "/opt/wanlora/engine/.venv/bin/python", torchrun: "/opt/wanlora/engine/.venv/bin/torchrun")

    @Test func oneGPUStartsPython() {
        let cache = EngineLaunch.make(stage: .cache, configPath: "/runs/a/config.resolved.json", resume: false, processes: 1, engine: venv)
        #expect(cache.executable == "/opt/wanlora/engine/.venv/bin/python")
        #expect(cache.arguments == ["-m", "wanlora_engine", "cache", "--config", "/runs/a/config.resolved.json"])
        #expect(cache.processes == 1)
        let train = EngineLaunch.make(stage: .train, configPath: "/runs/a/config.resolved.json", resume: true, processes: 1, engine: venv)
        #expect(train.commandLine == "/opt/wanlora/engine/.venv/bin/python -m wanlora_engine train --config /runs/a/config.resolved.json --resume")
        // --resume belongs to train only.
        #expect(!EngineLaunch.make(stage: .cache, configPath: "c", resume: true, processes: 1, engine: venv).arguments.contains("--resume"))
    }

    @Test func severalGPUsStartTorchrun() {
        let launch = EngineLaunch.make(stage: .train, configPath: "/runs/my run/config.resolved.json", resume: false, processes: 8, engine: venv)
        #expect(launch.executable == "/opt/wanlora/engine/.venv/bin/torchrun")
        #expect(launch.arguments == ["--standalone", "--nnodes", "1", "--nproc-per-node", "8",
                                     "-m", "wanlora_engine", "train", "--config", "/runs/my run/config.resolved.json"])
        #expect(launch.processes == 8)
        #expect(launch.commandLine == "/opt/wanlora/engine/.venv/bin/torchrun --standalone --nnodes 1 --nproc-per-node 8 -m wanlora_engine train --config '/runs/my run/config.resolved.json'")
        // Without a torchrun script beside python: the module it runs, with the same interpreter.
        let bare = EngineLaunch.make(stage: .train, configPath: "/c.json", resume: true, processes: 2,
                                     engine: EngineInstallation(python: "/usr/bin/python3"))
        #expect(bare.commandLine == "/usr/bin/python3 -m torch.distributed.run --standalone --nnodes 1 --nproc-per-node 2 -m wanlora_engine train --config /c.json --resume")
    }

    @Test func shellQuoting() {
        #expect(EngineLaunch.shellQuoted("plain/path-1.json") == "plain/path-1.json")
        #expect(EngineLaunch.shellQuoted("it's here") == "'it'\\''s here'")
        #expect(EngineLaunch.shellQuoted("") == "''")
        #expect(EngineLaunch.shellQuoted("런/설정.toml") == "'런/설정.toml'")
    }

    @Test func locatingTheEngine() throws {
        let root = try scratchFolder("locate")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let bin = root + "/repo/engine/.venv/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/repo/.build/release", withIntermediateDirectories: true)
        try writeScript(bin + "/python", "exit 0\n")
        // Found above the binary's folder; no torchrun beside it yet.
        let found = try EngineInstallation.locate(explicit: nil, environment: [:], searchFrom: [root + "/repo/.build/release"])
        #expect(found == EngineInstallation(python: bin + "/python", torchrun: nil))
        try writeScript(bin + "/torchrun", "exit 0\n")
        let withTorchrun = try EngineInstallation.locate(explicit: nil, environment: [:], searchFrom: ["/nonexistent", root + "/repo"])
        #expect(withTorchrun.torchrun == bin + "/torchrun")
        // The environment variable wins over the search, the option over both.
        try writeScript(root + "/other-python", "exit 0\n")
        let fromEnvironment = try EngineInstallation.locate(explicit: nil, environment: ["WANLORA_ENGINE_PYTHON": root + "/other-python"],
                                                            searchFrom: [root + "/repo"])
        #expect(fromEnvironment.python == root + "/other-python")
        let explicit = try EngineInstallation.locate(explicit: bin + "/python", environment: ["WANLORA_ENGINE_PYTHON": root + "/other-python"],
                                                     searchFrom: [])
        #expect(explicit.python == bin + "/python")
        // Wrong paths say how to fix them.
        let bad = try #require(throws: RunError.self) {
            try EngineInstallation.locate(explicit: root + "/nope", environment: [:], searchFrom: [])
        }
        #expect(bad.problem.contains("--engine-python") && bad.remedy.contains("make -C engine venv"))
        let none = try #require(throws: RunError.self) {
            try EngineInstallation.locate(explicit: nil, environment: [:], searchFrom: [root])
        }
        #expect(none.remedy.contains("--engine-python"))
    }
}
