import ArgumentParser
import Config
import Foundation
import Planner
import Support

/// `wanlora plan`: LoRA size, memory, FLOPs and time of a configuration, before any GPU is paid for.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Exact LoRA size, GPU memory, FLOPs, time and cost of a training configuration.",
        discussion: """
            Starts from --config FILE or --preset (default h100), applies the options below, and prints the plan: \
            shapes and tokens, LoRA parameters, a per-GPU memory budget, where the expert's blocks and the kept \
            activations go (on the GPU, or streamed from pinned host memory), the host RAM that needs, \
            FLOPs and seconds per sample, steps, hours and GPU-hours of the run, cache size, and the checks that stop \
            a bad plan (memory over the card, host RAM short, bf16 on a GPU without it, \
            Ulysses not dividing the heads…). The exit status is 1 when a check is an error.

            Weight streaming (docs/streaming.md): under the card's memory, or hardware.gpu_memory_limit (GiB) when \
            smaller, the engine keeps the first blocks of the frozen expert on the GPU and streams the others from \
            pinned host memory, one block ahead of use; the plan shows how many, the host RAM (streamed blocks, \
            kept activations, the inactive expert, loading) and how much of the copying the compute hides. \
            model.weights_dtype = "fp8" keeps the streamed blocks' host copies in fp8 (half the host RAM \
            and link bytes, not exact). When nothing fits, the checks name the nearest settings that do.

            --gpu-table plans the configuration on every catalog GPU (one GPU per run unless --gpus is given; \
            the card's whole memory) and prints, per card, a setting that fits: the configuration when it fits, \
            else the same clip with (two experts) the inactive one in host memory, the FFN in chunks, then fp8 host \
            weights, else the longest clip that fits (bf16 before fp8); with the blocks kept on the GPU, the peak, \
            the host RAM, the block copies and the share hidden, seconds per video and image sample, and the run's \
            hours. V100s have no bf16 arithmetic and no FlashAttention: \
            their rows are planned with fp16 compute, which the engine does not train, and say so.

            Examples:
              wanlora plan --preset v100 --compare-report
              wanlora plan --preset h100 --frames 49 --gpus 1 --ulysses 1
              wanlora plan --preset h100 --gpu RTX-4090 --gpus 1 --ulysses 1 --frames 49 --host-memory 64
              wanlora plan --preset h100 --gpus 1 --ulysses 1 --set hardware.gpu_memory_limit=24 --frames 81
              wanlora plan --gpu-table --frames 49
              wanlora plan --config run.toml --gpu H200 --json > plan.json
              wanlora plan --preset a100 --set lora.targets='["to_q","to_v","ffn.net.2"]'

            The model is calibrated on measured H100/H200 steps (docs/planner.md derives every term).
            """
    )

    @OptionGroup var source: ConfigSourceOptions

    @Option(help: "GPU model (see --list-gpus).") var gpu: String?
    @Option(help: "GPUs per node.") var gpus: Int?
    @Option(help: "Nodes.") var nodes: Int?
    @Option(help: "Ulysses sequence-parallel degree (GPUs sharing one sample).") var ulysses: Int?
    @Option(help: "Frames per training clip (4n+1).") var frames: Int?
    @Option(help: "Training resolution, WIDTHxHEIGHT (e.g. 1280x720).") var resolution: String?
    @Option(help: "LoRA rank.") var rank: Int?
    @Option(name: .customLong("text-length"), help: "Caption tokens (≤ 512).") var textLength: Int?
    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Set any key: section.key=value (TOML value). Repeatable.", valueName: "key=value"))
    var assignments: [String] = []

    @Option(name: .customLong("dataset-videos"), help: "Training videos (default: the archive's 80,106).")
    var datasetVideos: Int?
    @Option(name: .customLong("dataset-images"), help: "Training images (default: the archive's 90,074).")
    var datasetImages: Int?
    @Option(
        name: .customLong("caption-chars"),
        help: ArgumentHelp(
            "Mean caption length in characters, which sets the cache's text bytes (default: the archive's 440; "
                + "`wanlora analyze` reports it).", valueName: "n"))
    var captionCharacters: Double?
    @Option(name: .customLong("disk-free"), help: "Free disk for the cache, GB (default: measured at data.cache_dir).")
    var diskFreeGB: Double?
    @Option(
        name: .customLong("host-memory"),
        help: ArgumentHelp(
            "Host RAM available on each training node, GiB, checked against what the "
                + "placement needs (default: not checked; `train` reads the machine's).",
            valueName: "GiB"))
    var hostMemoryGiB: Double?

    @Flag(help: "Print one JSON document instead of the table.") var json = false
    @Flag(help: "Print Markdown instead of the table.") var markdown = false
    @Flag(name: .customLong("compare-report"), help: "Print the seed report's claims beside the computed values.")
    var compareReport = false
    @Flag(
        name: .customLong("gpu-table"),
        help: "For every catalog GPU: a setting that fits, its time and the host RAM it needs.")
    var gpuTable = false
    @Flag(name: .customLong("list-gpus"), help: "List the GPU catalog and exit.") var listGPUs = false
    @Flag(name: .customLong("list-models"), help: "List the architecture catalog and exit.") var listModels = false

    func validate() throws {
        if json && markdown { throw ValidationError("Choose one of --json and --markdown.") }
        for (name, value) in [("--dataset-videos", datasetVideos), ("--dataset-images", datasetImages)] {
            if let value, value < 0 { throw ValidationError("\(name) must be 0 or more, not \(value).") }
        }
        if let captionCharacters, !(captionCharacters >= 0) {
            throw ValidationError("--caption-chars must be 0 or more characters, not \(captionCharacters).")
        }
        if let diskFreeGB, diskFreeGB < 0 { throw ValidationError("--disk-free must be 0 or more GB.") }
        if let hostMemoryGiB, hostMemoryGiB < 0 { throw ValidationError("--host-memory must be 0 or more GiB.") }
        if gpuTable && compareReport { throw ValidationError("Choose one of --gpu-table and --compare-report.") }
    }

    func run() throws {
        let failed = try reportingErrors { try plan() }
        if failed { throw ExitCode(1) }
    }

    /// Prints the plan; true when it has an error-level check.
    private func plan() throws -> Bool {
        if listGPUs {
            print(Catalogs.gpuTable(), terminator: "")
            return false
        }
        if listModels {
            print(Catalogs.architectureTable(), terminator: "")
            return false
        }

        var (config, baseDir) = try source.load()
        let overrides: [(String, ConfigValue?)] = [
            ("hardware.gpu", gpu.map { .string($0) }),
            ("hardware.gpus_per_node", gpus.map { .integer($0) }),
            ("hardware.nodes", nodes.map { .integer($0) }),
            ("hardware.ulysses_degree", ulysses.map { .integer($0) }),
            ("training.frames", frames.map { .integer($0) }),
            ("training.resolution", resolution.map { .string($0) }),
            ("lora.rank", rank.map { .integer($0) }),
            ("training.text_length", textLength.map { .integer($0) }),
        ]
        // The table plans one GPU per card unless --gpus says otherwise.
        let single: [(String, ConfigValue?)] =
            gpuTable && gpus == nil
            ? [
                ("hardware.gpus_per_node", .integer(1)), ("hardware.nodes", .integer(1)),
                ("hardware.ulysses_degree", .integer(1)),
                ("hardware.fsdp", .boolean(false)),
            ]
            : []
        // All overrides first, then one validation: `--gpus 1 --ulysses 1` must not fail halfway.
        for case (let key, let value?) in single + overrides {
            try ConfigLoader.set(key, value, in: &config, validate: false)
        }
        for assignment in assignments { try ConfigLoader.set(assignment, in: &config, validate: false) }
        if let note = try UlyssesAdaptation.adapt(
            &config, gpuCountGiven: gpus != nil || nodes != nil,
            ulyssesGiven: ulysses != nil || UlyssesAdaptation.sets(assignments))
        {
            Console.err("note: " + note)
        }
        try config.validate()

        let dataset = DatasetSize(
            videos: datasetVideos ?? DatasetSize.archiveTrainingSplit.videos,
            images: datasetImages ?? DatasetSize.archiveTrainingSplit.images,
            meanCaptionCharacters: captionCharacters ?? CacheModel.archiveMeanCaptionCharacters)
        let diskFree =
            diskFreeGB.map { Int($0 * 1e9) }
            ?? DiskSpace.freeBytes(near: resolve(config.data.cacheFolder(config.training), in: baseDir))

        if compareReport {
            let comparison = try ReportComparison.make(dataset: dataset)
            if json {
                FileHandle.standardOutput.write(try comparison.jsonData())
            } else {
                print(markdown ? PlanRendering.markdown(comparison) : PlanRendering.text(comparison))
            }
            return false
        }
        let hostMemory = hostMemoryGiB.map { Int($0 * Double(1 << 30)) }
        if gpuTable {
            let rows = GPUTable.rows(config: config, dataset: dataset, hostMemoryAvailableBytes: hostMemory)
            if json {
                FileHandle.standardOutput.write(try GPUTable.jsonData(rows))
            } else {
                print(
                    markdown ? GPUTable.markdown(rows, config: config) : GPUTable.text(rows, config: config),
                    terminator: "")
            }
            return rows.contains { $0.option == nil }
        }
        let plan = try Planner.plan(
            config, dataset: dataset, diskFreeBytes: diskFree, hostMemoryAvailableBytes: hostMemory)
        if json {
            FileHandle.standardOutput.write(try plan.jsonData())
        } else {
            print(markdown ? PlanRendering.markdown(plan) : PlanRendering.text(plan), terminator: "")
        }
        return plan.hasErrors
    }

    private func resolve(_ path: String, in baseDir: String) -> String {
        PathMath.absolute(path, base: baseDir)
    }
}

