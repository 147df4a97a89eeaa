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
          wanlora probe       ffprobe every file; what differs from the manifest
          wanlora prepare     media to 16 fps clips of 4n+1 frames, resumable

        Run `wanlora help <command>` for the options of each.
        """,
        version: "0.1.0",
        subcommands: [DemoData.self, Analyze.self, Probe.self, Prepare.self]
    )

    public init() {}

    /// The entry point: parses the command line and runs the subcommand (async, so that
    /// probe and prepare can drive child processes and be cancelled by Ctrl-C).
    public static func start() async {
        await main()
    }
}
