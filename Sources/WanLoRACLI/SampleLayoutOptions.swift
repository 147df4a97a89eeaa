import ArgumentParser
import Launch
import Runs

/// `wanlora sample`'s GPUs: one process, or torchrun with one process per GPU (like `wanlora train`).
struct SampleLayoutOptions: ParsableArguments {
    @OptionGroup var nodes: NodeLayoutOptions

    @Option(
        help: ArgumentHelp(
            "Ulysses degree: GPUs that share each video's tokens (divides the GPUs and the 40 heads); "
                + "the other GPUs make other videos.", valueName: "U"))
    var ulysses: Int = 1

    @Flag(help: "Shard both experts over all GPUs (FSDP): for cards that cannot hold them.")
    var fsdp = false

    func validate() throws {
        if ulysses < 1 { throw ValidationError("--ulysses must be 1 (off) or more, not \(ulysses).") }
    }

    /// The layout, with --master parsed.
    func layout() throws -> SampleLayout {
        SampleLayout(
            gpusPerNode: nodes.gpus ?? 1, nodes: nodes.nodes ?? 1, nodeRank: nodes.nodeRank,
            master: try nodes.master.map(MasterAddress.init(parsing:)),
            ulysses: ulysses, fsdp: fsdp)
    }
}
