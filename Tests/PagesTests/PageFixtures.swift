import Evaluation
import Foundation
import Manifest
import Runs
import Sampling
import Statistics
import Support
import Testing

@testable import Reports

/// The four pages, rendered from small fixtures with Korean text, written into a temporary folder.
enum PageFixtures {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let engineFixtures = repoRoot.appendingPathComponent("engine/tests/fixtures")

    /// Three hand-analysed captions (nouns and stems as Kiwi returns them) in twelve items of six categories;
    /// val left at 1920×1080, so the report's critical finding asks to run `wanlora prepare`.
    static func report() -> AnalysisReport {
        let captions: [(text: String, morphemes: [String], words: [String])] = [
            ("사람들이 모여 있다", ["사람/NNG", "들/XSN", "이/JKS", "모이/VV", "어/EC", "있/VX", "다/EF"], ["사람", "모이다"]),
            ("바다와 하늘이 보인다", ["바다/NNG", "와/JC", "하늘/NNG", "이/JKS", "보이/VV", "ㄴ다/EF"], ["바다", "하늘", "보이다"]),
            ("한옥 마을의 거리 풍경", ["한옥/NNG", "마을/NNG", "의/JKG", "거리/NNG", "풍경/NNG"], ["한옥", "마을", "거리", "풍경"]),
        ]
        let categories = ["생활/문화", "자연/풍경", "공간/건축", "역사/사회", "무형문화유산", "축제"]
        func items(count: Int, size: (Int, Int), offset: Int) -> ([ManifestItem], [Int32]) {
            var items: [ManifestItem] = []
            var numbers: [Int32] = []
            for index in 0..<count {
                let caption = (index + offset) % captions.count
                let video = index % 2 == 0
                items.append(
                    ManifestItem(
                        line: index + 2, path: "media/\(offset)-\(index).\(video ? "mp4" : "jpg")",
                        mediaType: video ? .video : .image, resolution: Resolution(width: size.0, height: size.1),
                        duration: video ? 4.5 + Double(index) * 3 : nil,
                        category: categories[(index * 7 + offset) % categories.count],
                        caption: captions[caption].text))
                numbers.append(Int32(caption))
            }
            return (items, numbers)
        }
        func manifest(_ items: [ManifestItem], _ source: String) -> Manifest {
            Manifest(
                source: source, format: .csv, columns: [], columnMap: ResolvedColumns(indices: [:], header: []),
                items: items, rejected: [])
        }
        let (train, trainNumbers) = items(count: 12, size: (1280, 720), offset: 0)
        let (val, valNumbers) = items(count: 6, size: (1920, 1080), offset: 1)
        let table = MorphemeTable(captions: captions.map { (.hangul, $0.morphemes, $0.words) })
        let morphemes = Analyzer.Morphemes(
            table: table, options: MorphemeOptions(topWords: 10, templateWords: 2, templateThreshold: 3),
            info: MorphemeAnalysisInfo(
                analyser: "Kiwi (fixture)", unit: "caption", distinctCaptions: 3, templateWords: 2,
                templateThreshold: 3))
        return Analyzer.analyze(
            [
                NamedManifest(
                    name: "train", role: .split, manifest: manifest(train, "train.csv"), captionNumbers: trainNumbers),
                NamedManifest(
                    name: "val", role: .split, manifest: manifest(val, "val.csv"), captionNumbers: valNumbers),
            ], generator: "wanlora test", morphemes: morphemes)
    }

    /// A gallery of four videos in three categories; posters are small SVG pictures (no ffmpeg needed).
    static func gallery(in folder: URL) throws -> String {
        let videos = folder.appendingPathComponent("videos")
        try FileManager.default.createDirectory(at: videos, withIntermediateDirectories: true)
        let rows: [(String, String?, String, String)] = [
            ("0001", "축제", "등불 축제의 밤거리를 걷는 사람들", "#f59e0b"),
            ("0002", "공간/건축", "한옥 마을의 기와지붕 위로 해가 진다", "#0ea5e9"),
            ("0003", "축제", "불꽃놀이를 바라보는 관람객", "#ef4444"),
            ("0004", nil, "바다와 하늘이 맞닿은 수평선", "#10b981"),
        ]
        var sidecars: [SampleSidecar] = []
        for (index, (id, category, prompt, colour)) in rows.enumerated() {
            let url = engineFixtures.appendingPathComponent("sample-sidecar.json")
            var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            object["id"] = id
            object["index"] = index + 1
            object["category"] = category ?? NSNull()
            object["prompt"] = prompt
            var video = try #require(object["video"] as? [String: Any])
            video["file"] = "\(id).mp4"
            video["poster"] = "\(id).svg"
            object["video"] = video
            try JSONSerialization.data(withJSONObject: object).write(to: videos.appendingPathComponent("\(id).json"))
            try Data(
                ("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 64 48\"><rect width=\"64\" height=\"48\" "
                    + "fill=\"\(colour)\"/><circle cx=\"40\" cy=\"20\" r=\"9\" fill=\"#fff\" opacity=\".7\"/></svg>")
                    .utf8
            ).write(to: videos.appendingPathComponent("\(id).svg"))
        }
        sidecars = SampleGallery.sidecars(folder: folder.path).sidecars
        #expect(sidecars.count == rows.count)
        return SampleGallery.html(sidecars, title: "샘플 — demo run")
    }

