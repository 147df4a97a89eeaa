import Foundation
import Testing

/// `wanlora evaluate` as a user runs it: the built binary driving the real engine on real H.264 clips, with
/// random-weight metric networks written by the engine under their real file names.
@Suite(.serialized) struct EvaluateEndToEndTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let enginePython = repoRoot.appendingPathComponent("engine/.venv/bin/python").path
    static var haveEngine: Bool { FileManager.default.isExecutableFile(atPath: enginePython) }

    /// Reference: 2 clips of 축제 and 1 of 자연/풍경; generated: 2 of 축제 (one prompted by a reference caption)
    /// and 1 of 자연/풍경, each with its sidecar; random CLIP and LPIPS files under weights/.
    static func makeInputs() throws -> URL {
        let root = BinaryRunner.temporaryFolder()
        let script = """
            import csv, json, sys
            from pathlib import Path
            from wanlora_engine.demo_data import CAPTIONS, write_video
            from wanlora_engine.evaluate.random_weights import write_clip_pair, write_lpips
            root = Path(sys.argv[1])
            (root / "ref").mkdir(); (root / "generated").mkdir()
            rows = []
            for n, category in enumerate(["축제", "축제", "자연/풍경"]):
                write_video(root / "ref" / f"r{n}.mp4", seed=n, frames=9, width=64, height=48)
                rows.append({"path": f"ref/r{n}.mp4", "caption": \
            CAPTIONS[n], "category": category, "media_type": "video"})
            with open(root / "val.csv", "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0])); w.writeheader(); w.writerows(rows)
            for n, (category, prompt) in enumerate([("축제", CAPTIONS[0]), ("축제", "밤의 축제"), ("자연/풍경", CAPTIONS[4])]):
                write_video(root / "generated" / f"g{n}.mp4", seed=n + 1, frames=9, width=64, height=48)
                (root / "generated" / f"g{n}.json").write_text(json.dumps({"id": \
            f"g{n}", "prompt": prompt, "category": category, "seed": n}))
            weights = root / "weights"
            write_clip_pair(weights / "clip-vit-base-patch32", weights / "clip-ViT-B-32-multilingual-v1")
            write_lpips(weights / "lpips/v0.1/alex.pth", weights / "alexnet-owt-7be5be79.pth")
            (root / "eval.toml").write_text('[sample]\\nresolution = \
            "64x48"\\n[eval]\\nframes_per_video = 3\\nlpips_size = 32\\n')
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: enginePython)
        process.arguments = ["-c", script, root.path]
        process.environment = ProcessInfo.processInfo.environment.merging(
            ["PYTHONPATH": repoRoot.appendingPathComponent("engine").path, "HF_HUB_OFFLINE": "1"]) { $1 }
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "could not write the test inputs")
        return root
    }

    @Test(.enabled(if: haveEngine, "needs engine/.venv (make -C engine venv; make test creates it first)"))
    func scoresGeneratedVideosPerCategoryAndWritesThePage() throws {
        let root = try Self.makeInputs()
        defer { try? FileManager.default.removeItem(at: root) }
        let result = try BinaryRunner.run(
            [
                "evaluate", "--generated", "generated", "--reference", "val.csv", "--out", "eval",
                "--config", "eval.toml", "--metrics", "clip,temporal,lpips", "--device", "cpu",
            ],
            in: root)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("category") == true)
        #expect(
            lines.contains { $0.hasPrefix("자연/풍경") } && lines.contains { $0.hasPrefix("축제") }
                && lines.contains { $0.hasPrefix("all") })
        #expect(result.stdout.contains("wrote \(root.path)/eval/metrics.json"))
        #expect(result.stderr.contains("evaluate: 3 generated videos in 2 categories, 3 reference clips (of 3)"))
        #expect(result.stderr.contains("evaluate: 6 of 6 videos (100%)"))
        for file in ["metrics.json", "report.html", "evaluate.json", "evaluate-events.jsonl"] {
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("eval/\(file)").path), "\(file)")
        }
        let metrics = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("eval/metrics.json")))
                as? [String: Any])
        let overall = try #require(metrics["overall"] as? [String: Any])
        #expect(overall["fvd"] == nil && overall["clip_score"] != nil)
        let lpips = try #require(overall["lpips"] as? [String: Any])
        #expect((lpips["to_reference"] as? [String: Any])?["pairs"] as? Int == 1)  // g0 was prompted with r0's caption
        let page = try String(contentsOf: root.appendingPathComponent("eval/report.html"), encoding: .utf8)
        #expect(page.contains("<th>축제</th>") && page.contains("CLIP score"))
    }

    @Test func aMissingWeightFileStopsBeforeTheEngineStarts() throws {
        let root = BinaryRunner.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("generated"), withIntermediateDirectories: true)
        try Data("path,caption,category\n".utf8).write(to: root.appendingPathComponent("val.csv"))
        try Data("[eval]\nweights_dir = \"models\"\n".utf8).write(to: root.appendingPathComponent("eval.toml"))
        let result = try BinaryRunner.run(
            [
                "evaluate", "--generated", "generated", "--reference", "val.csv", "--config", "eval.toml",
                "--out", "eval",
            ], in: root)
        #expect(result.status == 1)
        #expect(
            result.stderr.contains(
                "error: \(root.path)/models/i3d_pretrained_400.pt does not exist (the file eval.i3d_weights points at)."
            ))
        #expect(result.stderr.contains("how to fix: Put the file there (docs/evaluate.md"))
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("eval/evaluate-events.jsonl").path))
    }

    @Test func helpTeachesTheInputsAndTheWeights() throws {
        let result = try BinaryRunner.run(["evaluate", "--help"])
        #expect(result.status == 0)
        for text in [
            "--generated <dir>", "--reference <manifest>", "--metrics <list>", "i3d_pretrained_400.pt",
            "clip-ViT-B-32-multilingual-v1", "docs/evaluate.md",
        ] {
            #expect(result.stdout.contains(text), "\(text)")
        }
        let bad = try BinaryRunner.run(["evaluate", "--generated", "g", "--reference", "r.csv", "--metrics", "fvd,fid"])
        #expect(bad.status != 0 && bad.stderr.contains("unknown metric \"fid\""))
    }
}
