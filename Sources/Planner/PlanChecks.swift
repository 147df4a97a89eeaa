import Config
import Foundation
import Support

/// The checks that stop a bad plan before a GPU-hour is spent.
enum PlanChecks {
    static func run(plan: Plan, config: WanLoRAConfig, architecture a: Architecture, gpu: GPU) -> [PlanCheck] {
        var checks: [PlanCheck] = []
        let hw = config.hardware
        let tr = config.training
        func add(_ severity: PlanCheck.Severity, _ code: String, _ message: String, _ remedy: String) {
            checks.append(PlanCheck(severity: severity, code: code, message: message, remedy: remedy))
        }

        // Ulysses splits the heads over the group and the world into groups.
        if a.heads % hw.ulyssesDegree != 0 {
            let ok = (1...a.heads).filter { a.heads % $0 == 0 && hw.worldSize % $0 == 0 }
            add(
                .error, "ulysses-heads",
                "Ulysses degree \(hw.ulyssesDegree) does not divide the \(a.heads) attention heads of \(a.name).",
                "Set hardware.ulysses_degree to a divisor of both \(a.heads) "
                    + "and the \(hw.worldSize) GPUs: \(ok.map(String.init).joined(separator: ", ")).")
        }
        if hw.worldSize % hw.ulyssesDegree != 0 {
            add(
                .error, "ulysses-world",
                "Ulysses degree \(hw.ulyssesDegree) does not divide the \(hw.worldSize) GPUs.",
                "Set hardware.ulysses_degree to a divisor of \(hw.worldSize).")
        }

        // Precision support.
        if tr.mixedPrecision == .bf16 && !gpu.supportsBF16 {
            add(
                .error, "bf16",
                "\(gpu.name) has no bfloat16 arithmetic: bf16 runs emulated in fp32 without tensor cores "
                    + "(\(fmt(gpu.fp32TFLOPs)) instead of "
                    + "\(fmt(gpu.fp16TFLOPs)) TFLOP/s), and SDPA has no fused bf16 attention kernel there.",
                "Use a GPU with bf16 (A100, H100, H200, L40S, RTX 4090), or training.mixed_precision "
                    + "= \"fp16\" (Wan2.2 was trained in bf16; fp16 activations can overflow).")
        }
        if tr.mixedPrecision == .fp16 {
            add(
                .warning, "fp16",
                "fp16 mixed precision: Wan2.2 was trained in bf16, "
                    + "and fp16's range (±65,504) can overflow in its activations.",
                "Prefer bf16 on a GPU that has it; with fp16, watch the loss for inf/NaN (training stops on them).")
        }
        if !gpu.supportsFlashAttention {
            add(
                .warning, "flash-attention",
                "\(gpu.name) (compute capability \(gpu.computeCapability)) has no FlashAttention or cuDNN fused "
                    + "attention; SDPA uses the memory-efficient kernel (fp16/fp32) "
                    + "or, for bf16, the math kernel that stores all scores.",
                "Expect attention at a fraction of the GPU's rate (the time below "
                    + "assumes \(Int((gpu.attentionEfficiency * 100).rounded()))%).")
        }
        let p = plan.placement
        if config.model.weightsDtype == .fp8 {
            let bf16HostBytes =
                plan.host.neededBytes + p.streamedBlocks * (p.blockBytes - p.hostBlockBytes) * plan.host.processes
            add(
                .note, "fp8",
                p.streams
                    ? "model.weights_dtype = \"fp8\": the \(p.streamedBlocks) streamed blocks wait in host memory as "
                        + "fp8 e4m3 with a scale per output channel and are dequantized into bf16 on the GPU (not "
                        + "exact: docs/BENCHMARKS.md measures the error); "
                        + "the \(p.residentBlocks) resident blocks stay bf16."
                    : "model.weights_dtype = \"fp8\" changes nothing here: "
                        + "every block is resident in bf16 (fp8 is the host format of streamed blocks).",
                p.streams
                    ? "Keep model.weights_dtype = \"bf16\" (exact) when the host has "
                        + "\(gib(bf16HostBytes)) for bf16 host copies."
                    : "Use model.weights_dtype = \"bf16\".")
        }

        // Memory.
        let m = plan.memory
        let place =
            "\(tr.frames) frames \(tr.width)x\(tr.height), "
            + "\(plan.video.tokens) tokens\(hw.ulyssesDegree > 1 ? " over Ulysses \(hw.ulyssesDegree)" : "")"
        let limit =
            hw.gpuMemoryLimit > 0 && m.capacityBytes < gpu.memoryBytes
            ? "the \(gib(m.capacityBytes)) limit (hardware.gpu_memory_limit) on the \(gpu.name)"
            : "the \(gpu.name)'s \(gib(m.capacityBytes))"
        let need = p.engineFixedBytes + p.engineWorkingBytes + p.slots * p.blockBytes
        if !p.fitsRule && need <= m.usableBytes && m.fits {
            add(
                .error, "memory",
                "The engine cannot place \(place) on \(limit): its rule counts \(gib(p.engineFixedBytes)) fixed + "
                    + "\(gib(p.engineWorkingBytes)) activations, more than a block (\(gib(p.blockBytes))) short of the "
                    + "planner's peak (32-bit AdamW state, kept activations on the GPU), so under "
                    + "any hardware.gpu_memory_limit, which also caps the allocator, it keeps more blocks resident "
                    + "than that limit holds.",
                [alternativesRemedy(plan), memoryRemedy(config: config, architecture: a, plan: plan)].compactMap { $0 }
                    .joined(separator: " "))
        } else if !p.fitsRule {
            let what =
                need > m.usableBytes
                ? "\(gib(need)) of GPU memory by the engine's rule (\(gib(p.engineFixedBytes)) fixed + "
                    + "\(gib(p.engineWorkingBytes)) activations + \(p.slots) block slots of \(gib(p.blockBytes)))"
                : "a peak of \(gib(m.peakBytes))"
            add(
                .error, "memory",
                "Even with all \(p.blocks) blocks streamed from host memory, "
                    + "\(place) needs \(what), more than the \(gib(m.usableBytes)) usable of \(limit).",
                [alternativesRemedy(plan), memoryRemedy(config: config, architecture: a, plan: plan)].compactMap { $0 }
                    .joined(separator: " "))
        } else if !m.fits {
            add(
                .error, "memory",
                "Peak \(gib(m.peakBytes)) per GPU exceeds the \(gib(m.usableBytes)) usable of "
                    + "\(limit) (\(place)\(p.streams ? "; \(p.streamedBlocks) of \(p.blocks) blocks streamed" : "")).",
                [alternativesRemedy(plan), memoryRemedy(config: config, architecture: a, plan: plan)].compactMap { $0 }
                    .joined(separator: " "))
        } else if m.utilisation > 0.9 {
            add(
                .warning, "memory-tight",
                "Peak \(gib(m.peakBytes)) is \(Int((m.utilisation * 100).rounded()))% of the "
                    + "\(gib(m.usableBytes)) usable: allocator fragmentation may still run out.",
                "Leave headroom: set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True, "
                    + "or lower frames/resolution, or raise hardware.ulysses_degree.")
        }

        // Weight streaming and host memory.
        if p.streams && p.fitsRule && p.limitBytes < m.usableBytes {
            add(
                .warning, "engine-limit",
                "At \(gib(m.usableBytes)) the engine's rule would keep more blocks resident than fit: its fixed + "
                    + "activation estimate (\(gib(p.engineFixedBytes + p.engineWorkingBytes))) is below the planner's "
                    + "(32-bit AdamW state, kept activations on the GPU), so the plan keeps "
                    + "\(p.residentBlocks) resident (peak \(gib(m.peakBytes))), which the rule does under a limit of "
                    + "\(gib(p.limitBytes)).",
                "Set hardware.gpu_memory_limit = \(String(format: "%.2f", Double(p.limitBytes) / Double(1 << 30))) "
                    + "(limit_bytes \(p.limitBytes)): the engine then keeps \(p.residentBlocks) blocks and its "
                    + "allocator cap holds their peak."
            )
        }
        if p.streams && p.fitsRule {
            let s = plan.streaming
            add(
                .note, "streaming",
                "\(p.residentBlocks) of \(p.blocks) blocks stay on the GPU; \(p.streamedBlocks) stream from pinned "
                    + "host memory (\(p.hostWeights.rawValue), \(gib(p.hostWeightBytes))): \(fmt(s.linkSeconds)) s of "
                    + "copies a video step at \(fmt(gpu.hostLinkGBs)) GB/s, \(fmt(s.hiddenSeconds)) s of it hidden "
                    + "behind the compute, \(fmt(s.exposedSeconds)) s exposed; "
                    + "an image step \(fmt(plan.imageStreaming.exposedSeconds)) s exposed.",
                "More GPU memory (hardware.gpu_memory_limit, a larger card) keeps more blocks resident.")
        }
        let h = plan.host
        if !h.fits, let available = h.availableBytes {
            add(
                .error, "host-memory",
                "\(tr.frames) frames at \(gib(m.capacityBytes)) of GPU memory needs \(gib(h.neededBytes)) of "
                    + "host RAM (\(hostNeedWords(plan))); this host has \(gib(available)) available.",
                alternativesRemedy(plan) ?? hostRemedy(plan, available: available))
        }

        // Disk for the cache.
        if hw.t5 == .cached || hw.vae == .cached, let free = plan.cache.diskFreeBytes, plan.cache.totalBytes > free {
            add(
                .error, "disk",
                "The cache needs \(gb(plan.cache.totalBytes)) (latents and UMT5 embeddings of about "
                    + "\(plan.cache.textTokensPerCaption) tokens of "
                    + "\(plan.schedule.dataset.samples) samples) "
                    + "but only \(gb(free)) is free where data.cache_dir points.",
                "Free space or point data.cache_dir at a larger disk; or encode on "
                    + "the fly (hardware.t5/vae = \"offload\"), which costs time instead.")
        }

        // Batch and schedule.
        if hw.ulyssesDegree > 1 {
            let naive = tr.microBatch * tr.gradAccumulation * hw.worldSize
            add(
                .note, "effective-batch",
                "Effective batch is \(plan.setup.effectiveBatch) = micro-batch \(tr.microBatch) × accumulation "
                    + "\(tr.gradAccumulation) × \(plan.setup.dataParallelSize) data-parallel groups: "
                    + "the \(hw.ulyssesDegree) GPUs of a Ulysses group share one sample, "
                    + "so it is not \(naive) (micro × accumulation × GPUs).",
                "To get a batch of \(naive), set training.grad_accumulation "
                    + "= \(tr.gradAccumulation * hw.ulyssesDegree).")
        }
        if tr.warmupSteps >= plan.schedule.totalSteps {
            add(
                .warning, "warmup",
                "\(tr.warmupSteps) warm-up steps cover the whole run of \(plan.schedule.totalSteps) "
                    + "optimizer steps: the learning rate never reaches its peak.",
                "Lower training.warmup_steps below \(plan.schedule.totalSteps / 10) (a tenth of the run).")
        }
        if tr.saveSteps == 0 && plan.schedule.totalSteps > 1 {
            add(
                .warning, "save-steps",
                "training.save_steps = 0: no checkpoint before the end of the run's \(plan.schedule.totalSteps) "
                    + "steps (only on Ctrl-C), nothing to resume from after a crash.",
                "Set training.save_steps to at most \(max(1, plan.schedule.totalSteps / 4)).")
        } else if tr.saveSteps > plan.schedule.totalSteps {
            add(
                .warning, "save-steps",
                "training.save_steps = \(tr.saveSteps) is beyond the run's \(plan.schedule.totalSteps) "
                    + "steps: no checkpoint before the end, nothing to resume from.",
                "Set training.save_steps to at most \(max(1, plan.schedule.totalSteps / 4)).")
        }
        if tr.expert != .both && a.experts == 1 {
            add(
                .note, "expert",
                "\(a.name) has one transformer; training.expert = "
                    + "\"\(tr.expert.rawValue)\" only restricts the timesteps trained.",
                "Use training.expert = \"both\" to train the full timestep range.")
        }

        // Time: where the figures come from, and the slow paths the configuration chose.
        if !gpu.calibrated {
            add(
                .note, "estimate",
                "\(gpu.name)'s kernel efficiencies are estimates (\(gpu.efficiencySource)); "
                    + "only H100/H200 figures are calibrated on measurements.",
                "Measure one step (`wanlora train --overfit` or bench/) and compare.")
        }
        let offload = plan.throughput.video.encodeAndOffloadSeconds
        if offload > 0.05 * plan.throughput.video.totalSeconds {
            let activationCopies =
                tr.blocks == .fast && tr.gradientCheckpointing
                ? "; the fast blocks' activation copies to and from host memory" : ""
            add(
                .note, "encode-offload",
                "Encoding and offload transfers cost \(fmt(offload)) s "
                    + "of every \(fmt(plan.throughput.video.totalSeconds)) s video sample (t5 = \(hw.t5.rawValue), "
                    + "vae = \(hw.vae.rawValue), inactive_expert = \(hw.inactiveExpert.rawValue)\(activationCopies)).",
                "Cache the encoders' outputs once (`wanlora cache`, hardware.t5 = vae = \"cached\"): "
                    + "\(fmt(plan.cache.buildGPUHours)) GPU-hours, \(gb(plan.cache.totalBytes)) of disk.")
        }
        return checks
    }

