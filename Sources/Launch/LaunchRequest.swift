import Support

/// The engine stages that run under torchrun.
public enum LaunchStage: String, Sendable, Equatable {
    /// Latents and text embeddings (`wanlora cache`): each GPU encodes a disjoint share of the cache's
    /// shards (no Ulysses, no FSDP).
    case cache
    /// LoRA training (`wanlora train`): the config is config.resolved.json.
    case train
    /// Text-to-video (`wanlora sample`): the config is sample-job.json; videos are dealt to the
    /// data-parallel groups, each video's tokens split over its Ulysses group.
    case sample
}

/// What `wanlora cache`, `wanlora train` or `wanlora sample` is asked to start: how many processes where,
/// in which layout, on which config.
///
/// One process per GPU. A run of `gpusPerNode × nodes` GPUs forms Ulysses groups of `ulysses` GPUs
/// that share each sample's tokens; the `world / ulysses` groups train (or make) different samples
/// (data parallel). `fsdp` shards the frozen expert weights over all GPUs. A cache run gives each GPU a
/// disjoint share of the cache's shards.
public struct LaunchRequest: Sendable, Equatable {
    /// The engine stage started on every GPU.
    public var stage: LaunchStage
    /// GPUs (processes) on this node.
    public var gpusPerNode: Int
    /// Nodes of the run; each runs the same command with its own `nodeRank`.
    public var nodes: Int
    /// This node's number, 0 ..< nodes.
    public var nodeRank: Int
    /// Where node 0 listens for the others (required with several nodes).
    public var master: MasterAddress?
    /// Ulysses degree: GPUs that share one sample's tokens.
    public var ulysses: Int
    /// Shard the frozen expert weights over all GPUs (FSDP).
    public var fsdp: Bool
    /// The engine's resolved configuration (`config.resolved.json` in the run folder).
    public var configPath: String
    public var resume: Bool
    /// The Python that has the engine and torch (e.g. engine/.venv/bin/python).
    public var python: String
    /// Seconds torchrun waits after SIGTERM before it kills the processes (a 14B step and its
    /// checkpoint take longer than torchrun's own 30 s). nil: torchrun's default.
    public var shutdownTimeoutSeconds: Int?
    /// torchrun's elastic restarts: when a rank dies, all ranks start again (up to this many times)
    /// and continue from the last whole checkpoint. 0: a dead rank ends the run.
    public var maxRestarts: Int
    /// Attention heads of the model (40 for Wan2.2 A14B): the Ulysses degree must divide them.
    public var attentionHeads: Int

    public init(
        stage: LaunchStage = .train,
        gpusPerNode: Int, nodes: Int = 1, nodeRank: Int = 0, master: MasterAddress? = nil, ulysses: Int = 1,
        fsdp: Bool = true, configPath: String, resume: Bool = false, python: String = "python3",
        shutdownTimeoutSeconds: Int? = nil, maxRestarts: Int = 0, attentionHeads: Int = 40
    ) {
        self.stage = stage
        self.gpusPerNode = gpusPerNode
        self.nodes = nodes
        self.nodeRank = nodeRank
        self.master = master
        self.ulysses = ulysses
        self.fsdp = fsdp
        self.configPath = configPath
        self.resume = resume
        self.python = python
        self.shutdownTimeoutSeconds = shutdownTimeoutSeconds
        self.maxRestarts = maxRestarts
        self.attentionHeads = attentionHeads
    }

    /// All GPUs of the run.
    public var worldSize: Int { gpusPerNode * nodes }
    /// Groups that train different samples: world / ulysses.
    public var dataParallelSize: Int { worldSize / max(ulysses, 1) }

    /// Whether the engine runs under torchrun: several processes, or elastic restarts asked for.
    public var usesTorchrun: Bool { worldSize > 1 || maxRestarts > 0 }

    /// Throws the first thing that makes the launch impossible, saying how to fix it. `needsMaster`:
    /// a command for one node of several needs node 0's address; a Slurm script finds it itself.
    public func validate(needsMaster: Bool = true) throws {
        guard gpusPerNode >= 1 else {
            throw LaunchError(
                "--gpus \(gpusPerNode): a run needs at least one GPU per node.", remedy: "Pass --gpus 1 or more.")
        }
        guard nodes >= 1 else {
            throw LaunchError("--nodes \(nodes): a run needs at least one node.", remedy: "Pass --nodes 1 or more.")
        }
        guard (0..<nodes).contains(nodeRank) else {
            throw LaunchError(
                "--node-rank \(nodeRank) is not one of the \(nodes) nodes (0 to \(nodes - 1)).",
                remedy: "Start node 0 with --node-rank 0, node 1 with --node-rank 1, and so on.")
        }
        if needsMaster && nodes > 1 && master == nil {
            throw LaunchError(
                "--nodes \(nodes) needs the address where node 0 waits for the others.",
                remedy: "Pass --master ADDR:PORT with node 0's address (the "
                    + "same on every node), e.g. --master 10.0.0.1:29500.")
        }
        guard ulysses >= 1 else {
            throw LaunchError(
                "--ulysses \(ulysses): the Ulysses degree is 1 (off) or more.", remedy: "Pass --ulysses 1, 2, 4 or 8.")
        }
        let world = worldSize
        let fitting = (1...world).filter { world % $0 == 0 && attentionHeads % $0 == 0 }
        let choices = fitting.map(String.init).joined(separator: ", ")
        if world % ulysses != 0 {
            throw LaunchError(
                "--ulysses \(ulysses) does not divide the \(world) GPUs of the run "
                    + "(\(gpusPerNode) per node × \(nodes) node\(nodes == 1 ? "" : "s")).",
                remedy: "Use a Ulysses degree that divides \(world) and the \(attentionHeads) heads: \(choices).")
        }
        if attentionHeads % ulysses != 0 {
            throw LaunchError(
                "--ulysses \(ulysses) does not divide the model's \(attentionHeads) attention heads.",
                remedy: "Use a Ulysses degree that divides \(attentionHeads) and the \(world) GPUs: \(choices).")
        }
        if let seconds = shutdownTimeoutSeconds, seconds < 1 {
            throw LaunchError(
                "The shutdown timeout must be at least 1 s, not \(seconds).",
                remedy: "Pass a number of seconds, e.g. 300.")
        }
        if maxRestarts < 0 {
            throw LaunchError(
                "--max-restarts \(maxRestarts): the number of restarts is 0 or more.",
                remedy: "Pass --max-restarts 0 (off) or e.g. 3.")
        }
    }
}

/// `host:port` of the node that hosts the rendezvous (torchrun's --master-addr / --master-port).
public struct MasterAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `10.0.0.1:29500`, `node-0.cluster:29500` or `[fd00::1]:29500`.
    public init(parsing text: String) throws {
        let bad = LaunchError(
            "--master \(text.isEmpty ? "\"\"" : text) is not ADDR:PORT.",
            remedy: "Give node 0's address and a free port, e.g. --master 10.0.0.1:29500 (IPv6: [fd00::1]:29500).")
        guard let colon = text.lastIndex(of: ":") else { throw bad }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }),
            let port = Int(portText), (1...65535).contains(port)
        else { throw bad }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A launch that cannot be made as asked.
public struct LaunchError: ActionableError, Equatable {
    public let problem: String
    public let remedy: String
    public init(_ problem: String, remedy: String) {
        self.problem = problem
        self.remedy = remedy
    }
}
