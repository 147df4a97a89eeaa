import Foundation
import Testing

/// `wanlora plan` and `wanlora config`, run as a user runs them: the built binary.
@Suite struct PlanEndToEndTests {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/wanlora")

    func run(_ arguments: [String]) throws -> Output {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both before waiting, so a full pipe cannot block the child.
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }

    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("wanlora-plan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path)))
    func v100PlanIsFlaggedAndExitsOne() throws {
        let result = try run(["plan", "--preset", "v100", "--json"])
        #expect(result.status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let checks = try #require(object["checks"] as? [[String: Any]])
        #expect(checks.contains { $0["code"] as? String == "bf16" })
        #expect(checks.contains { $0["code"] as? String == "memory" })
        let table = try run(["plan", "--preset", "v100"])
        #expect(table.stdout.contains("52,428,800 an expert"))
        #expect(table.stdout.contains("ERROR   [bf16]"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path)))
    func h100PlanPassesWithEnoughDisk() throws {
        let result = try run(["plan", "--preset", "h100", "--disk-free", "5000", "--markdown"])
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.contains("| parameters | 52,428,800 an expert; 104,857,600 for 2 experts |"))
        let tight = try run(["plan", "--preset", "h100", "--disk-free", "100"])
        #expect(tight.status == 1 && tight.stdout.contains("[disk]"))
    }

    /// The cache rows: bytes per item at the captions' estimated token count, which --caption-chars sets.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path)))
    func cacheSizeFollowsTheCaptionLength() throws {
        let archive = try run(["plan", "--preset", "h100"])
        #expect(
            archive.stdout.contains(
                "1.12 TB: 11.49 MB a video item (latent 9.68 MB), 2.27 MB an image item (latent 0.46 MB)"),
            "\(archive.stdout)")
        #expect(archive.stdout.contains("1.81 MB a caption: 221 UMT5 tokens × 4,096 × 2 B"))
        #expect(archive.stdout.contains("`wanlora cache` runs on"))
        let short = try run(["plan", "--preset", "h100", "--caption-chars", "99"])
        #expect(short.stdout.contains("0.42 MB a caption: 51 UMT5 tokens × 4,096 × 2 B"), "\(short.stdout)")
        #expect(short.stdout.contains("size                        887.8 GB: 10.09 MB a video item"), "\(short.stdout)")
        let negative = try run(["plan", "--preset", "h100", "--caption-chars=-1"])
        #expect(negative.status != 0 && negative.stderr.contains("--caption-chars must be 0 or more"))
    }

    /// `--gpu-table`: a row per catalog GPU with the setting that fits it; JSON gives the same rows.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path)))
    func gpuTableShowsASettingForEveryCard() throws {
        let result = try run([
            "plan", "--gpu-table", "--frames", "49", "--set", "training.expert=\"high\"", "--set", "lora.dropout=0",
            "--set", "training.optimizer=\"adamw8bit\"",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = result.stdout.split(separator: "\n").map(String.init)
        let rtx = try #require(rows.first { $0.hasPrefix("RTX-4090") })
        #expect(rtx.contains("49 frames, bf16") && rtx.contains("7 of 40") && rtx.contains("(100% hidden)"), "\(rtx)")
        #expect(rows.contains { $0.hasPrefix("H100") && $0.contains("all 40") })
        #expect(result.stdout.contains("V100-32GB: no bf16 arithmetic"))
        let json = try run(["plan", "--gpu-table", "--frames", "49", "--json"])
        let array = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(array.count == 8 && array.allSatisfy { $0["option"] != nil })
        // A host too small for the placement is an error with the nearest settings that fit.
        let short = try run([
            "plan", "--gpu", "RTX-4090", "--gpus", "1", "--ulysses", "1", "--set", "hardware.fsdp=false",
            "--set", "training.expert=\"high\"", "--frames", "49", "--host-memory", "40", "--disk-free", "5000",
        ])
        #expect(
            short.status == 1 && short.stdout.contains("[host-memory]") && short.stdout.contains("fix: Fits: "),
            "\(short.stdout)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path)))
    func compareReport() throws {
        let result = try run(["plan", "--compare-report"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("report:    26M"))
        #expect(result.stdout.contains("computed:  52,428,800 per expert"))
        #expect(result.stdout.contains("report:    96 h on 2 × V100"))
        #expect(result.stdout.contains("report:    ~30 GB of 32 GB"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path)))
    func flagsOverrideAndBadValuesAreTwoLines() throws {
        let ok = try run([
            "plan", "--gpu", "H200", "--gpus", "1", "--ulysses", "1", "--frames", "81", "--rank", "32", "--json",
            "--disk-free", "5000",
        ])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(ok.stdout.utf8)) as? [String: Any])
        let lora = try #require(object["lora"] as? [String: Any])
        #expect(lora["parameters_per_expert"] as? Int == 104_857_600)
        let memory = try #require(object["memory"] as? [String: Any])
        #expect((memory["capacity_bytes"] as? Int ?? 0) > 140 << 30)

        let bad = try run(["plan", "--frames", "50"])
        #expect(bad.status == 1)
        #expect(bad.stderr.hasPrefix("error: training.frames = 50 is not allowed"))
        #expect(bad.stderr.contains("how to fix: "))
        let gpu = try run(["plan", "--gpu", "B200"])
        #expect(gpu.status == 1 && gpu.stderr.contains("Unknown GPU \"B200\""))
        let both = try run(["plan", "--preset", "v100", "--config", "x.toml"])
        #expect(both.status == 64)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path)))
    func configInitCheckShow() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("run.toml").path
        #expect(try run(["config", "init", "--preset", "v100", "--output", file]).status == 0)
        #expect(try run(["config", "init", "--preset", "v100", "--output", file]).status == 1)  // no overwrite
        let check = try run(["config", "check", file])
        #expect(check.status == 0 && check.stdout.contains("valid (preset v100"))
        // The engine's file needs the model folder.
        let noModel = try run(["config", "show", "--config", file, "--json"])
        #expect(noModel.status == 1 && noModel.stderr.contains("model.checkpoint is empty"))
        let show = try run([
            "config", "show", "--config", file, "--json", "--set", "lora.rank=8",
            "--set", "model.checkpoint=weights", "--set", "training.mixed_precision=fp32",
        ])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
        #expect((object["lora"] as? [String: Any])?["rank"] as? Int == 8)
        // Written as into the run folder: paths absolute against the TOML file's folder.
        #expect((object["derived"] as? [String: Any])?["run_dir"] as? String == folder.path + "/runs/run")
        #expect((object["model"] as? [String: Any])?["checkpoint"] as? String == folder.path + "/weights")
        // A broken file is reported with its key.
        try Data("[training]\nframes = 48\n".utf8).write(to: URL(fileURLWithPath: file))
        let broken = try run(["config", "check", file])
        #expect(broken.status == 1 && broken.stderr.contains("training.frames = 48"))
        // The plan of the file uses its settings.
        try Data("preset = \"v100\"\n[training]\nmixed_precision = \"fp16\"\n".utf8).write(
            to: URL(fileURLWithPath: file))
        let plan = try run(["plan", "--config", file, "--json"])
        #expect(!plan.stdout.contains("\"code\" : \"bf16\""))
        #expect(plan.stdout.contains("\"code\" : \"fp16\""))
    }
}