    static func evaluation() throws -> String {
        let url = engineFixtures.appendingPathComponent("metrics.sample.json")
        return EvaluationReport.html(try EvaluationMetrics.decode(Data(contentsOf: url), source: url.path))
    }

    /// A 60-step training run: loss falling from 1.6, an evaluation every 10 steps at six timesteps, a
    /// warm-up then cosine learning rate, memory and throughput; CPU-like (no GPU memory) when `gpu` is false.
    static func runEvents(gpu: Bool = true) throws -> [EngineEvent] {
        var lines = [
            """
            {"event": "run_started", "schema_version": 1, "time": "2026-12-07T05:00:00.000Z", "elapsed_s": 0.0, \
            "stage": "train", "run_name": "국악-lora", "engine_version": "0.1.0", "torch_version": "2.13.0", \
            "diffusers_version": "0.42.1", "device": "cuda", "device_name": "NVIDIA H100", "world_size": 1, \
            "config_path": "/runs/x/config.resolved.json", "resumed_from_step": null}
            """,
            """
            {"event": "train_plan", "schema_version": 1, "time": "2026-12-07T05:00:01.000Z", "elapsed_s": 1.0, \
            "experts": ["high", "low"], "trainable_parameters": {"high": 2048, "low": 2048}, "train_samples": 960, \
            "val_samples": 64, "total_steps": 60, "samples_per_step": 16, "epochs": 1.0, "optimizer": "adamw8bit", \
            "mixed_precision": "bf16", "gradient_checkpointing": true, "overfit_samples": null}
            """,
        ]
        for step in 1...60 {
            let loss = 0.4 + 1.2 * exp(-Double(step) / 20)
            let lr = step <= 10 ? 1e-4 * Double(step) / 10 : 1e-4 * 0.5 * (1 + cos(Double.pi * Double(step - 10) / 50))
            let gpuPeak = gpu ? String(60_000_000_000 + step * 10_000_000) : "null"
            lines.append(
                "{\"event\": \"step\", \"schema_version\": 1, \"time\": \"2026-12-07T05:\(10 + step / 10):00.000Z\", "
                    + "\"elapsed_s\": \(Double(step) * 24), \"step\": \(step), \"total_steps\": 60, "
                    + "\"epoch\": \(Double(step) / 60), \"loss\": \(loss), \"loss_high\": \(loss * 1.1), "
                    + "\"loss_low\": \(loss * 0.95), \"samples_high\": 7, \"samples_low\": 9, \"lr\": \(lr), "
                    + "\"grad_norm\": 0.1, \"seconds_per_step\": \(24 - Double(step % 5) * 0.3), "
                    + "\"samples_per_second\": \(16 / (24 - Double(step % 5) * 0.3)), "
                    + "\"gpu_memory_allocated_bytes\": \(gpu ? "50000000000" : "null"), "
                    + "\"gpu_memory_peak_bytes\": \(gpuPeak), \"host_memory_peak_bytes\": 120000000000, "
                    + "\"eta_seconds\": \(Double(60 - step) * 24)}")
            if step % 10 == 0 {
                let byTimestep = [100, 300, 500, 700, 900, 950].map { t in
                    "\"\(t)\": \(0.3 + Double(t) / 2000 + exp(-Double(step) / 25))"
                }
                lines.append(
                    "{\"event\": \"eval\", \"schema_version\": 1, \"time\": \"2026-12-07T05:30:00.000Z\", "
                        + "\"elapsed_s\": 1.0, \"step\": \(step), \"split\": \"val\", \"samples\": 64, "
                        + "\"val_loss\": \(0.55 + exp(-Double(step) / 25)), \"val_loss_high\": null, "
                        + "\"val_loss_low\": null, \"losses_by_timestep\": {\(byTimestep.joined(separator: ", "))}}")
            }
        }
        return try lines.map { try EngineEvent(line: $0) }
    }

    static func run() throws -> String {
        RunPage.html(name: "국악-lora", events: try runEvents(), status: nil)
    }

    /// The four pages as files of a fresh temporary folder, by name.
    static func writeAll() throws -> (folder: URL, pages: [String: URL]) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wanlora-pages-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let gallery = folder.appendingPathComponent("samples")
        let pages: [(String, URL, String)] = [
            ("report", folder.appendingPathComponent("report.html"), HTMLReport.render(report())),
            ("gallery", gallery.appendingPathComponent("index.html"), try PageFixtures.gallery(in: gallery)),
            ("evaluation", folder.appendingPathComponent("evaluation.html"), try evaluation()),
            ("run", folder.appendingPathComponent("run.html"), try run()),
        ]
        var out: [String: URL] = [:]
        for (name, url, html) in pages {
            try Data(html.utf8).write(to: url)
            out[name] = url
        }
        return (folder, out)
    }
}
