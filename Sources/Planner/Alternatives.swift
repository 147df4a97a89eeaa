import Config
import Support

/// A setting near the one asked for, planned in full: the keys it changes and what it then needs.
public struct SettingOption: Sendable, Equatable, Codable {
    /// The configuration keys it changes, as TOML assignments (`training.frames = 33`); empty: as configured.
    public var changes: [String]
    /// The changes in words ("33 frames, fp8 host weights"), and one by one.
    public var summary: String
    public var details: [String]
    public var frames: Int
    /// How the streamed blocks wait in host memory ("bf16" or "fp8").
    public var hostWeights: String
    public var residentBlocks: Int
    public var blocks: Int
    /// Where the kept activations wait ("host" or "gpu").
    public var activationOffload: String
    public var ffnChunkTokens: Int
    public var peakBytes: Int
    public var usableBytes: Int
    public var hostNeededBytes: Int
    public var secondsPerVideoSample: Double
    public var secondsPerImageSample: Double
    /// Copies of streamed blocks a video step, and what of them the compute hides, seconds.
    public var linkSeconds: Double
    public var hiddenLinkSeconds: Double
}

/// The settings that fit when the asked-for one does not (`wanlora train`'s refusal, the plan's checks), and
/// the one `wanlora plan --gpu-table` shows for each card.
public enum Alternatives {
    /// Tokens a chunk of the FFN runs over when the planner suggests chunking (the engine's bench value).
    public static let suggestedFFNChunkTokens = 16_384

    /// One change of the configuration: keys and values, and a phrase for people.
    struct Change {
        var assignments: [(String, ConfigValue)]
        var words: [String]

        static let none = Change(assignments: [], words: [])
        static func + (a: Change, b: Change) -> Change {
            Change(assignments: a.assignments + b.assignments, words: a.words + b.words)
        }
    }

    /// The changes that keep the clip, in the order they are preferred: the FFN chunk (memory only, same
    /// numbers and time), fp8 host copies of the streamed blocks (half the host memory and link bytes, not
    /// exact), both; activations on the GPU (less host memory) when the configuration pins them to the host.
    static func sameClipChanges(_ config: WanLoRAConfig) -> [Change] {
        // Two trained experts stream only with the one not in use waiting in host memory.
        if Placement.trainsTwoExperts(config) && config.hardware.inactiveExpert == .resident
            && config.training.blocks == .fast && !(config.hardware.fsdp && config.hardware.worldSize > 1)
        {
            var offloaded = config
            offloaded.hardware.inactiveExpert = .offload
            let offload = Change(
                assignments: [("hardware.inactive_expert", .string("offload"))],
                words: ["inactive expert in host memory"])
            return [offload] + sameClipChanges(offloaded).map { offload + $0 }
        }
        var changes: [Change] = []
        let chunk = Change(
            assignments: [("training.ffn_chunk_tokens", .integer(suggestedFFNChunkTokens))],
            words: ["FFN in \(NumberFormat.grouped(suggestedFFNChunkTokens))-token chunks"])
        let fp8 = Change(assignments: [("model.weights_dtype", .string("fp8"))], words: ["fp8 host weights"])
        let streams = Placement.canStream(config)
        if streams && config.training.ffnChunkTokens == 0 { changes.append(chunk) }
        if streams && config.model.weightsDtype == .bf16 {
            changes.append(fp8)
            if config.training.ffnChunkTokens == 0 { changes.append(chunk + fp8) }
        }
        if streams && config.training.activationOffload == .all {
            changes.append(
                Change(
                    assignments: [("training.activation_offload", .string("auto"))],
                    words: ["activation offload auto"]))
        }
        return changes
    }

    static func apply(_ change: Change, to config: WanLoRAConfig) -> WanLoRAConfig? {
        var changed = config
        for (key, value) in change.assignments {
            guard (try? ConfigLoader.set(key, value, in: &changed, validate: false)) != nil else { return nil }
        }
        return changed
    }

