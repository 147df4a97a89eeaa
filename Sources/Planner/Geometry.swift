/// The latent grid and token count of one clip: pixels → VAE latent → DiT patches.
///
/// frames F → (F − 1) / 4 + 1 latent frames; H × W → H/s × W/s latents (s = 8 for the Wan2.1
/// VAE, 16 for the Wan2.2 VAE); patches of 1 × 2 × 2 latents are the tokens.
/// 49 frames at 1280×720: 13 × 45 × 80 = 46,800 tokens; 81 frames: 21 × 45 × 80 = 75,600;
/// one image (a one-frame clip): 1 × 45 × 80 = 3,600.
public struct ClipGeometry: Sendable, Equatable, Codable {
    public var frames: Int
    public var width: Int
    public var height: Int
    public var latentFrames: Int
    public var latentHeight: Int
    public var latentWidth: Int
    public var latentChannels: Int
    /// Tokens the DiT sees: latent frames × (latent height / patch) × (latent width / patch).
    public var tokens: Int

    /// Bytes of the clip's latent in bf16 (what `wanlora cache` stores).
    public var latentBytesBF16: Int { latentChannels * latentFrames * latentHeight * latentWidth * 2 }

    public init(frames: Int, width: Int, height: Int, architecture: Architecture) throws {
        let vae = architecture.vae
        guard frames >= 1, (frames - 1) % vae.temporalStride == 0 else {
            throw PlanError(
                problem: "\(frames) frames is not of the form \(vae.temporalStride)n+1.",
                remedy: "Use 81, 49, 33, 17 or 1 frames (the VAE compresses "
                    + "time \(vae.temporalStride):1 after the first frame)."
            )
        }
        let unit = vae.spatialStride * architecture.patch.h
        guard width % unit == 0, height % unit == 0 else {
            throw PlanError(
                problem: "\(width)x\(height) is not a multiple of \(unit) on both sides, which \(architecture.name) "
                    + "needs (VAE stride \(vae.spatialStride) × patch \(architecture.patch.h)).",
                remedy: "Use e.g. \(width / unit * unit)x\(height / unit * unit)"
                    + "\(architecture.vae.spatialStride == 16 ? " (the TI2V-5B model's 720p is 1280x704)" : "")."
            )
        }
        self.frames = frames
        self.width = width
        self.height = height
        latentFrames = (frames - 1) / vae.temporalStride + 1
        latentHeight = height / vae.spatialStride
        latentWidth = width / vae.spatialStride
        latentChannels = vae.latentChannels
        tokens =
            (latentFrames / architecture.patch.t) * (latentHeight / architecture.patch.h)
            * (latentWidth / architecture.patch.w)
    }
}
