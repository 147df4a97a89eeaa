import Config

/// What `wanlora cache` writes and how long it takes.
///
/// Bytes: each item's bf16 latent and its caption's UMT5 embedding at the caption's own token count
/// (the engine stores it trimmed and pads it with zeros to 512 tokens when it builds a batch). The
/// planner knows a dataset's mean caption length in characters (the manifest statistics, SPEC §2), not
/// its tokens: it estimates them with `charactersPerToken`.
///
/// Time: seconds per item at reference shapes on a reference GPU (`rates`), scaled to other shapes by the
/// FLOP model's ratio to the nearest reference shape and to other GPUs by their dense matrix rate.
/// `bench/cache_encode.py` measures those seconds on one GPU with the engine's own encoders (VAE in float32
/// as the cache stage loads it, UMT5 in bf16) and a 200-item run of the cache stage to check the sum; until
/// its figures are entered here, `rates` is the FLOP model's estimate on the H100 (the planner's earlier
/// cache time), and the plan says so. `wanlora cache` runs one process per GPU of hardware.gpus_per_node ×
/// hardware.nodes, each on its own share of the shards, so the hours divide by that count.
public enum CacheModel {
    /// Seconds one GPU spends per item in the cache stage, at the reference shapes.
    public struct EncodeRates: Sendable, Equatable, Codable {
        /// Where the seconds come from: "measured" (bench/cache_encode.py) or "FLOP-model estimate".
        public var source: String
        public var gpu: String
        /// VAE encode of one 1280×720 clip of 81 and of 49 frames, and of one 1280×720 image.
        public var vae81Frames: Double
        public var vae49Frames: Double
        public var vaeImage: Double
        /// UMT5-XXL encode of one caption padded to 512 tokens (the cache stage pads to training.text_length).
        public var umt5Caption512: Double
        /// Width × height of the reference VAE seconds.
        public var width: Int
        public var height: Int
    }

    /// The seconds the plan uses: the FLOP model's estimate on the H100 until bench/cache_encode.py's
    /// measurement replaces it (docs/BENCHMARKS.md, "Cache encoders", says what is measured).
    public static let rates = flopEstimate(gpu: GPU.h100, architecture: .wan22T2VA14B, width: 1280, height: 720)

    /// The FLOP model's seconds: VAE convolutions at TimeModel.convolutionEfficiency of the bf16 rate, UMT5
    /// matrix products at the GPU's GEMM efficiency.
    public static func flopEstimate(gpu: GPU, architecture a: Architecture, width: Int, height: Int)
        -> EncodeRates
    {
        let rate = gpu.matrixTFLOPs(for: .bf16).rate * 1e12
        func vae(_ frames: Int) -> Double {
            FlopModel.vaeEncoder(a.vae, frames: frames, width: width, height: height)
                / (rate * TimeModel.convolutionEfficiency)
        }
        return EncodeRates(
            source: "FLOP-model estimate", gpu: gpu.name, vae81Frames: vae(81), vae49Frames: vae(49),
            vaeImage: vae(1),
            umt5Caption512: FlopModel.textEncoder(a.textEncoder, tokens: 512) / (rate * gpu.gemmEfficiency),
            width: width, height: height)
    }

    /// Characters of a cleaned Korean caption per UMT5 token: an estimate, not a measurement. mT5-family
    /// SentencePiece vocabularies (UMT5's is 256,384 pieces) split a Korean word into about 2 pieces; the
    /// archive's train captions have 106.4 words in 440 characters (SPEC §2): 440 / (2 × 106.4) ≈ 2.07,
    /// rounded down to 2.0 so that the estimate errs towards more bytes. The cache's index records every
    /// caption's real count (`caption_tokens`, `text_tokens`).
    public static let charactersPerToken = 2.0

    /// The archive's mean caption length in characters (SPEC §2, all splits: 440).
    public static let archiveMeanCaptionCharacters = 440.0