    /// "Fits: …" from the plan's nearest settings, nil when there are none.
    static func alternativesRemedy(_ plan: Plan) -> String? {
        guard !plan.alternatives.isEmpty else { return nil }
        let options = plan.alternatives.map { o in
            "\(o.changes.joined(separator: ", ")) (\(o.summary): \(o.residentBlocks) of \(o.blocks) blocks on the GPU, "
                + "peak \(gib(o.peakBytes)), host RAM \(gib(o.hostNeededBytes)), "
                + "\(fmt(o.secondsPerVideoSample)) s a video sample)"
        }
        return "Fits: " + options.joined(separator: "; or ") + "."
    }

    /// What to do when no nearby setting fits the host.
    static func hostRemedy(_ plan: Plan, available: Int) -> String {
        let h = plan.host
        let loading = h.processes * h.loadingBytesPerProcess
        if loading > available {
            return
                "Loading alone needs \(gib(loading)): the engine reads each trained expert whole into host memory "
                + "before it places it, so no clip or placement fits this host. Use a host with more "
                + "memory"
                + (plan.lora.experts > 1 ? ", or train one expert (training.expert = \"high\" or \"low\")" : "") + "."
        }
        return "Free host memory, or raise hardware.gpu_memory_limit (fewer streamed blocks), or lower training.frames."
    }

