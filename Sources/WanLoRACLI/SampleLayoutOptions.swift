import ArgumentParser
import Launch
import Runs

/// `wanlora sample`'s GPUs: one process, or torchrun with one process per GPU (like `wanlora train`).
struct SampleLayoutOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp("GPUs (engine processes) on this node; more than one launches torchrun.", valueName: "n"))
    var gpus: Int = 1

    @Option(help: ArgumentHelp("Nodes of the run; more than one needs --master and --node-rank.", valueName: "n"))
    var nodes: Int = 1

    @Option(name: .customLong("node-rank"), help: ArgumentHelp("This node's number, 0 to nodes − 1.", valueName: "k"))
    var nodeRank: Int = 0

    @Option(
        help: ArgumentHelp(
            "Node 0's address and a free port, the same on every node (several nodes).", valueName: "ADDR:PORT"))
    var master: String?

    @Option(
        help: ArgumentHelp(
            "Ulysses degree: GPUs that share each video's tokens (divides the GPUs and the 40 heads); "
                + "the other GPUs make other videos.", valueName: "U"))
    var ulysses: Int = 1

    @Flag(help: "Shard both experts over all GPUs (FSDP): for cards that cannot hold them.")
    var fsdp = false

    func validate() throws {
        if gpus < 1 { throw ValidationError("--gpus must be 1 or more, not \(gpus).") }
        if nodes < 1 { throw ValidationError("--nodes must be 1 or more, not \(nodes).") }
        if ulysses < 1 { throw ValidationError("--ulysses must be 1 (off) or more, not \(ulysses).") }
    }

    /// The layout, with --master parsed.
    func layout() throws -> SampleLayout {
        SampleLayout(
            gpusPerNode: gpus, nodes: nodes, nodeRank: nodeRank, master: try master.map(MasterAddress.init(parsing:)),
            ulysses: ulysses, fsdp: fsdp)
    }
}