    /// Estimated UMT5 tokens of a caption of `characters` characters, end-of-sequence token included, cut at
    /// `textLength` as the engine cuts it.
    public static func captionTokens(characters: Double, textLength: Int) -> Int {
        min(textLength, Int((characters / charactersPerToken).rounded(.up)) + 1)
    }

    /// Seconds of one VAE encode of `frames` frames at width × height on `gpu`: the nearest reference shape
    /// scaled by the FLOP model, then by the GPUs' matrix rates.
    public static func vaeSeconds(
        _ vae: VAESpec, frames: Int, width: Int, height: Int, gpu: GPU, precision: MixedPrecision,
        rates: EncodeRates = CacheModel.rates
    ) throws -> Double {
        let (seconds, measuredFrames): (Double, Int) =
            frames == 1 ? (rates.vaeImage, 1) : frames >= 65 ? (rates.vae81Frames, 81) : (rates.vae49Frames, 49)
        let flops = FlopModel.vaeEncoder(vae, frames: frames, width: width, height: height)
        let reference = FlopModel.vaeEncoder(vae, frames: measuredFrames, width: rates.width, height: rates.height)
        return seconds * flops / reference * (try gpuFactor(gpu, precision: precision, rates: rates))
    }

    /// Seconds of one UMT5 encode of a caption padded to `textLength` tokens on `gpu`.
    public static func umt5Seconds(
        textLength: Int, gpu: GPU, precision: MixedPrecision, rates: EncodeRates = CacheModel.rates
    ) throws -> Double {
        rates.umt5Caption512 * Double(textLength) / 512 * (try gpuFactor(gpu, precision: precision, rates: rates))
    }

    /// How much longer `gpu` takes than the reference one: the ratio of their dense matrix rates.
    static func gpuFactor(_ gpu: GPU, precision: MixedPrecision, rates: EncodeRates) throws -> Double {
        let reference = try GPU.named(rates.gpu).matrixTFLOPs(for: precision).rate
        return reference / gpu.matrixTFLOPs(for: precision).rate
    }

    /// The cache of `dataset` at the configuration's clip shape and caption length.
    static func cache(
        config: WanLoRAConfig, architecture a: Architecture, gpu: GPU, video: ClipGeometry, image: ClipGeometry,
        dataset: DatasetSize, diskFreeBytes: Int?
    ) throws -> Plan.Cache {
        let tr = config.training
        let tokens = captionTokens(characters: dataset.meanCaptionCharacters, textLength: tr.textLength)
        let textBytes = tokens * a.textEncoder.dim * 2
        let totalBytes =
            dataset.videos * video.latentBytesBF16 + dataset.images * image.latentBytesBF16 + dataset.samples
            * textBytes
        let precision = tr.mixedPrecision
        let videoSeconds = try vaeSeconds(
            a.vae, frames: video.frames, width: video.width, height: video.height, gpu: gpu, precision: precision)
        let imageSeconds = try vaeSeconds(
            a.vae, frames: 1, width: video.width, height: video.height, gpu: gpu, precision: precision)
        let textSeconds = try umt5Seconds(textLength: tr.textLength, gpu: gpu, precision: precision)
        let gpuSeconds =
            Double(dataset.videos) * (videoSeconds + textSeconds) + Double(dataset.images)
            * (imageSeconds + textSeconds)
        let gpus = config.hardware.worldSize
        return Plan.Cache(
            latentBytesPerVideo: video.latentBytesBF16, latentBytesPerImage: image.latentBytesBF16,
            textTokensPerCaption: tokens, meanCaptionCharacters: dataset.meanCaptionCharacters,
            textBytesPerCaption: textBytes, totalBytes: totalBytes, diskFreeBytes: diskFreeBytes,
            secondsPerVideo: videoSeconds + textSeconds, secondsPerImage: imageSeconds + textSeconds,
            gpus: gpus, buildHours: gpuSeconds / 3600 / Double(gpus), buildGPUHours: gpuSeconds / 3600)
    }
}
