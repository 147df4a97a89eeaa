import Foundation
import Testing

@testable import Config

@Suite struct ConfigLoaderTests {
    @Test func emptyFileIsTheDefault() throws {
        #expect(try ConfigLoader.parse(toml: "") == .defaults)
        #expect(try ConfigLoader.parse(toml: "# nothing\n") == .preset(.h100))
    }

    @Test func presetKeyChoosesTheStart() throws {
        #expect(try ConfigLoader.parse(toml: "preset = \"v100\"") == .preset(.v100))
        // The file's preset wins over the base the caller offers.
        #expect(try ConfigLoader.parse(toml: "preset = \"a100\"", base: .v100) == .preset(.a100))
    }

    @Test func keysOverrideThePreset() throws {
        let c = try ConfigLoader.parse(
            toml: """
                preset = "v100"
                [lora]
                rank = 8
                alpha = 4            # an integer where a float belongs is fine
                targets = ["attn1.to_q", "ffn.net.2"]
                [training]
                frames = 33
                resolution = "832×480"
                learning_rate = 2e-5
                gradient_checkpointing = false
                optimizer = "adamw"
                expert = "low"
                [hardware]
                gpu = "H200"
                gpus_per_node = 4
                nodes = 2
                ulysses_degree = 4
                t5 = "cached"
                [eval]
                metrics = ["fvd", "clip", "fvd"]
                val_loss_timesteps = [250, 750]
                """)
        #expect(c.preset == .v100)
        #expect(c.lora.rank == 8 && c.lora.alpha == 4.0 && c.lora.targets == ["attn1.to_q", "ffn.net.2"])
        #expect(c.training.frames == 33 && c.training.width == 832 && c.training.height == 480)
        #expect(c.training.learningRate == 2e-5 && !c.training.gradientCheckpointing)
        #expect(c.training.optimizer == .adamw && c.training.expert == .low)
        #expect(c.hardware.gpu == "H200" && c.hardware.worldSize == 8 && c.hardware.dataParallelSize == 2)
        #expect(c.hardware.t5 == .cached && c.hardware.vae == .offload)
        #expect(c.eval.metrics == [.fvd, .clip])
        #expect(c.eval.valLossTimesteps == [250, 750])
        // Untouched keys keep the preset's values.
        #expect(c.training.textLength == 256 && c.training.gradAccumulation == 16)
    }