    /// What the host memory is for, in words.
    static func hostNeedWords(_ plan: Plan) -> String {
        let h = plan.host
        let per = { (each: String) in h.processes > 1 ? "\(h.processes) processes × (\(each))" : each }
        if h.processes * h.loadingBytesPerProcess > h.processes * h.trainingBytesPerProcess + h.reserveBytes {
            return per(
                "loading \(plan.lora.experts) expert\(plan.lora.experts == 1 ? "" : "s") whole "
                    + "and the engine \(gib(h.loadingBytesPerProcess))"
            )
        }
        return per(h.items.map { "\($0.name) \(gib($0.bytes))" }.joined(separator: " + "))
            + " + \(gib(h.reserveBytes)) left free"
    }

    static func memoryRemedy(config: WanLoRAConfig, architecture a: Architecture, plan: Plan) -> String {
        var options: [String] = []
        let hw = config.hardware
        if !config.training.gradientCheckpointing { options.append("turn on training.gradient_checkpointing") }
        if config.training.gradientCheckpointing && config.training.blocks == .diffusers {
            options.append(
                "training.blocks = \"fast\" (keeps the checkpointed "
                    + "activations in host memory and can stream the weights)"
            )
        }
        if let weights = plan.memory.items.first(where: { $0.name == "expert weights" }),
            weights.bytes > plan.memory.capacityBytes / 4
        {
            if !hw.fsdp && hw.worldSize > 1 { options.append("shard the weights with hardware.fsdp = true") }
            if hw.inactiveExpert == .resident && plan.lora.experts > 1 {
                options.append("hardware.inactive_expert = \"offload\"")
            }
        }
        if config.training.blocks == .fast && config.training.ffnChunkTokens == 0 {
            options.append("training.ffn_chunk_tokens = \(Alternatives.suggestedFFNChunkTokens)")
        }
        let nextU = [2, 4, 8].first { $0 > hw.ulyssesDegree && a.heads % $0 == 0 && hw.worldSize % $0 == 0 }
        if let nextU { options.append("hardware.ulysses_degree = \(nextU) (splits the tokens)") }
        if config.training.frames > 49 { options.append("training.frames = 49") }
        if hw.t5 == .resident { options.append("hardware.t5 = \"cached\"") }
        options.append("a GPU with more memory (see `wanlora plan --list-gpus`)")
        return "Options: " + options.joined(separator: "; ") + "."
    }
}

func gib(_ bytes: Int) -> String { String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) }
func gb(_ bytes: Int) -> String {
    let b = Double(bytes)
    return b >= 1e12 ? String(format: "%.2f TB", b / 1e12) : String(format: "%.1f GB", b / 1e9)
}
func fmt(_ x: Double) -> String {
    if x >= 100 { return String(format: "%.0f", x) }
    if x >= 10 { return String(format: "%.1f", x) }
    return String(format: "%.2f", x)
}

/// 1234567 → "1,234,567" (fixed, whatever the locale).
func grouped(_ n: Int) -> String { NumberFormat.grouped(n) }
