import ArgumentParser

/// The root command: `wanlora <subcommand>`.
public struct WanLoRA: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "wanlora",
        abstract: "From a captioned broadcast archive to a Wan2.2-T2V-A14B LoRA, with honest numbers.",
        discussion: """
            The pipeline, one stage per command, each reading the previous stage's files:

              wanlora demo-data   write a demo manifest shaped like the MBC archive
              wanlora analyze     dataset statistics report (Markdown, HTML, JSON)
              wanlora curate      duplicates, quality, outliers, sampling, leak-free split, class weights
              wanlora probe       ffprobe every file; what differs from the manifest
              wanlora prepare     media to 16 fps clips of 4n+1 frames, resumable, both splits
              wanlora plan        LoRA size, GPU memory, FLOPs, hours and cost of a training plan
              wanlora config      write, check and show the TOML configuration
              wanlora cache       encode clips (VAE) and captions (UMT5) once, into the cache
              wanlora train       train the LoRA: the engine on one GPU, torchrun over several GPUs and nodes
              wanlora runs        list run folders with their state, steps and last loss
              wanlora sample      generate videos with the model and its LoRAs (MP4, sidecars, gallery)
              wanlora evaluate    FVD, IS, LPIPS, CLIP score and temporal consistency of generated videos, per category

            Run `wanlora help <command>` for the options of each.
            """,
        version: "0.1.0",
        subcommands: [
            DemoData.self, Analyze.self, Curate.self, Probe.self, Prepare.self, PlanCommand.self, ConfigCommand.self,
            CacheCommand.self, TrainCommand.self, RunsCommand.self, SampleCommand.self, Evaluate.self,
        ]
    )

    public init() {}

    /// The entry point: parses the command line and runs the subcommand (async, so that
    /// probe and prepare can drive child processes and be cancelled by Ctrl-C).
    public static func start() async {
        await main()
    }
}
