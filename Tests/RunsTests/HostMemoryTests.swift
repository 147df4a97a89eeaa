import Config
import Foundation
import Planner
import Testing

@testable import Runs

/// `train` checks the placement's host memory against the host's before anything is loaded.
@Suite(.serialized) struct HostMemoryTests {
    @Test func memAvailableIsReadFromMeminfo() {
        let meminfo =
            "MemTotal:       131891448 kB\nMemFree:         1234 kB\nMemAvailable:   32505856 kB\nBuffers: 1 kB\n"
        #expect(HostMemoryInfo.availableBytes(meminfo: meminfo) == 32_505_856 * 1024)
        #expect(HostMemoryInfo.availableBytes(meminfo: "MemTotal: 5 kB\n") == nil)
        #expect(HostMemoryInfo.availableBytes(path: "/nonexistent/meminfo") == nil)
    }

    /// A project with an (empty) model folder and a cache of two 49-frame videos, for an RTX 4090.
    func project() throws -> (root: String, config: WanLoRAConfig, file: String) {
        let root = try scratchFolder("hostmem")
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/model", withIntermediateDirectories: true)
        let cache = root + "/cache/1280x720-49f-512t"
        try fm.createDirectory(atPath: cache + "/train", withIntermediateDirectories: true)
        try Data(
            (#"{"schema_version": 1, "settings": {"width": 1280, "height": "#
                + #"720, "frames": 49, "fps": 16, "text_length": 512}}"#).utf8
        )
        .write(to: URL(fileURLWithPath: cache + "/cache.json"))
        try Data("{\"media_type\": \"video\"}\n{\"media_type\": \"video\"}\n".utf8)
            .write(to: URL(fileURLWithPath: cache + "/train/index.jsonl"))
        let file = root + "/run.toml"
        let config = try ConfigLoader.parse(
            toml: """
                preset = "h100"
                [model]
                checkpoint = "model"
                [lora]
                dropout = 0.0
                [training]
                frames = 49
                expert = "high"
                optimizer = "adamw8bit"
                [hardware]
                gpu = "RTX-4090"
                gpus_per_node = 1
                ulysses_degree = 1
                fsdp = false
                """, source: file)
        return (root, config, file)
    }

    /// Training reads cache formats 1 and 2 and refuses another, naming the folder and the way out.
    @Test func aCacheOfAnUnknownFormatIsRefused() throws {
        let (root, config, file) = try project()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = root + "/cache/1280x720-49f-512t"
        let engine = EngineInstallation(python: "/bin/true")
        for format in [1, 2] {
            try Data(
                (#"{"schema_version": \#(format), "settings": {"width": 1280, "height": 720, "frames": 49, "#
                    + #""fps": 16, "text_length": 512, "shard_items": 256}}"#).utf8
            ).write(to: URL(fileURLWithPath: cache + "/cache.json"))
            let prepared = try RunPreparation.prepare(
                stage: .train, config: config, configFile: file, resume: false, engine: engine,
                hostMemoryAvailable: { 1 << 40 })
            #expect(prepared.plan?.schedule.dataset.videos == 2)
        }
        try Data(
            (#"{"schema_version": 3, "settings": {"width": 1280, "height": 720, "frames": 49, "fps": 16, "#
                + #""text_length": 512}}"#).utf8
        ).write(to: URL(fileURLWithPath: cache + "/cache.json"))
        #expect {
            try RunPreparation.prepare(
                stage: .train, config: config, configFile: file, resume: false, engine: engine,
                hostMemoryAvailable: { 1 << 40 })
        } throws: { error in
            let error = error as? RunError
            return error?.problem == "The cache at \(cache) has cache format 3; this wanlora reads formats 1, 2."
                && error?.remedy.hasSuffix("run `wanlora cache --config \(file)`.") == true
        }
    }

    /// 49 frames on a 24 GiB card stream 33 blocks: 21.6 GiB of them, 35.1 GiB of kept activations, the
    /// engine's 3 GiB and 8 GiB left free make 67.7 GiB; a host with 31 GiB is refused before the engine
    /// starts, with the numbers and the settings that fit there.
    @Test func aHostWithoutTheRamIsRefusedWithTheNearestSettings() throws {
        let (root, config, file) = try project()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let engine = EngineInstallation(python: "/bin/true")
        let short = try RunPreparation.prepare(
            stage: .train, config: config, configFile: file, resume: false, engine: engine,
            hostMemoryAvailable: { 31 << 30 })
        let check = try #require(short.blockingChecks.first { $0.code == "host-memory" })
        #expect(
            check.message
                == "49 frames at 24.0 GiB of GPU memory needs 67.7 GiB of host RAM (streamed blocks (pinned) 21.6 GiB "
                + "+ kept activations (pinned) 35.1 GiB + engine process 3.0 "
                + "GiB + 8.0 GiB left free); this host has 31.0 GiB available."
        )
        #expect(check.remedy.hasPrefix("Fits: training.frames = "))
        // Every setting it names fits that host when planned again.
        let plan = try #require(short.plan)
        #expect(!plan.alternatives.isEmpty)
        for option in plan.alternatives {
            #expect(option.hostNeededBytes <= 31 << 30 && option.peakBytes <= option.usableBytes)
            var changed = config
            for assignment in option.changes {
                try ConfigLoader.set(assignment.replacingOccurrences(of: " = ", with: "="), in: &changed)
            }
            #expect(try Planner.plan(changed, hostMemoryAvailableBytes: 31 << 30).fits, "\(option.changes)")
        }
        let refused = try #require(throws: RunRefused.self) {
            try RunSession(prepared: short).run(force: false, observer: StageObserver(event: { _, _ in }))
        }
        #expect(refused.problem.contains("needs 67.7 GiB of host RAM"))
        #expect(!FileManager.default.fileExists(atPath: short.folder.path))  // nothing written, nothing loaded

        // A host with the memory passes; the kept activations stay in host memory.
        let enough = try RunPreparation.prepare(
            stage: .train, config: config, configFile: file, resume: false, engine: engine,
            hostMemoryAvailable: { 96 << 30 })
        #expect(!enough.blockingChecks.contains { $0.code == "host-memory" })
        #expect(enough.resolved.training.activationOffload == .auto)
    }

    /// A GPU limit that not even streaming every block fits is refused, naming what would fit.
    @Test func aLimitNothingFitsInIsRefused() throws {
        let (root, config, file) = try project()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var capped = config
        capped.hardware.gpuMemoryLimit = 12
        let prepared = try RunPreparation.prepare(
            stage: .train, config: capped, configFile: file, resume: false,
            engine: EngineInstallation(python: "/bin/true"), hostMemoryAvailable: { 512 << 30 })
        let check = try #require(prepared.blockingChecks.first { $0.code == "memory" })
        #expect(
            check.message.hasPrefix(
                "Even with all 40 blocks streamed from host memory, 49 frames 1280x720, 46800 tokens needs"))
        #expect(check.message.contains("usable of the 12.0 GiB limit (hardware.gpu_memory_limit) on the RTX-4090"))
        #expect(check.remedy.hasPrefix("Fits: training.frames = "))
    }
}
