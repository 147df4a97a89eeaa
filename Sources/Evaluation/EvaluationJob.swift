import Config
import Foundation
import Support

/// The standard file names of the metric networks inside `eval.weights_dir` (docs/evaluate.md says where
/// each comes from). A configuration key left empty means this name.
public enum EvalWeightFiles {
    public static let i3d = "i3d_pretrained_400.pt"
    public static let inception = "inception_v3_google-0cc3c7bd.pth"
    public static func lpipsLinear(_ net: LPIPSNet) -> String { "lpips/v0.1/\(net.rawValue).pth" }
    public static func lpipsBackbone(_ net: LPIPSNet) -> String {
        net == .alex ? "alexnet-owt-7be5be79.pth" : "vgg16-397923af.pth"
    }
    public static let clipImage = "clip-vit-base-patch32"
    public static let clipText = "clip-ViT-B-32-multilingual-v1"
}

/// `evaluate.json`: what the engine's `evaluate` stage reads (docs/engine-contract.md §8). Every value is
/// resolved here, from the configuration and the command line; the engine has no defaults of its own.
public struct EvaluationJob: Sendable, Equatable, Codable {
    public static let schemaVersion = 1

    public struct Inputs: Sendable, Equatable, Codable {
        public var generatedDir: String
        public var referenceManifest: String
        @ExplicitNull public var categoryColumn: String?
        public var referencePerCategory: Int
        public var seed: Int
    }

    public struct Video: Sendable, Equatable, Codable {
        public var width: Int
        public var height: Int
        public var fps: Int
        /// Frames decoded per video at most (the first ones): the sampled length, so a long source stays bounded.
        public var maxFrames: Int
    }

    public struct FVD: Sendable, Equatable, Codable {
        public var i3dWeights: String
        public var frames: Int
        public var minSamples: Int
    }

    public struct Inception: Sendable, Equatable, Codable {
        public var weights: String
        public var splits: Int
    }

    public struct LPIPS: Sendable, Equatable, Codable {
        public var net: String
        public var linearWeights: String
        /// null: `linear_weights` is one full LPIPS state dict.
        @ExplicitNull public var backboneWeights: String?
        public var size: Int
        public var maxPairs: Int
    }

    public struct CLIP: Sendable, Equatable, Codable {
        public var imageModel: String
        public var textModel: String
    }

    public var schemaVersion: Int
    public var kind: String
    public var outDir: String
    public var device: String
    public var metrics: [String]
    public var framesPerVideo: Int
    public var batchSize: Int
    public var inputs: Inputs
    public var video: Video
    public var fvd: FVD
    public var inception: Inception
    public var lpips: LPIPS
    public var clip: CLIP

