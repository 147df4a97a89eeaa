import Config
import Foundation
import Testing

@testable import Evaluation

@Suite struct EvaluationJobTests {
    @Test func emptyWeightKeysResolveToTheStandardFilesInsideWeightsDir() throws {
        var config = WanLoRAConfig.preset(.v100)
        config.eval.weightsDir = "models/eval"
        config.eval.inceptionWeights = "/opt/inception.pth"
        config.eval.clipTextModel = "~/mclip"
        let job = EvaluationJob(
            config: config, configDir: "/project", generated: "samples", reference: "../data/val.csv",
            out: "eval", workingDir: "/work/run")
        #expect(job.fvd.i3dWeights == "/project/models/eval/i3d_pretrained_400.pt")
        #expect(job.inception.weights == "/opt/inception.pth")
        #expect(job.lpips.linearWeights == "/project/models/eval/lpips/v0.1/alex.pth")
        #expect(job.lpips.backboneWeights == nil)  // standard backbone absent and none configured
        #expect(job.clip.imageModel == "/project/models/eval/clip-vit-base-patch32")
        #expect(job.clip.textModel == NSHomeDirectory() + "/mclip")
        #expect(job.inputs.generatedDir == "/work/run/samples" && job.inputs.referenceManifest == "/work/data/val.csv")
        #expect(job.outDir == "/work/run/eval")
        // the V100 preset samples 49 frames at 1280x720, 16 fps: the decoding geometry follows the sample section
        #expect(job.video == .init(width: 1280, height: 720, fps: 16, maxFrames: 49))
        #expect(job.metrics == ["fvd", "is", "lpips", "clip", "temporal"])
        #expect(job.fvd.frames == 16 && job.fvd.minSamples == 256 && job.inception.splits == 10)
        #expect(job.inputs.seed == 42 && job.inputs.referencePerCategory == 256)
    }

    @Test func vggNamesItsOwnFilesAndAnExistingBackboneIsUsed() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("eval-job-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        _ = FileManager.default.createFile(
            atPath: folder.appendingPathComponent("vgg16-397923af.pth").path, contents: Data([0]))
        var config = WanLoRAConfig.defaults
        config.eval.weightsDir = folder.path
        config.eval.lpipsNet = .vgg
        let job = EvaluationJob(
            config: config, configDir: "/", generated: "g", reference: "r.csv", out: "o", workingDir: "/w",
            metrics: [.lpips])
        #expect(job.lpips.linearWeights == folder.path + "/lpips/v0.1/vgg.pth")
        #expect(job.lpips.backboneWeights == folder.path + "/vgg16-397923af.pth")
        #expect(job.requiredFiles.map(\.key) == ["eval.lpips_weights", "eval.lpips_backbone_weights"])
        let error = try #require(throws: MissingWeightsError.self) { try job.checkWeightFiles() }
        #expect(
            error.problem == "\(folder.path)/lpips/v0.1/vgg.pth does not exist (the file eval.lpips_weights points at)."
        )
        #expect(error.remedy.contains("docs/evaluate.md") && error.remedy.contains("--metrics"))
    }

    @Test func jsonHasTheEngineKeys() throws {
        let job = EvaluationJob(
            config: .defaults, configDir: "/c", generated: "/g", reference: "/r.csv", out: "/o",
            workingDir: "/w", device: "cpu", metrics: [.clip, .temporal], batchSize: 4)
        let object = try #require(try JSONSerialization.jsonObject(with: job.jsonData()) as? [String: Any])
        #expect(
            Set(object.keys) == [
                "schema_version", "kind", "out_dir", "device", "metrics", "frames_per_video", "batch_size",
                "inputs", "video", "fvd", "inception", "lpips", "clip",
            ])
        #expect(object["kind"] as? String == "evaluate" && object["device"] as? String == "cpu")
        let fvd = try #require(object["fvd"] as? [String: Any])
        #expect(Set(fvd.keys) == ["i3d_weights", "frames", "min_samples"])
        let inputs = try #require(object["inputs"] as? [String: Any])
        #expect(
            Set(inputs.keys) == [
                "generated_dir", "reference_manifest", "category_column", "reference_per_category", "seed",
            ])
        let lpips = try #require(object["lpips"] as? [String: Any])
        #expect(Set(lpips.keys) == ["net", "linear_weights", "backbone_weights", "size", "max_pairs"])
        #expect(lpips["backbone_weights"] is NSNull)  // written as null, not left out: the engine needs every key
    }

    @Test func configKeysReadAndWriteTheEvalSettings() throws {
        let config = try ConfigLoader.parse(
            toml: """
                [eval]
                weights_dir = "w"
                lpips_net = "vgg"
                fvd_frames = 33
                frames_per_video = 4
                reference_per_category = 0
                clip_text_model = "models/korean-clip"
                """)
        #expect(config.eval.weightsDir == "w" && config.eval.lpipsNet == .vgg && config.eval.fvdFrames == 33)
        #expect(config.eval.framesPerVideo == 4 && config.eval.referencePerCategory == 0)
        #expect(config.eval.clipTextModel == "models/korean-clip" && config.eval.i3dWeights == "")
    }
}

/// `evaluate --generated` takes the folder `sample --out` wrote (its videos are in OUT/videos) as well as a
/// folder of MP4s (#22.6).
@Test func theGeneratedFolderMayBeASampleOutputFolder() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("eval-generated-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let sample = root.appendingPathComponent("s")
    try FileManager.default.createDirectory(
        at: sample.appendingPathComponent("videos"), withIntermediateDirectories: true)
    for file in ["sample-job.json", "index.html", "videos/0001.mp4", "videos/0001.json"] {
        _ = FileManager.default.createFile(atPath: sample.appendingPathComponent(file).path, contents: Data([0]))
    }
    let flat = root.appendingPathComponent("flat")
    try FileManager.default.createDirectory(at: flat, withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: flat.appendingPathComponent("g0.mp4").path, contents: Data([0]))
    func generatedDir(_ folder: String) -> String {
        EvaluationJob(
            config: .defaults, configDir: root.path, generated: folder, reference: "val.csv", out: "eval",
            workingDir: root.path
        ).inputs.generatedDir
    }
    #expect(generatedDir("s") == sample.appendingPathComponent("videos").path)
    #expect(generatedDir("s/videos") == sample.appendingPathComponent("videos").path)
    #expect(generatedDir("flat") == flat.path)
}
