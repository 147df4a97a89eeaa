import Config

/// What `wanlora cache` writes and how long it takes.
///
/// Bytes: each item's bf16 latent and its caption's UMT5 embedding at the caption's own token count
/// (the engine stores it trimmed and pads it with zeros to 512 tokens when it builds a batch). The
/// planner knows a dataset's mean caption length in characters (the manifest statistics, SPEC §2), not
/// its tokens: it estimates them with `charactersPerToken`.
///
/// Time: seconds per item measured on one H100 (`bench/cache_encode.py`, docs/BENCHMARKS.md) with the
/// engine's own encoders (VAE in float32 as the cache stage loads it, UMT5 in bf16), scaled to other
/// shapes by the FLOP model's ratio to the nearest measured shape and to other GPUs by their dense
/// matrix rate. `wanlora cache` runs one process per GPU of hardware.gpus_per_node × hardware.nodes, each
/// on its own share of the shards, so the hours divide by that count.
public enum CacheModel {
    /// Seconds one GPU spends per item in the cache stage, at the shapes measured.
    public struct EncodeRates: Sendable, Equatable, Codable {
        public var gpu: String
        /// VAE encode of one 1280×720 clip of 81 and of 49 frames, and of one 1280×720 image.
        public var vae81Frames: Double
        public var vae49Frames: Double
        public var vaeImage: Double
        /// UMT5-XXL encode of one caption padded to 512 tokens (the cache stage pads to training.text_length).
        public var umt5Caption512: Double
        /// Width × height the VAE was measured at.
        public var width: Int
        public var height: Int
    }

    /// Measured on one H100 80GB (bench/cache_encode.py; docs/BENCHMARKS.md, "Cache encoders").
    public static let measured = EncodeRates(
        gpu: "H100", vae81Frames: 2.0, vae49Frames: 1.2, vaeImage: 0.05, umt5Caption512: 0.05, width: 1280,
        height: 720)

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

    /// Seconds of one VAE encode of `frames` frames at width × height on `gpu`: the nearest measured shape
    /// scaled by the FLOP model, then by the GPUs' matrix rates.
    public static func vaeSeconds(
        _ vae: VAESpec, frames: Int, width: Int, height: Int, gpu: GPU, precision: MixedPrecision,
        rates: EncodeRates = measured
    ) throws -> Double {
        let (seconds, measuredFrames): (Double, Int) =
            frames == 1 ? (rates.vaeImage, 1) : frames >= 65 ? (rates.vae81Frames, 81) : (rates.vae49Frames, 49)
        let flops = FlopModel.vaeEncoder(vae, frames: frames, width: width, height: height)
        let reference = FlopModel.vaeEncoder(vae, frames: measuredFrames, width: rates.width, height: rates.height)
        return seconds * flops / reference * (try gpuFactor(gpu, precision: precision, rates: rates))
    }

    /// Seconds of one UMT5 encode of a caption padded to `textLength` tokens on `gpu`.
    public static func umt5Seconds(
        textLength: Int, gpu: GPU, precision: MixedPrecision, rates: EncodeRates = measured
    ) throws -> Double {
        rates.umt5Caption512 * Double(textLength) / 512 * (try gpuFactor(gpu, precision: precision, rates: rates))
    }

    /// How much longer `gpu` takes than the measured one: the ratio of their dense matrix rates.
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
