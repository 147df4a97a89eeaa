/// Every default of wanlora, in one place.
///
/// A configuration starts from a preset (h100 unless the file or the command line names
/// another) and the file's keys override it. The engine never has defaults of its own: it reads
/// `config.resolved.json`, written from these values.
extension WanLoRAConfig {
    /// Wan2.2's default negative prompt (wan/configs/shared_config.py, `sample_neg_prompt`), used
    /// by its generate.py whenever the user gives none. In Chinese, as the model was trained with it:
    /// garish colours, overexposed, static, blurred details, subtitles, style, artwork, painting,
    /// still image, greyish, worst quality, low quality, JPEG artefacts, ugly, mutilated, extra
    /// fingers, badly drawn hands and faces, deformed, disfigured, malformed limbs, fused fingers,
    /// motionless frame, cluttered background, three legs, crowded background, walking backwards.
    public static let officialNegativePrompt =
        "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"

    /// The configuration a file with no keys at all resolves to.
    public static var defaults: WanLoRAConfig { preset(.h100) }

    /// The full configuration of a preset.
    public static func preset(_ preset: Preset) -> WanLoRAConfig {
        // What every preset shares: the report's common settings (SPEC §6) and the model card.
        var config = WanLoRAConfig(
            preset: preset,
            run: RunSettings(name: "", runsDir: "runs"),
            data: DataSettings(
                trainManifest: "prepared/train.csv",
                valManifest: "prepared/val.csv",
                // Empty: cache/<W>x<H>-<F>f-<L>t, so that changing the clip shape never meets a
                // cache the engine must refuse.
                cacheDir: "",
                weightColumn: "weight",
                categoryColumn: "category"
            ),
            model: ModelSettings(
                architecture: .wan22T2VA14B,
                checkpoint: "",
                layout: .auto,
                weightsDtype: .bf16,
                boundary: 0.875,
                numTrainTimesteps: 1000
            ),
            lora: LoRASettings(
                rank: 16,
                alpha: 16,
                dropout: 0.05,
                targets: ["to_q", "to_k", "to_v", "to_out.0"]
            ),
            training: TrainingSettings(
                frames: 81,
                width: 1280,
                height: 720,
                fps: 16,
                textLength: 512,
                microBatch: 1,
                gradAccumulation: 4,
                epochs: 3,
                maxSteps: 0,
                learningRate: 1e-4,
                weightDecay: 0.01,
                warmupSteps: 100,
                schedule: .cosine,
                maxGradNorm: 1.0,
                optimizer: .adamw8bit,
                adamBetas: [0.9, 0.999],
                adamEps: 1e-8,
                mixedPrecision: .bf16,
                gradientCheckpointing: true,
                residualDtype: .bf16,
                blocks: .fast,
                cfgDropout: 0.1,
                timestepSampling: .uniform,
                // DiffSynth-Studio's Wan2.2 A14B recipe splits the experts at 0.417 of the
                // uniform sampler, which is where shift 5 puts t = 875.
                timestepShift: 5.0,
                timestepLogitMean: 0.0,
                timestepLogitStd: 1.0,
                seed: 42,
                device: .auto,
                loggingSteps: 10,
                tensorboard: false,
                saveSteps: 500,
                evalSteps: 500,
                keepCheckpoints: 2,
                onNonfinite: .stop,
                rollbackLrFactor: 0.5,
                // An 81-frame step of the 14B expert and its checkpoint fit in two minutes on an H100.
                stopGraceSeconds: 120,
                expert: .both,
                // One expert per step: the same joint distribution as routing each sample, and
                // the idle expert can wait in host memory instead of being swapped per sample.
                expertGrouping: .step,
                lossWeighting: .none,
                classBalancedBeta: 0.999,
                focalGamma: 2.0,
                overfitSamples: 0
            ),
            cache: CacheSettings(
                device: .auto,
                shardItems: 256,
                textBatchSize: 8,
                // Tiling costs little time and keeps the encoder's activations small on every card.
                vaeTiling: true,
                freeDiskMarginGiB: 10
            ),
            hardware: HardwareSettings(
                gpu: "H100",
                gpusPerNode: 8,
                nodes: 1,
                ulyssesDegree: 2,
                fsdp: true,
                t5: .offload,
                vae: .offload,
                inactiveExpert: .offload
            ),
            sample: SampleSettings(
                solver: .euler,
                schedule: .wan,
                steps: 40,
                shift: 12.0,
                guidanceHigh: 4.0,
                guidanceLow: 3.0,
                frames: 81,
                width: 1280,
                height: 720,
                fps: 16,
                seed: 42,
                negativePrompt: officialNegativePrompt
            ),
            eval: EvalSettings(
                metrics: [.fvd, .is, .lpips, .clip, .temporal],
                samplesPerCategory: 4,
                // 64 items × 6 timesteps is already 384 forward passes of a 14B expert per
                // evaluation (about 1.3 h at 81 frames on one H100): enough to compare runs.
                valLossSamples: 64,
                // Two of them (900, 950) lie in the high-noise expert's range t ≥ 875.
                valLossTimesteps: [100, 300, 500, 700, 900, 950],
                seed: 1234
            )
        )

        switch preset {
        case .a100:
            // SPEC §6, A100 column.
            config.hardware.gpu = "A100-80GB"
            config.hardware.gpusPerNode = 8
            config.lora.rank = 32
            config.lora.alpha = 32
            config.training.frames = 81
            config.training.textLength = 512
            config.training.gradAccumulation = 4
        case .v100:
            // SPEC §6, V100 column.
            config.hardware.gpu = "V100-32GB"
            config.hardware.gpusPerNode = 2
            config.lora.rank = 16
            config.lora.alpha = 16
            config.training.frames = 49
            config.training.textLength = 256
            config.training.gradAccumulation = 16
            config.sample.frames = 49
        case .h100:
            // Ours. 8 × H100 80GB: FSDP shards both experts (7.1 GB a GPU, so both stay
            // resident), Ulysses 2 halves each GPU's share of the 75,600 tokens of 81 frames so
            // they fit, the encoders' outputs are cached once instead of swapped in per step,
            // and 4 data-parallel groups × 8 accumulation steps keep the report's batch of 32.
            // AdamW in fp32: 0.8 GB for both LoRAs is nothing here, and it needs no bitsandbytes.
            config.hardware.gpu = "H100"
            config.hardware.gpusPerNode = 8
            config.hardware.t5 = .cached
            config.hardware.vae = .cached
            config.hardware.inactiveExpert = .resident
            config.lora.rank = 16
            config.lora.alpha = 16
            config.training.gradAccumulation = 8
            config.training.optimizer = .adamw
        }
        return config
    }
}
