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

    /// The sample stage's launch for the job file at `jobPath`, with --master parsed. The layout lives on
    /// the command line only: the job file stays layout-free, so a stopped run may continue on another
    /// layout and make the same videos.
    func request(jobPath: String, python: String, attentionHeads: Int) throws -> LaunchRequest {
        LaunchRequest(
            stage: .sample, gpusPerNode: nodes.gpus ?? 1, nodes: nodes.nodes ?? 1, nodeRank: nodes.nodeRank,
            master: try nodes.master.map(MasterAddress.init(parsing:)), ulysses: ulysses, fsdp: fsdp,
            configPath: jobPath, python: python, attentionHeads: attentionHeads)
    }
}
