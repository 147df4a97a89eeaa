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
          wanlora train       train the LoRA: the engine on one GPU, torchrun over several GPUs and nodes

        Run `wanlora help <command>` for the options of each.
        """,
        version: "0.1.0",
        subcommands: [DemoData.self, Analyze.self, PlanCommand.self, ConfigCommand.self, TrainCommand.self]
    )

    public init() {}
}
