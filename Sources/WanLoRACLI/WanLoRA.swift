import ArgumentParser

/// The root command: `wanlora <subcommand>`.
public struct WanLoRA: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "wanlora",
        abstract: "From a captioned broadcast archive to a Wan2.2-T2V-A14B LoRA, with honest numbers.",
        discussion: """
        The pipeline, one stage per command, each reading the previous stage's files:

          wanlora demo-data   write a demo manifest shaped like the MBC archive
          wanlora analyze     dataset statistics report (Markdown, HTML, JSON)
          wanlora plan        LoRA size, GPU memory, FLOPs, hours and cost of a training plan
          wanlora config      write, check and show the TOML configuration
          wanlora cache       encode clips (VAE) and captions (UMT5) once, into the cache
          wanlora train       train the LoRA adapters of both experts (python or torchrun)
          wanlora runs        list run folders with their state, steps and last loss
          wanlora evaluate    FVD, IS, LPIPS, CLIP score and temporal consistency of generated videos, per category

        Run `wanlora help <command>` for the options of each.
        """,
        version: "0.1.0",
        subcommands: [DemoData.self, Analyze.self, PlanCommand.self, ConfigCommand.self, CacheCommand.self, TrainCommand.self,
                      RunsCommand.self, Evaluate.self]
    )

    public init() {}
}