    /// The folder the videos are in: `folder` itself, or its `videos/` when `folder` is what
    /// `wanlora sample --out` wrote (OUT/videos/ID.mp4 beside OUT/sample-job.json and OUT/index.html).
    public static func videoFolder(_ folder: String) -> String {
        let videos = (folder as NSString).appendingPathComponent("videos")
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: videos, isDirectory: &isFolder), isFolder.boolValue else {
            return folder
        }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return files.contains { $0.lowercased().hasSuffix(".mp4") } ? folder : videos
    }

    /// - Parameters:
    ///   - config: the settings (eval section for the metrics, sample section for the videos' geometry).
    ///   - configDir: folder that relative paths of the configuration are relative to.
    ///   - generated, reference, out: command-line paths, relative to `workingDir`.
    public init(
        config: WanLoRAConfig, configDir: String, generated: String, reference: String, out: String,
        workingDir: String, device: String = "auto", metrics: [EvalMetric]? = nil, batchSize: Int = 16
    ) {
        let eval = config.eval
        func fromConfig(_ path: String) -> String { PathMath.absolute(path, base: configDir) }
        let weights = fromConfig(eval.weightsDir)
        func weight(_ configured: String, _ standard: String) -> String {
            configured.isEmpty ? PathMath.absolute(standard, base: weights) : fromConfig(configured)
        }
        schemaVersion = Self.schemaVersion
        kind = "evaluate"
        outDir = PathMath.absolute(out, base: workingDir)
        self.device = device
        self.metrics = (metrics ?? eval.metrics).map(\.rawValue)
        framesPerVideo = eval.framesPerVideo
        self.batchSize = batchSize
        inputs = Inputs(
            generatedDir: Self.videoFolder(PathMath.absolute(generated, base: workingDir)),
            referenceManifest: PathMath.absolute(reference, base: workingDir),
            categoryColumn: "category", referencePerCategory: eval.referencePerCategory,
            seed: config.training.seed)
        video = Video(
            width: config.sample.width, height: config.sample.height, fps: config.sample.fps,
            maxFrames: config.sample.frames)
        fvd = FVD(
            i3dWeights: weight(eval.i3dWeights, EvalWeightFiles.i3d), frames: eval.fvdFrames,
            minSamples: eval.fvdMinSamples)
        inception = Inception(weights: weight(eval.inceptionWeights, EvalWeightFiles.inception), splits: eval.isSplits)
        // No backbone file when none is configured and the standard one is absent: lpips_weights may then be
        // one full LPIPS state dict (the engine says so if it holds only the linear layers).
        let backbone = weight(eval.lpipsBackboneWeights, EvalWeightFiles.lpipsBackbone(eval.lpipsNet))
        let backboneGiven = !eval.lpipsBackboneWeights.isEmpty || FileManager.default.fileExists(atPath: backbone)
        lpips = LPIPS(
            net: eval.lpipsNet.rawValue,
            linearWeights: weight(eval.lpipsWeights, EvalWeightFiles.lpipsLinear(eval.lpipsNet)),
            backboneWeights: backboneGiven ? backbone : nil,
            size: eval.lpipsSize, maxPairs: eval.lpipsMaxPairs)
        clip = CLIP(
            imageModel: weight(eval.clipImageModel, EvalWeightFiles.clipImage),
            textModel: weight(eval.clipTextModel, EvalWeightFiles.clipText))
    }

    /// The weight files and folders the chosen metrics need, with the metric each serves; for checking
    /// before the engine starts (a missing file names the key to change).
    public var requiredFiles: [(path: String, key: String, folder: Bool)] {
        var files: [(String, String, Bool)] = []
        if metrics.contains("fvd") { files.append((fvd.i3dWeights, "eval.i3d_weights", false)) }
        if metrics.contains("is") { files.append((inception.weights, "eval.inception_weights", false)) }
        if metrics.contains("lpips") {
            files.append((lpips.linearWeights, "eval.lpips_weights", false))
            if let backbone = lpips.backboneWeights { files.append((backbone, "eval.lpips_backbone_weights", false)) }
        }
        if metrics.contains("clip") || metrics.contains("temporal") {
            files.append((clip.imageModel, "eval.clip_image_model", true))
        }
        if metrics.contains("clip") { files.append((clip.textModel, "eval.clip_text_model", true)) }
        return files
    }

    /// Throws `MissingWeightsError` for the first configured file that does not exist.
    public func checkWeightFiles() throws {
        for file in requiredFiles where !FileManager.default.fileExists(atPath: file.path) {
            throw MissingWeightsError(path: file.path, key: file.key)
        }
    }

    /// The file as the engine reads it (`JobJSON`: sorted snake_case keys, every key present).
    public func jsonData() throws -> Data { try JobJSON.data(self) }
}

/// A metric network file the configuration points at does not exist.
public struct MissingWeightsError: ActionableError {
    public let path: String
    public let key: String
    public init(path: String, key: String) {
        self.path = path
        self.key = key
    }
    public var problem: String { "\(path) does not exist (the file \(key) points at)." }
    public var remedy: String {
        "Put the file there (docs/evaluate.md names each file and "
            + "where it comes from; nothing is downloaded), set \(key) "
            + "in the configuration to your copy, or leave the metric out with --metrics. For a dry run, "
            + "`python -m wanlora_engine eval-weights --out weights` writes random stand-ins."
    }
}