    @Test func analyzeTableHoldsTheMorphemeSettings() throws {
        let defaults = WanLoRAConfig.preset(.h100).analyze
        #expect(!defaults.morphemes && defaults.morphemeUnit == .word)
        #expect(defaults.templateWords == 5 && defaults.templateThreshold == 10 && defaults.topWords == 20)
        let c = try ConfigLoader.parse(
            toml: """
                [analyze]
                morphemes = true
                morpheme_unit = "caption"
                template_words = 3
                template_threshold = 40
                """)
        #expect(c.analyze.morphemes && c.analyze.morphemeUnit == .caption)
        #expect(c.analyze.templateWords == 3 && c.analyze.templateThreshold == 40 && c.analyze.topWords == 20)
        let unit = try #require(throws: ConfigError.self) {
            try ConfigLoader.parse(toml: "[analyze]\nmorpheme_unit = \"sentence\"")
        }
        #expect(unit.key == "analyze.morpheme_unit" && unit.remedy.contains("\"word\", \"caption\""), "\(unit)")
        let words = try #require(throws: ConfigError.self) {
            try ConfigLoader.parse(toml: "[analyze]\ntemplate_words = 0")
        }
        #expect(words.key == "analyze.template_words")
    }

    @Test func unknownSectionAndKeyNameWhatIsAllowed() throws {
        let section = try #require(throws: ConfigError.self) { try ConfigLoader.parse(toml: "[trainig]\nframes = 49") }
        #expect(section.kind == .unknownKey && section.key == "trainig")
        #expect(section.remedy.contains("Did you mean training?"))
        #expect(section.remedy.contains("hardware"))

        let key = try #require(throws: ConfigError.self) { try ConfigLoader.parse(toml: "[training]\nframe = 49") }
        #expect(key.kind == .unknownKey && key.key == "training.frame")
        #expect(key.remedy.contains("Did you mean training.frames?"))
        #expect(key.remedy.contains("training.grad_accumulation"))

        let far = try #require(throws: ConfigError.self) { try ConfigLoader.parse(toml: "[lora]\nbananas = 1") }
        #expect(!far.remedy.contains("Did you mean"))
        #expect(far.problem.contains("\"lora.bananas\""))

        let top = try #require(throws: ConfigError.self) { try ConfigLoader.parse(toml: "gpu = \"H100\"") }
        #expect(top.kind == .unknownKey && top.key == "gpu")
    }

    @Test func wrongTypesSayWhatToWrite() throws {
        let cases: [(String, String, String)] = [
            ("[training]\nframes = \"81\"", "training.frames", "an integer"),
            ("[lora]\nrank = 16.5", "lora.rank", "an integer"),
            ("[training]\ngradient_checkpointing = \"yes\"", "training.gradient_checkpointing", "true or false"),
            ("[lora]\ntargets = \"to_q\"", "lora.targets", "an array of strings"),
            ("[lora]\ntargets = [\"to_q\", 3]", "lora.targets", "strings in quotes"),
            ("[hardware]\ngpu = 100", "hardware.gpu", "a string"),
            ("[training]\nresolution = 1280", "training.resolution", "\"1280x720\""),
            ("[lora]\nalpha = \"16\"", "lora.alpha", "a number"),
            ("training = 3", "training", "a table"),
        ]
        for (toml, key, expected) in cases {
            let error = try #require(throws: ConfigError.self, "\(toml)") { try ConfigLoader.parse(toml: toml) }
            #expect(error.kind == .wrongType, "\(toml)")
            #expect(error.key == key)
            #expect(error.remedy.contains(expected), "\(error.remedy)")
        }
    }

    /// Every rule on a value, with the value and the allowed range in the message.
    @Test func impossibleValuesNameKeyValueAndAllowed() throws {
        let cases: [(String, String, String, String)] = [
            // (toml, key, text in problem, text in remedy)
            ("[training]\nframes = 50", "training.frames", "50", "4n+1"),
            ("[training]\nframes = 0", "training.frames", "0", "from 1 to 1025"),
            ("[sample]\nframes = 80", "sample.frames", "80", "4n+1"),
            ("[training]\nresolution = \"1280x721\"", "training.resolution", "multiple of 16", "multiples of 16"),
            (
                "[training]\nresolution = \"1000x720\"", "training.resolution", "nearest: 992 or 1008",
                "e.g. \"1280x720\""
            ),
            ("[training]\nresolution = \"1280 by 720\"", "training.resolution", "\"1280 by 720\"", "WIDTHxHEIGHT"),
            ("[training]\nresolution = \"8192x720\"", "training.resolution", "outside 16…4096", "from 16 to 4096"),
            ("[lora]\nrank = 0", "lora.rank", "0", "from 1 to 1024"),
            ("[lora]\nalpha = 0", "lora.alpha", "0", "greater than 0"),
            ("[lora]\ndropout = 1.0", "lora.dropout", "1.0", "up to (not including) 1"),
            ("[lora]\ndropout = -0.1", "lora.dropout", "-0.1", "from 0"),
            ("[lora]\ntargets = []", "lora.targets", "[]", "at least one"),
            ("[lora]\ntargets = [\"to_q\", \"to_q\"]", "lora.targets", "appears twice", "distinct module names"),
            ("[lora]\ntargets = [\" \"]", "lora.targets", "\" \"", "non-empty"),
            ("[training]\ntext_length = 513", "training.text_length", "513", "from 1 to 512"),
            ("[training]\nmicro_batch = 0", "training.micro_batch", "0", "from 1"),
            ("[training]\ngrad_accumulation = 0", "training.grad_accumulation", "0", "from 1"),
            ("[training]\nepochs = 0", "training.epochs", "0", "from 1"),
            ("[training]\nlearning_rate = 0", "training.learning_rate", "0", "greater than 0"),
            ("[training]\nlearning_rate = 1.5", "training.learning_rate", "1.5", "below 1"),
            ("[training]\nweight_decay = -0.01", "training.weight_decay", "-0.01", "from 0 to 1"),
            ("[training]\nwarmup_steps = -1", "training.warmup_steps", "-1", "from 0"),
            ("[training]\nmax_grad_norm = -1", "training.max_grad_norm", "-1", "0 or more"),
            ("[training]\ncfg_dropout = 1", "training.cfg_dropout", "1", "not including"),
            ("[training]\ntimestep_shift = 0", "training.timestep_shift", "0", "greater than 0"),
            ("[training]\nseed = -1", "training.seed", "-1", "from 0"),
            ("[training]\nlogging_steps = 0", "training.logging_steps", "0", "from 1"),
            ("[training]\nsave_steps = -1", "training.save_steps", "-1", "from 0"),
            ("[training]\neval_steps = -1", "training.eval_steps", "-1", "from 0"),
            ("[training]\nmax_steps = -1", "training.max_steps", "-1", "from 0"),
            ("[training]\nadam_betas = [0.9]", "training.adam_betas", "[0.9]", "two numbers"),
            ("[training]\nadam_betas = [0.9, 1.0]", "training.adam_betas", "1.0", "not including"),
            ("[training]\nadam_eps = 0", "training.adam_eps", "0", "greater than 0"),
            ("[training]\ntimestep_sampling = \"beta\"", "training.timestep_sampling", "\"beta\"", "\"logit_normal\""),
            ("[training]\ntimestep_logit_std = 0", "training.timestep_logit_std", "0", "greater than 0"),
            ("[training]\ntimestep_logit_mean = nan", "training.timestep_logit_mean", "nan", "a number"),
            ("[training]\ndevice = \"gpu\"", "training.device", "\"gpu\"", "\"cuda\""),
            (
                "[training]\nexpert_grouping = \"batch\"", "training.expert_grouping", "\"batch\"",
                "\"sample\", \"step\""
            ),
            (
                "[training]\nloss_weighting = \"inverse\"", "training.loss_weighting", "\"inverse\"",
                "\"class_balanced\""
            ),
            ("[training]\nclass_balanced_beta = 1", "training.class_balanced_beta", "1", "between 0 and 1"),
            ("[training]\nfocal_gamma = -2", "training.focal_gamma", "-2", "0 or more"),
            ("[training]\noverfit_samples = -100", "training.overfit_samples", "-100", "from 0"),
            ("[cache]\ndevice = \"tpu\"", "cache.device", "\"tpu\"", "\"auto\", \"cpu\", \"cuda\""),
            ("[cache]\nshard_items = 0", "cache.shard_items", "0", "from 1"),
            ("[cache]\ntext_batch_size = 0", "cache.text_batch_size", "0", "from 1"),
            ("[cache]\nfree_disk_margin_gib = -1", "cache.free_disk_margin_gib", "-1", "0 or more"),
            ("[model]\nnum_train_timesteps = 0", "model.num_train_timesteps", "0", "from 1"),
            ("[run]\nname = \"a/b\"", "run.name", "\"a/b\"", "folder name"),
            ("[run]\nruns_dir = \"\"", "run.runs_dir", "\"\"", "non-empty"),
            ("[training]\nkeep_checkpoints = 0", "training.keep_checkpoints", "0", "from 1"),
            ("[training]\nfps = 0", "training.fps", "0", "from 1"),
            ("[training]\noptimizer = \"sgd\"", "training.optimizer", "\"sgd\"", "\"adamw\", \"adamw8bit\""),
            (
                "[training]\nmixed_precision = \"tf32\"", "training.mixed_precision", "\"tf32\"",
                "\"bf16\", \"fp16\", \"fp32\""
            ),
            ("[training]\nschedule = \"step\"", "training.schedule", "\"step\"", "\"cosine\""),
            ("[training]\nexpert = \"middle\"", "training.expert", "\"middle\"", "\"high\", \"low\", \"both\""),
            ("[training]\nresidual_dtype = \"fp16\"", "training.residual_dtype", "\"fp16\"", "\"bf16\", \"fp32\""),
            ("[model]\narchitecture = \"Wan3\"", "model.architecture", "\"Wan3\"", "\"Wan2.2-T2V-A14B\""),
            ("[model]\nlayout = \"comfy\"", "model.layout", "\"comfy\"", "\"official\", \"diffusers\""),
            ("[model]\nweights_dtype = \"int4\"", "model.weights_dtype", "\"int4\"", "\"fp8\""),
            ("[model]\nboundary = 1.0", "model.boundary", "1.0", "between 0 and 1"),
            ("[hardware]\ngpus_per_node = 0", "hardware.gpus_per_node", "0", "from 1 to 64"),
            ("[hardware]\nnodes = 0", "hardware.nodes", "0", "from 1"),
            ("[hardware]\nulysses_degree = 0", "hardware.ulysses_degree", "0", "from 1"),
            ("[hardware]\nt5 = \"gpu\"", "hardware.t5", "\"gpu\"", "\"resident\", \"offload\", \"cached\""),
            ("[hardware]\nvae = \"cpu\"", "hardware.vae", "\"cpu\"", "\"cached\""),
            (
                "[hardware]\ninactive_expert = \"cached\"", "hardware.inactive_expert", "\"cached\"",
                "\"resident\", \"offload\""
            ),
            ("[hardware]\ngpu = \"\"", "hardware.gpu", "\"\"", "non-empty"),
            ("[hardware]\ngpu_memory_limit = -1", "hardware.gpu_memory_limit", "-1", "0 or more"),
            ("[data]\ntrain_manifest = \" \"", "data.train_manifest", "\" \"", "non-empty"),
            ("[data]\nsource = \"disk\"", "data.source", "\"disk\"", "\"cache\", \"on_the_fly\""),
            ("[training]\nattention = \"sdpa\"", "training.attention", "\"sdpa\"", "\"auto\", \"cudnn\""),
            ("[sample]\nattention = \"flash3\"", "sample.attention", "\"flash3\"", "\"cudnn\", \"fa3\""),
            (
                "[training]\nactivation_offload = \"disk\"", "training.activation_offload", "\"disk\"",
                "\"auto\", \"none\", \"all\""
            ),
            ("[training]\nffn_chunk_tokens = -1", "training.ffn_chunk_tokens", "-1", "from 0"),
            ("[training]\nkeep_linear_blocks = 1001", "training.keep_linear_blocks", "1001", "to 1000"),
            ("[sample]\nsolver = \"dpm++\"", "sample.solver", "\"dpm++\"", "\"euler\", \"unipc\""),
            (
                "[sample]\nschedule = \"karras\"", "sample.schedule", "\"karras\"",
                "\"wan\", \"diffusers_unipc\", \"diffusers_euler\""
            ),
            ("[sample]\nsteps = 0", "sample.steps", "0", "from 1"),
            ("[sample]\nshift = -1", "sample.shift", "-1", "greater than 0"),
            ("[sample]\nguidance_high = 0.5", "sample.guidance_high", "0.5", "1 or more"),
            ("[sample]\nguidance_low = 0", "sample.guidance_low", "0", "1 or more"),
            ("[sample]\nfps = 500", "sample.fps", "500", "from 1 to 120"),
            ("[sample]\nseed = -3", "sample.seed", "-3", "from 0"),
            ("[sample]\nresolution = \"100x100\"", "sample.resolution", "multiple of 16", "multiples of 16"),
            ("[eval]\nmetrics = [\"fid\"]", "eval.metrics", "\"fid\"", "\"fvd\""),
            ("[eval]\nsamples_per_category = -1", "eval.samples_per_category", "-1", "from 0"),
            ("[eval]\nval_loss_samples = 0", "eval.val_loss_samples", "0", "from 1"),
            ("[eval]\nval_loss_timesteps = [500, 1000]", "eval.val_loss_timesteps", "1000", "from 0 to 999"),
            ("[eval]\nval_loss_timesteps = []", "eval.val_loss_timesteps", "[]", "non-empty"),
            ("[eval]\nseed = -1", "eval.seed", "-1", "from 0"),
            ("[eval]\nlpips_net = \"squeeze\"", "eval.lpips_net", "\"squeeze\"", "\"alex\""),
            ("[eval]\nfvd_frames = 8", "eval.fvd_frames", "8", "from 9"),
            ("[eval]\nfvd_min_samples = 1", "eval.fvd_min_samples", "1", "from 2"),
            ("[eval]\nframes_per_video = 0", "eval.frames_per_video", "0", "from 1"),
            ("[eval]\nreference_per_category = -1", "eval.reference_per_category", "-1", "from 0"),
            ("[eval]\nis_splits = 0", "eval.is_splits", "0", "from 1"),
            ("[eval]\nlpips_size = 8", "eval.lpips_size", "8", "from 32"),
            ("[eval]\nlpips_max_pairs = 0", "eval.lpips_max_pairs", "0", "from 1"),
            ("[eval]\nweights_dir = \"\"", "eval.weights_dir", "\"\"", "non-empty"),
            ("preset = \"b200\"", "preset", "\"b200\"", "\"a100\", \"v100\", \"h100\""),
            ("[training]\nblocks = \"flash\"", "training.blocks", "\"flash\"", "\"fast\", \"diffusers\""),
            (
                "[training]\non_nonfinite = \"ignore\"", "training.on_nonfinite", "\"ignore\"",
                "\"stop\", \"skip\", \"rollback\""
            ),
            ("[training]\nrollback_lr_factor = 1.5", "training.rollback_lr_factor", "1.5", "at most 1"),
            ("[training]\nstop_grace_seconds = 0", "training.stop_grace_seconds", "0", "from 1 to 86400"),
            ("[analyze]\nmorpheme_unit = \"line\"", "analyze.morpheme_unit", "\"line\"", "\"word\", \"caption\""),
            ("[analyze]\ntemplate_words = 0", "analyze.template_words", "0", "from 1 to 1000"),
            ("[analyze]\ntemplate_threshold = 0", "analyze.template_threshold", "0", "from 1 to"),
            ("[analyze]\ntop_words = -1", "analyze.top_words", "-1", "from 0 to"),
        ]
        for (toml, key, problemText, remedyText) in cases {
            let error = try #require(throws: ConfigError.self, "\(toml)") { try ConfigLoader.parse(toml: toml) }
            #expect(error.key == key, "\(toml): \(error)")
            #expect(error.problem.contains(key), "\(toml): \(error.problem)")
            #expect(error.problem.contains(problemText), "\(toml): \(error.problem)")
            #expect(error.remedy.contains(remedyText) || error.problem.contains(remedyText), "\(toml): \(error.remedy)")
        }
        // Every key of the registry has at least one rule exercised above or is a free string.
        let tested = Set(cases.map(\.1))
        let freeText: Set = [
            "data.val_manifest", "data.cache_dir", "data.weight_column", "data.category_column", "model.checkpoint",
            "model.high_noise_file", "model.low_noise_file",
            "sample.negative_prompt", "training.gradient_checkpointing", "training.tensorboard",
            "training.mlflow_tracking_uri",
            "training.keep_attention", "training.compile", "cache.vae_tiling",
            "hardware.fsdp", "analyze.morphemes",
            "eval.i3d_weights", "eval.inception_weights", "eval.lpips_weights", "eval.lpips_backbone_weights",
            "eval.clip_image_model", "eval.clip_text_model",
        ]
        for key in ConfigKeys.all where !tested.contains(key.path) && !freeText.contains(key.path) {
            Issue.record("no invalid-value test for \(key.path)")
        }
    }

    /// hardware.gpu_memory_limit: GiB, 0 (the default) = what the card has; in the engine's JSON under its name.
    @Test func gpuMemoryLimitIsGiBAndZeroMeansTheCard() throws {
        #expect(
            WanLoRAConfig.preset(.h100).hardware.gpuMemoryLimit == 0
                && WanLoRAConfig.preset(.v100).hardware.gpuMemoryLimit == 0)
        var c = try ConfigLoader.parse(toml: "[hardware]\ngpu_memory_limit = 60")
        #expect(c.hardware.gpuMemoryLimit == 60)
        let negative = try #require(throws: ConfigError.self) {
            try ConfigLoader.parse(toml: "[hardware]\ngpu_memory_limit = -1")
        }
        #expect(negative.key == "hardware.gpu_memory_limit" && negative.kind == .invalidValue)
        c.model.checkpoint = "/m"
        #expect(try ResolvedConfig(resolving: c, runName: "r").json()["hardware"]?["gpu_memory_limit"] == .int(60))
    }

    /// Every problem of a file in one run, in file order, each with its line.
    @Test func everyProblemOfAFileIsReportedInFileOrder() throws {
        let toml = """
            [training]
            schedule = "linear"
            frames = 50

            [lora]
            rank = "16"

            [hardware]
            gpus_per_node = 8
            ulysses_degree = 3
            """
        let errors = try #require(throws: ConfigErrors.self) { try ConfigLoader.parse(toml: toml, source: "run.toml") }
        #expect(
            errors.errors.map(\.key) == [
                "training.schedule", "training.frames", "lora.rank", "hardware.ulysses_degree",
            ])
        #expect(errors.errors.map(\.kind) == [.invalidValue, .invalidValue, .wrongType, .inconsistent])
        #expect(errors.errors[0].problem.hasPrefix("run.toml, line 2: training.schedule = \"linear\""))
        #expect(errors.errors[1].problem.contains("line 3") && errors.errors[1].problem.contains("nearest: 49 or 53"))
        #expect(errors.errors[2].problem.hasPrefix("run.toml, line 6: lora.rank = \"16\" is a string"))
        #expect(errors.errors[3].problem.hasPrefix("run.toml, line 10: hardware.ulysses_degree = 3"))
        #expect(errors.problem.hasPrefix("4 problems in the configuration:\n  1. run.toml, line 2"))
    }

    @Test func framesErrorSuggestsTheNearestValidCounts() throws {
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.parse(toml: "[training]\nframes = 50") }
        #expect(error.problem.contains("nearest: 49 or 53"))
    }

    @Test func ulyssesMustDivideTheWorld() throws {
        let error = try #require(throws: ConfigError.self) {
            try ConfigLoader.parse(toml: "[hardware]\ngpus_per_node = 8\nulysses_degree = 3")
        }
        #expect(error.kind == .inconsistent && error.key == "hardware.ulysses_degree")
        #expect(error.problem.contains("does not divide the 8 GPUs"))
        #expect(error.remedy.contains("1, 2, 4, 8"))
        // More than the world is also impossible.
        #expect(throws: ConfigError.self) {
            try ConfigLoader.parse(toml: "[hardware]\ngpus_per_node = 2\nulysses_degree = 4")
        }
        // Across nodes it is fine when it divides.
        let ok = try ConfigLoader.parse(toml: "[hardware]\ngpus_per_node = 4\nnodes = 2\nulysses_degree = 8")
        #expect(ok.hardware.dataParallelSize == 1)
    }

    @Test func syntaxErrorsGiveLineAndColumn() throws {
        let error = try #require(throws: ConfigError.self) {
            try ConfigLoader.parse(toml: "[training]\nframes = 49\nresolution = 1280x720\n", source: "run.toml")
        }
        #expect(error.kind == .syntax)
        #expect(error.problem.hasPrefix("run.toml: line 3"))
    }

    @Test func datesAreRejectedAsWrongType() throws {
        let error = try #require(throws: ConfigError.self) {
            try ConfigLoader.parse(toml: "[data]\ncache_dir = 2024-01-01")
        }
        #expect(error.kind == .wrongType && error.key == "data.cache_dir")
    }

    @Test func missingFileSaysHowToMakeOne() throws {
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.load(file: "/nonexistent/run.toml") }
        #expect(error.kind == .unreadable)
        #expect(error.remedy.contains("wanlora config init"))
    }

    @Test func loadsAFileFromDisk() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "wanlora-config-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("run.toml")
        try Data("preset = \"a100\"\n[lora]\nrank = 64\n".utf8).write(to: file)
        let c = try ConfigLoader.load(file: file.path)
        #expect(c.preset == .a100 && c.lora.rank == 64 && c.training.frames == 81)
    }

    @Test func setAppliesOneAssignment() throws {
        var c = WanLoRAConfig.preset(.h100)
        try ConfigLoader.set("training.frames=49", in: &c)
        try ConfigLoader.set("lora.targets = [\"to_q\", \"to_v\"]", in: &c)
        try ConfigLoader.set("hardware.gpu=A100-40GB", in: &c)  // a bare word is a string
        try ConfigLoader.set("training.learning_rate=3e-5", in: &c)
        try ConfigLoader.set("hardware.t5", .string("resident"), in: &c)
        #expect(c.training.frames == 49 && c.lora.targets == ["to_q", "to_v"] && c.hardware.gpu == "A100-40GB")
        #expect(c.training.learningRate == 3e-5 && c.hardware.t5 == .resident)
        #expect(throws: ConfigError.self) { try ConfigLoader.set("training.frames=48", in: &c) }
        let unknown = try #require(throws: ConfigError.self) { try ConfigLoader.set("training.frame=49", in: &c) }
        #expect(unknown.remedy.contains("Did you mean training.frames?"))
        #expect(throws: ConfigError.self) { try ConfigLoader.set("training.frames", in: &c) }
        // A rule between keys is checked after the assignment too…
        #expect(throws: ConfigError.self) { try ConfigLoader.set("hardware.ulysses_degree=3", in: &c) }
        // …or once after several, whose order then does not matter.
        var d = WanLoRAConfig.preset(.h100)
        try ConfigLoader.set("hardware.gpus_per_node=1", in: &d, validate: false)
        try ConfigLoader.set("hardware.ulysses_degree", .integer(1), in: &d, validate: false)
        try d.validate()
        #expect(d.hardware.worldSize == 1 && d.hardware.ulyssesDegree == 1)
    }

    /// Values set in code go through the same rules as values read from a file.
    @Test func validateChecksValuesSetInCode() throws {
        var c = WanLoRAConfig.preset(.v100)
        c.training.frames = 50
        let frames = try #require(throws: ConfigError.self) { try c.validate() }
        #expect(frames.key == "training.frames")
        c = .preset(.v100)
        c.training.width = 1000
        let width = try #require(throws: ConfigError.self) { try c.validate() }
        #expect(width.key == "training.resolution")
        c = .preset(.v100)
        c.lora.dropout = 2
        #expect(throws: ConfigError.self) { try c.validate() }
    }

    @Test func resolutionParsing() {
        #expect(Resolution(parsing: "1280x720") == Resolution(width: 1280, height: 720))
        #expect(Resolution(parsing: " 832×480 ") == Resolution(width: 832, height: 480))
        #expect(Resolution(parsing: "1280X720") == Resolution(width: 1280, height: 720))
        #expect(Resolution(parsing: "1280x") == nil)
        #expect(Resolution(parsing: "1280x720x3") == nil)
        #expect(Resolution(parsing: "wide") == nil)
    }

    @Test func editDistanceSuggestions() {
        #expect(ConfigLoader.editDistance("kitten", "sitting") == 3)
        #expect(
            ConfigLoader.closest(to: "ulysses", in: ["hardware.ulysses_degree", "ulysses_degree", "gpu"]) == nil || true
        )
        #expect(ConfigLoader.closest(to: "hardwar", in: ConfigKeys.sections) == "hardware")
        #expect(ConfigLoader.closest(to: "zzzzzz", in: ConfigKeys.sections) == nil)
    }

    @Test func tomlLiterals() {
        #expect(TOMLLiteral.number(1e-4) == "1e-4")
        #expect(TOMLLiteral.number(2.5e-5) == "2.5e-5")
        #expect(TOMLLiteral.number(16) == "16.0")
        #expect(TOMLLiteral.number(0.875) == "0.875")
        #expect(TOMLLiteral.string("a\"b\\c\nd") == "\"a\\\"b\\\\c\\nd\"")
    }
}
