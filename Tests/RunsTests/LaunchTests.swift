import Config
import Foundation
import Launch
import Testing

@testable import Runs

/// Scratch folders for the tests, removed by the caller.
func scratchFolder(_ label: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("wanlora-\(label)-\(UUID().uuidString)")
        .path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// An executable shell script at `path`.
func writeScript(_ path: String, _ body: String) throws {
    try Data(("#!/bin/sh\n" + body).utf8).write(to: URL(fileURLWithPath: path))
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
}

@Suite struct LaunchTests {
    let venv = EngineInstallation(python: "/opt/wanlora/engine/.venv/bin/python")

    func hardware(gpus: Int, nodes: Int = 1, ulysses: Int = 1, fsdp: Bool = false) -> HardwareSettings {
        var h = WanLoRAConfig.preset(.h100).hardware
        h.gpusPerNode = gpus
        h.nodes = nodes
        h.ulyssesDegree = ulysses
        h.fsdp = fsdp
        return h
    }

    @Test func oneGPUStartsPython() throws {
        let cache = try EngineLaunch.make(
            stage: .cache, configPath: "/runs/a/config.resolved.json", resume: false,
            hardware: hardware(gpus: 1), attentionHeads: 40, engine: venv)
        #expect(cache.executable == "/opt/wanlora/engine/.venv/bin/python")
        #expect(cache.arguments == ["-m", "wanlora_engine", "cache", "--config", "/runs/a/config.resolved.json"])
        #expect(cache.processes == 1 && cache.request?.stage == .cache)
        // Several GPUs: torchrun, one process per GPU, without the training layout's options.
        let eight = try EngineLaunch.make(
            stage: .cache, configPath: "/c.json", resume: true, hardware: hardware(gpus: 8, ulysses: 2, fsdp: true),
            attentionHeads: 40, stopGraceSeconds: 120, engine: venv)
        #expect(eight.processes == 8)
        #expect(
            eight.arguments == [
                "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "8", "--standalone",
                "--signals-to-handle", "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1",
                "-m", "wanlora_engine", "cache", "--config", "/c.json",
            ])
        let train = try EngineLaunch.make(
            stage: .train, configPath: "/runs/a/config.resolved.json", resume: true,
            hardware: hardware(gpus: 1), attentionHeads: 40, engine: venv)
        #expect(
            train.commandLine == "/opt/wanlora/engine/.venv/bin/python -m wanlora_engine "
                + "train --config /runs/a/config.resolved.json --resume")
        // --resume belongs to train only.
        #expect(
            !(try EngineLaunch.make(
                stage: .cache, configPath: "c", resume: true, hardware: hardware(gpus: 1), attentionHeads: 40,
                engine: venv)).arguments.contains("--resume"))
    }

    @Test func severalGPUsStartTorchrunThroughTheLaunchLibrary() throws {
        let launch = try EngineLaunch.make(
            stage: .train, configPath: "/runs/my run/config.resolved.json", resume: false,
            hardware: hardware(gpus: 8, ulysses: 2, fsdp: true), attentionHeads: 40, engine: venv)
        #expect(launch.executable == "/opt/wanlora/engine/.venv/bin/python")
        #expect(
            launch.arguments == [
                "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "8", "--standalone",
                "--signals-to-handle", "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1",
                "-m", "wanlora_engine", "train", "--config", "/runs/my run/config.resolved.json",
                "--ulysses", "2", "--fsdp",
            ])
        // The config's stop grace sets torchrun's shutdown wait (plus its exit margin); --max-restarts passes through.
        let graced = try EngineLaunch.make(
            stage: .train, configPath: "/c.json", resume: false, hardware: hardware(gpus: 2),
            attentionHeads: 40, placement: NodePlacement(maxRestarts: 4), stopGraceSeconds: 120,
            engine: venv)
        #expect(graced.request?.shutdownTimeoutSeconds == 135 && graced.request?.maxRestarts == 4)
        #expect(
            graced.commandLine.contains(
                " --standalone --max-restarts 4 --signals-to-handle "
                    + "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 --shutdown-timeout 135 -m wanlora_engine"
            ))
        #expect(launch.processes == 8 && launch.request?.dataParallelSize == 4)
        // Two nodes: this node's rank and node 0's address; torchrun's shutdown wait.
        let placement = NodePlacement(
            nodeRank: 1, master: try MasterAddress(parsing: "10.0.0.1:29500"), shutdownTimeoutSeconds: 600)
        let nodes = try EngineLaunch.make(
            stage: .train, configPath: "/c.json", resume: true, hardware: hardware(gpus: 4, nodes: 2),
            attentionHeads: 40, placement: placement, engine: EngineInstallation(python: "/usr/bin/python3"))
        #expect(
            nodes.commandLine
                == "/usr/bin/python3 -m torch.distributed.run --nnodes 2 --nproc-per-node 4 --node-rank 1 "
                + "--master-addr 10.0.0.1 --master-port 29500 "
                + "--signals-to-handle SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 "
                + "--shutdown-timeout 600 -m wanlora_engine train --config /c.json --resume")
        // Layouts that cannot start are refused with the Launch library's errors.
        #expect(throws: LaunchError.self) {
            try EngineLaunch.make(
                stage: .train, configPath: "/c.json", resume: false, hardware: hardware(gpus: 4, nodes: 2),
                attentionHeads: 40, engine: venv)
        }
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
        try FileManager.default.createDirectory(
            atPath: root + "/repo/.build/release", withIntermediateDirectories: true)
        try writeScript(bin + "/python", "exit 0\n")
        // Found above the binary's folder, or above the working folder.
        let found = try EngineInstallation.locate(
            explicit: nil, environment: [:], searchFrom: [root + "/repo/.build/release"])
        #expect(found == EngineInstallation(python: bin + "/python"))
        let second = try EngineInstallation.locate(
            explicit: nil, environment: [:], searchFrom: ["/nonexistent", root + "/repo"])
        #expect(second.python == bin + "/python")
        // The environment variable wins over the search, the option over both.
        try writeScript(root + "/other-python", "exit 0\n")
        let fromEnvironment = try EngineInstallation.locate(
            explicit: nil, environment: ["WANLORA_ENGINE_PYTHON": root + "/other-python"],
            searchFrom: [root + "/repo"])
        #expect(fromEnvironment.python == root + "/other-python")
        let explicit = try EngineInstallation.locate(
            explicit: bin + "/python", environment: ["WANLORA_ENGINE_PYTHON": root + "/other-python"],
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
