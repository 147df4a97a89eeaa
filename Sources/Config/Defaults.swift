/// A configuration starts from a preset (h100 unless the file or the command line names
/// another) and the file's keys override it. Every default is in the registry (ConfigKeys.swift);
/// the engine has none of its own: it reads `config.resolved.json`, written from these values.
extension WanLoRAConfig {
    /// Wan2.2's default negative prompt (wan/configs/shared_config.py, `sample_neg_prompt`), used
    /// by its generate.py whenever the user gives none. In Chinese, as the model was trained with it:
    /// garish colours, overexposed, static, blurred details, subtitles, style, artwork, painting,
    /// still image, greyish, worst quality, low quality, JPEG artefacts, ugly, mutilated, extra
    /// fingers, badly drawn hands and faces, deformed, disfigured, malformed limbs, fused fingers,
    /// motionless frame, cluttered background, three legs, crowded background, walking backwards.
    public static let officialNegativePrompt =
        "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，"
        + "静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"

    /// The configuration a file with no keys at all resolves to.
    public static var defaults: WanLoRAConfig { preset(.h100) }

    /// The full configuration of a preset (the registry's values for it).
    public static func preset(_ preset: Preset) -> WanLoRAConfig { WanLoRAConfig(preset: preset) }
}
