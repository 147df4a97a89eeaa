import Config

/// What `wanlora cache` writes and how long it takes.
///
/// Bytes: each item's bf16 latent and its caption's UMT5 embedding at the caption's own token count
/// (the engine stores it trimmed and pads it with zeros to 512 tokens when it builds a batch). The
/// planner knows a dataset's mean caption length in characters (the manifest statistics, SPEC §2), not
/// its tokens: it estimates them with `charactersPerToken`.
///
/// Time: seconds per item at reference shapes on the H100 (`rates`, measured by `bench/cache_encode.py` with the
/// engine's own encoders: VAE in float32 with tiling as the cache stage loads it, UMT5 in bf16 at the cache's
/// batch of 8), scaled to other shapes by the FLOP model's ratio to the nearest reference shape and to other GPUs
/// by their dense matrix rate. The same seconds price encoding on the fly in a training step (TimeModel).
/// `wanlora cache` runs one process per GPU of hardware.gpus_per_node × hardware.nodes, each on its own share
/// of the shards, so the hours divide by that count.
public enum CacheModel {
    /// Seconds one GPU spends per item in the cache stage, measured at a few shapes.
    public struct EncodeRates: Sendable, Equatable {
        /// Where the seconds come from, as the plan names it ("measured": bench/cache_encode.py).
        public var source: String
        /// The GPU the seconds were measured on.
        public var gpu: GPU
        /// VAE encodes of one clip (frames > 1) or one image (frames = 1) at the shapes measured.
        public var vae: [VAEEncode]
        /// UMT5-XXL encode of one caption padded to 512 tokens, in a batch of 8 (the cache stage pads to
        /// training.text_length and encodes cache.text_batch_size captions at a time).
        public var umt5Caption512: Double
    }

    /// One measured VAE encode: `frames` frames of width × height took `seconds`.
    public struct VAEEncode: Sendable, Equatable {
        public var frames: Int
        public var width: Int
        public var height: Int
        public var seconds: Double
    }

    /// The seconds the plan uses: one H100 80GB HBM3, torch 2.11.0+cu130, diffusers 0.42.1, random weights of
    /// the real shapes, 2026-12-07 (docs/BENCHMARKS.md, "Cache encoders"). The FLOP model had put the VAE at
    /// 35% of the dense bf16 rate (1.1 s for 81 frames at 1280×720); in float32 with tiling it takes 8.2 s.
    public static let rates = EncodeRates(
        source: "measured", gpu: GPU.h100,
        vae: [
            VAEEncode(frames: 81, width: 1280, height: 720, seconds: 8.2267),
            VAEEncode(frames: 49, width: 1280, height: 720, seconds: 4.9948),
            VAEEncode(frames: 49, width: 832, height: 480, seconds: 2.3086),
            VAEEncode(frames: 17, width: 832, height: 480, seconds: 0.85686),
            VAEEncode(frames: 1, width: 1280, height: 720, seconds: 0.16970),
            VAEEncode(frames: 1, width: 832, height: 480, seconds: 0.095429),
        ],
        umt5Caption512: 0.025139)

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

    /// Seconds of one VAE encode of `frames` frames at width × height on `gpu`: a fixed cost plus a cost per
    /// FLOP (FlopModel.vaeEncoder), fitted by least squares to the measured encodes of the same kind (clips or
    /// images; tiles and launches make small shapes dearer per FLOP than large ones), then scaled by the GPUs'
    /// matrix rates.
    public static func vaeSeconds(
        _ vae: VAESpec, frames: Int, width: Int, height: Int, gpu: GPU, precision: MixedPrecision,
        rates: EncodeRates = CacheModel.rates
    ) -> Double {
        let image = frames == 1
        let points = rates.vae.filter { ($0.frames == 1) == image }.map {
            (x: FlopModel.vaeEncoder(vae, frames: $0.frames, width: $0.width, height: $0.height), y: $0.seconds)
        }
        let fit = affineFit(points)
        let flops = FlopModel.vaeEncoder(vae, frames: frames, width: width, height: height)
        return (fit.fixed + fit.perFLOP * flops) * gpuFactor(gpu, precision: precision, rates: rates)
    }

    /// Least-squares `y = fixed + perFLOP · x` through `points`. Fewer than two distinct x, or a fit with a
    /// negative fixed cost, give the least-squares line through the origin instead.
    static func affineFit(_ points: [(x: Double, y: Double)]) -> (fixed: Double, perFLOP: Double) {
        let n = Double(points.count)
        let sx = points.reduce(0) { $0 + $1.x }
        let sy = points.reduce(0) { $0 + $1.y }
        let sxx = points.reduce(0) { $0 + $1.x * $1.x }
        let sxy = points.reduce(0) { $0 + $1.x * $1.y }
        let throughOrigin = (fixed: 0.0, perFLOP: sxx > 0 ? sxy / sxx : 0)
        let determinant = n * sxx - sx * sx
        guard points.count > 1, determinant > 1e-12 * sxx * n else { return throughOrigin }
        let perFLOP = (n * sxy - sx * sy) / determinant
        let fixed = (sy - perFLOP * sx) / n
        return fixed >= 0 ? (fixed, perFLOP) : throughOrigin
    }

    /// Seconds of one UMT5 encode of a caption padded to `textLength` tokens on `gpu`.
    public static func umt5Seconds(
        textLength: Int, gpu: GPU, precision: MixedPrecision, rates: EncodeRates = CacheModel.rates
    ) -> Double {
        rates.umt5Caption512 * Double(textLength) / 512 * gpuFactor(gpu, precision: precision, rates: rates)
    }

    /// How much longer `gpu` takes than the reference one: the ratio of their dense matrix rates.
    static func gpuFactor(_ gpu: GPU, precision: MixedPrecision, rates: EncodeRates) -> Double {
        let reference = rates.gpu.matrixTFLOPs(for: precision).rate
        return reference / gpu.matrixTFLOPs(for: precision).rate
    }

    /// The cache of `dataset` at the configuration's clip shape and caption length.
    static func cache(
        config: WanLoRAConfig, architecture a: Architecture, gpu: GPU, video: ClipGeometry, image: ClipGeometry,
        dataset: DatasetSize, diskFreeBytes: Int?
    ) -> Plan.Cache {
        let tr = config.training
        let tokens = captionTokens(characters: dataset.meanCaptionCharacters, textLength: tr.textLength)
        let textBytes = tokens * a.textEncoder.dim * 2
        let totalBytes =
            dataset.videos * video.latentBytesBF16 + dataset.images * image.latentBytesBF16 + dataset.samples
            * textBytes
        let precision = tr.mixedPrecision
        let videoSeconds = vaeSeconds(
            a.vae, frames: video.frames, width: video.width, height: video.height, gpu: gpu, precision: precision)
        let imageSeconds = vaeSeconds(
            a.vae, frames: 1, width: video.width, height: video.height, gpu: gpu, precision: precision)
        let textSeconds = umt5Seconds(textLength: tr.textLength, gpu: gpu, precision: precision)
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
