import Foundation
import Testing

/// `wanlora sample` as a user runs it: the built binary, the engine's venv, a tiny random model.
@Suite(.serialized) struct SampleEndToEndTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let enginePython = repoRoot.appendingPathComponent("engine/.venv/bin/python").path

    func config(in folder: URL, model: String) throws -> URL {
        let url = folder.appendingPathComponent("run.toml")
        try Data(
            """
            [model]
            checkpoint = "\(model)"
            [sample]
            resolution = "64x48"
            frames = 5
            steps = 4

            """.utf8
        ).write(to: url)
        return url
    }

    @Test func helpShowsTheDefaultsOfTheConfigLayer() throws {
        let result = try BinaryRunner.run(["sample", "--help"])
        #expect(result.status == 0)
        // The help wraps at 80 columns: compare with the whitespace collapsed.
        let help = result.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for text in [
            "(default: 40, sample.steps)", "(default: 12.0, sample.shift)", "(default: 4.0,", "(default: 3.0,",
            "(default: 0.875, model.boundary)", "(default: 81, sample.frames", "(default: 1280x720",
            "(default: 42, sample.seed)",
            "--lora-high <file>", "--lora-low <file>", "--prompts <file>", "--out <dir>",
        ] {
            #expect(help.contains(text), "help lacks \(text)")
        }
        #expect(try BinaryRunner.run(["--help"]).stdout.contains("wanlora sample"))
    }

    @Test func inputErrorsAreCaughtBeforeTheEngine() throws {
        let folder = BinaryRunner.temporaryFolder()
        let toml = try config(in: folder, model: "/nonexistent/model")
        let none = try BinaryRunner.run([
            "sample", "--config", toml.path, "--out", folder.appendingPathComponent("o").path,
        ])
        #expect(
            none.status != 0 && none.stderr.contains("--prompt TEXT (repeatable), --prompts FILE or --val-prompts N"))
        let lora = try BinaryRunner.run([
            "sample", "--config", toml.path, "--prompt", "x", "--out", folder.appendingPathComponent("o").path,
            "--lora-low", "missing.safetensors",
        ])
        #expect(lora.status == 1 && lora.stderr.contains("--lora-low missing.safetensors: no such file"))
        let expert = try BinaryRunner.run([
            "sample", "--config", toml.path, "--prompt", "x", "--out", folder.appendingPathComponent("o").path,
            "--set", "model.low_noise_file=wan2.2_t2v_low_noise_14B_fp16.safetensors",
        ])
        #expect(
            expert.status == 1
                && expert.stderr.contains(
                    "model.low_noise_file \(folder.path)/wan2.2_t2v_low_noise_14B_fp16.safetensors: no such file"),
            "\(expert.stderr)")
        let frames = try BinaryRunner.run([
            "sample", "--config", toml.path, "--prompt", "x", "--out", folder.path, "--frames", "80",
        ])
        #expect(frames.status == 1 && frames.stderr.contains("sample.frames") && frames.stderr.contains("77 or 81"))
        let noModel = try BinaryRunner.run(["sample", "--prompt", "x", "--out", folder.path, "--dry-run"])
        #expect(
            noModel.status == 1 && noModel.stderr.contains("model.checkpoint is empty")
                && noModel.stderr.contains("--model"))
        let scale = try BinaryRunner.run([
            "sample", "--config", toml.path, "--prompt", "x", "--out", folder.path, "--lora-high-scale", "0.5",
        ])
        #expect(scale.status != 0 && scale.stderr.contains("--lora-high-scale needs --lora-high"))
        let kernel = try BinaryRunner.run([
            "sample", "--config", toml.path, "--prompt", "x", "--out", folder.path, "--attention", "flash3",
        ])
        #expect(
            kernel.status == 1 && kernel.stderr.contains("sample.attention")
                && kernel.stderr.contains("cudnn"), "\(kernel.stderr)")
    }

    @Test func dryRunWritesTheJobAndThePlan() throws {
        let folder = BinaryRunner.temporaryFolder()
        let toml = try config(in: folder, model: "model")
        let out = folder.appendingPathComponent("s")
        let result = try BinaryRunner.run([
            "sample", "--config", toml.path, "--prompt", "한옥 마을", "--prompt", "등불 축제",
            "--out", out.path, "--steps", "40", "--seed", "100", "--attention", "fa3", "--dry-run",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stderr.contains(
                "euler, 40 steps on the wan schedule with shift 12.0: "
                    + "26 high-noise (guidance 4.0), 14 low-noise (guidance 3.0); boundary t ≥ 875; attention fa3"))
        #expect(result.stderr.contains("seeds 100–101") && result.stderr.contains("GPU memory (planner):"))
        #expect(result.stderr.contains("on one H100 (78.6 GiB usable, hardware.gpu): both experts on the GPU"))
        let job = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("sample-job.json")))
                as? [String: Any])
        let model = try #require(job["model"] as? [String: Any])
        #expect(model["path"] as? String == folder.appendingPathComponent("model").path)  // relative to the config file
        let prompts = try #require(job["prompts"] as? [[String: Any]])
        #expect(prompts.map { $0["prompt"] as? String } == ["한옥 마을", "등불 축제"])
        #expect((job["sampler"] as? [String: Any])?["attention"] as? String == "fa3")
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("videos").path))
    }

    /// The whole way on CPU: tiny model, Korean prompts from a CSV with categories, a LoRA-less run,
    /// MP4s, sidecars, the gallery; then again (nothing redone).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: enginePython)))
    func generatesVideosSidecarsAndAGallery() throws {
        let folder = BinaryRunner.temporaryFolder()
        let model = folder.appendingPathComponent("model")
        let tiny = Process()
        tiny.executableURL = URL(fileURLWithPath: Self.enginePython)
        tiny.arguments = ["-m", "wanlora_engine", "tiny-model", "--out", model.path, "--layout", "official"]
        tiny.environment = ProcessInfo.processInfo.environment.merging([
            "PYTHONPATH": Self.repoRoot.appendingPathComponent("engine").path
        ]) { $1 }
        tiny.standardError = FileHandle.nullDevice
        try tiny.run()
        tiny.waitUntilExit()
        try #require(tiny.terminationStatus == 0)
        let toml = try config(in: folder, model: model.path)
        let prompts = folder.appendingPathComponent("prompts.csv")
        try Data("category,prompt\n축제,\"등불 축제, 밤거리\"\n공간/건축,한옥 마을의 지붕\n".utf8).write(to: prompts)
        let out = folder.appendingPathComponent("samples")
        let arguments = [
            "sample", "--config", toml.path, "--prompts", prompts.path, "--out", out.path, "--device", "cpu",
            "--engine-python", Self.enginePython,
        ]
        let result = try BinaryRunner.run(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("engine plan: 4 steps (3 high, 1 low), everything on the CPU"))
        #expect(result.stderr.contains("video 2/2 0002 [공간/건축], seed 43: made in"))
        #expect(result.stdout.contains("2 of 2 videos in \(out.path)/videos; gallery: \(out.path)/index.html"))
        for id in ["0001", "0002"] {
            let video = out.appendingPathComponent("videos/\(id).mp4")
            let size = try #require(try FileManager.default.attributesOfItem(atPath: video.path)[.size] as? Int)
            #expect(size > 1000)
            let header = try Data(contentsOf: video).prefix(12)
            #expect(String(decoding: header.suffix(8).prefix(4), as: UTF8.self) == "ftyp")  // an MP4 container
        }
        let gallery = try String(contentsOf: out.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(
            gallery.contains("<h2>축제</h2>") && gallery.contains("등불 축제, 밤거리") && gallery.contains("videos/0002.mp4"))

        let again = try BinaryRunner.run(arguments)
        #expect(again.status == 0)
        #expect(
            again.stderr.contains("kept (made earlier with the same settings)") && !again.stderr.contains("step 1/4"))

        // Other settings into the same folder are refused, and nothing on stdout says otherwise (#22.6).
        let refused = try BinaryRunner.run(arguments + ["--seed", "7"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("pass --overwrite"), "\(refused.stderr)")
        #expect(refused.stdout.isEmpty, "\(refused.stdout)")
    }
}
