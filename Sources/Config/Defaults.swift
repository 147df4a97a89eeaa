/// Every default of wanlora, in one place.
///
/// A configuration starts from a preset (h100 unless the file or the command line names
/// another) and the file's keys override it. The engine never has defaults of its own: it reads
/// `config.resolved.json`, written from these values.
extension WanLoRAConfig {
    /// The configuration a file with no keys at all resolves to.
    public static var defaults: WanLoRAConfig { preset(.h100) }

    /// The full configuration of a preset.
    public static func preset(_ preset: Preset) -> WanLoRAConfig {
        // What every preset shares: the report's common settings (SPEC §6) and the model card.
        var config = WanLoRAConfig(
            preset: preset,
            data: DataSettings(
                trainManifest: "prepared/train.csv",
                valManifest: "prepared/val.csv",
                cacheDir: "cache",
                runsDir: "runs"
            ),
            model: ModelSettings(
                architecture: .wan22T2VA14B,
                checkpoint: "",
                layout: .auto,
                weightsDtype: .bf16,
                boundary: 0.875
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
                learningRate: 1e-4,
                weightDecay: 0.01,
                warmupSteps: 100,
                schedule: .cosine,
                maxGradNorm: 1.0,
                optimizer: .adamw8bit,
                mixedPrecision: .bf16,
                gradientCheckpointing: true,
                residualDtype: .bf16,
                blocks: .fast,
                cfgDropout: 0.1,
                // DiffSynth-Studio's Wan2.2 A14B recipe splits the experts at 0.417 of the
                // uniform sampler, which is where shift 5 puts t = 875.
                timestepShift: 5.0,
                seed: 42,
                loggingSteps: 10,
                saveSteps: 500,
                evalSteps: 500,
                keepCheckpoints: 2,
                expert: .both
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
                steps: 40,
                shift: 12.0,
                guidanceHigh: 4.0,
                guidanceLow: 3.0,
                frames: 81,
                width: 1280,
                height: 720,
                fps: 16,
                seed: 42,
                negativePrompt: ""
            ),
            eval: EvalSettings(
                metrics: [.fvd, .is, .lpips, .clip, .temporal],
                samplesPerCategory: 4,
                valLossSamples: 256,
                valLossTimesteps: [0.1, 0.3, 0.5, 0.7, 0.9]
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