    static func option(_ change: Change, plan: Plan, config: WanLoRAConfig) -> SettingOption {
        var words = change.words
        let auto = config.training.activationOffload == .auto && config.training.blocks == .fast
        if auto && plan.setup.activationOffload == "gpu" {
            words.append("kept activations on the GPU")
        }
        return SettingOption(
            changes: change.assignments.map { "\($0.0) = \($0.1.literal)" },
            summary: words.isEmpty ? "as configured" : words.joined(separator: ", "), details: words,
            frames: config.training.frames, hostWeights: plan.placement.hostWeights == .fp8 ? "fp8" : "bf16",
            residentBlocks: plan.placement.residentBlocks, blocks: plan.placement.blocks,
            activationOffload: plan.setup.activationOffload, ffnChunkTokens: config.training.ffnChunkTokens,
            peakBytes: plan.memory.peakBytes, usableBytes: plan.memory.usableBytes,
            hostNeededBytes: plan.host.neededBytes, secondsPerVideoSample: plan.throughput.video.totalSeconds,
            secondsPerImageSample: plan.throughput.image.totalSeconds,
            linkSeconds: plan.streaming.linkSeconds, hiddenLinkSeconds: plan.streaming.hiddenSeconds
        )
    }

    /// Plans `config` changed by `change`; nil when the change does not apply or cannot be planned.
    static func tryPlan(
        _ change: Change, _ config: WanLoRAConfig, dataset: DatasetSize,
        host: Int?
    ) -> (SettingOption, Plan)? {
        guard let changed = apply(change, to: config),
            let plan = try? Planner.plan(
                changed, dataset: dataset, diskFreeBytes: nil,
                hostMemoryAvailableBytes: host, constants: nil,
                withAlternatives: false)
        else { return nil }
        return (option(change, plan: plan, config: changed), plan)
    }

    /// The longest clip below the configured one (4n+1 frames) that fits with `change`.
    static func longestFitting(
        _ change: Change, _ config: WanLoRAConfig, dataset: DatasetSize,
        host: Int?
    ) -> (SettingOption, Plan)? {
        var frames = config.training.frames - 4
        while frames >= 1 {
            let withFrames =
                Change(assignments: [("training.frames", .integer(frames))], words: ["\(frames) frames"])
                + change
            if let found = tryPlan(withFrames, config, dataset: dataset, host: host),
                found.1.fits
            {
                return found
            }
            frames -= 4
        }
        return nil
    }

    /// The longest clip that fits with any of `changes` (the first of them on a tie).
    static func longestOf(
        _ changes: [Change], _ config: WanLoRAConfig, dataset: DatasetSize,
        host: Int?
    ) -> (SettingOption, Plan)? {
        changes.compactMap { longestFitting($0, config, dataset: dataset, host: host) }
            .max { $0.0.frames < $1.0.frames }
    }

    static func isFP8(_ change: Change) -> Bool { change.assignments.contains { $0.0 == "model.weights_dtype" } }

    /// The nearest settings to `config` that fit the card (or the limit) and the host, at most three: each
    /// change that keeps the clip, then the longest clip that fits with bf16 host weights, and with fp8 ones
    /// when that gives a longer clip.
    public static func nearest(
        _ config: WanLoRAConfig, dataset: DatasetSize = .archiveTrainingSplit,
        hostMemoryAvailableBytes host: Int?
    ) -> [SettingOption] {
        var found: [SettingOption] = []
        let changes = sameClipChanges(config)
        for change in changes {
            if let (option, plan) = tryPlan(change, config, dataset: dataset, host: host),
                plan.fits
            {
                found.append(option)
            }
        }
        let all = [Change.none] + changes
        let bf16 = longestOf(all.filter { !isFP8($0) }, config, dataset: dataset, host: host)
        if let bf16 { found.append(bf16.0) }
        if let fp8 = longestOf(all.filter(isFP8), config, dataset: dataset, host: host),
            fp8.0.frames > (bf16?.0.frames ?? 0)
        {
            found.append(fp8.0)
        }
        return Array(found.prefix(3))
    }

    /// The setting `wanlora plan --gpu-table` shows for one card: the configuration when it fits; else the
    /// first change that keeps the clip and fits (bf16 before fp8); else the longest clip that fits, bf16
    /// before fp8. Nil when not even an image fits.
    public static func best(
        for config: WanLoRAConfig, dataset: DatasetSize = .archiveTrainingSplit,
        hostMemoryAvailableBytes host: Int? = nil
    ) -> (option: SettingOption, plan: Plan)? {
        let changes = [Change.none] + sameClipChanges(config)
        for change in changes {
            if let found = tryPlan(change, config, dataset: dataset, host: host),
                found.1.fits
            {
                return found
            }
        }
        return longestOf(changes.filter { !isFP8($0) }, config, dataset: dataset, host: host)
            ?? longestOf(changes.filter(isFP8), config, dataset: dataset, host: host)
    }
}