/// `--config FILE` or `--preset NAME`: where a command's settings start.
struct ConfigSourceOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "TOML configuration file (docs/config.md).") var configFile: String?
    @Option(help: "Start from a preset: a100, v100 (the report's, SPEC §6) or h100 (ours, the default).")
    var preset: String?

    func validate() throws {
        if configFile != nil && preset != nil {
            throw ValidationError(
                "Give --config or --preset, not both (a file names its preset with `preset = \"...\"`).")
        }
        if let preset, Preset(rawValue: preset) == nil {
            throw ValidationError(
                "Unknown preset \"\(preset)\". Use one of: \(Preset.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
    }

    /// The configuration and the folder its relative paths are relative to.
    func load() throws -> (WanLoRAConfig, String) {
        if let configFile {
            let config = try ConfigLoader.load(file: configFile)
            return (config, (PathMath.absolute(configFile) as NSString).deletingLastPathComponent)
        }
        return (.preset(preset.flatMap(Preset.init(rawValue:)) ?? .h100), FileManager.default.currentDirectoryPath)
    }
}

/// `--gpus`/`--nodes` without `--ulysses`: a preset's Ulysses degree (h100: 2) that does not divide the new
/// GPU count is lowered to the largest degree that does (their greatest common divisor, which still divides
/// the heads), with a note, instead of failing validation; an explicit degree is kept and checked.
enum UlyssesAdaptation {
    /// Whether `--set` assignments give the Ulysses degree.
    static func sets(_ assignments: [String]) -> Bool {
        assignments.contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix("hardware.ulysses_degree") }
    }

    /// Adapts `config` in place; returns the note to show, or nil when nothing changed.
    static func adapt(_ config: inout WanLoRAConfig, gpuCountGiven: Bool, ulyssesGiven: Bool) throws -> String? {
        let world = config.hardware.worldSize
        let degree = config.hardware.ulyssesDegree
        guard gpuCountGiven, !ulyssesGiven, degree > 1, world >= 1, world % degree != 0 else { return nil }
        var (a, b) = (degree, world)
        while b != 0 { (a, b) = (b, a % b) }
        try ConfigLoader.set("hardware.ulysses_degree", .integer(a), in: &config, validate: false)
        let gpus = world == 1 ? "1 GPU" : "\(world) GPUs"
        return "hardware.ulysses_degree = \(degree) does not divide the \(gpus) asked for: "
            + "using Ulysses degree \(a)\(a == 1 ? " (off)" : "") (give --ulysses N to choose another)"
    }
}

/// Free space of the file system that holds `path` (or its nearest existing parent).
enum DiskSpace {
    static func freeBytes(near path: String) -> Int? {
        var current = path
        while !FileManager.default.fileExists(atPath: current) {
            let parent = (current as NSString).deletingLastPathComponent
            if parent == current || parent.isEmpty { return nil }
            current = parent
        }
        guard let attributes = try? FileManager.default.attributesOfFileSystem(forPath: current),
            let free = attributes[.systemFreeSize] as? NSNumber
        else { return nil }
        return free.intValue
    }
}
