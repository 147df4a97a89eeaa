import ArgumentParser
import Foundation

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
        if let problem = unknownHelpTopic(Array(CommandLine.arguments.dropFirst())) {
            Console.err(problem)
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        await main()
    }

    /// `wanlora help NAME…` where NAME is no command: the argument parser would print the general help and
    /// exit 0, so a typo looks like success. Returns the error (with the commands there are), else nil.
    static func unknownHelpTopic(_ arguments: [String]) -> String? {
        guard arguments.first == "help" else { return nil }
        var command: any ParsableCommand.Type = WanLoRA.self
        var path = ["wanlora"]
        for word in arguments.dropFirst() where !word.hasPrefix("-") {
            let subcommands = command.configuration.subcommands
            guard let next = subcommands.first(where: { name(of: $0) == word }) else {
                let names = subcommands.map(name(of:))
                if names.isEmpty { return "error: `\(path.joined(separator: " "))` has no subcommand \"\(word)\"" }
                return "error: `\(path.joined(separator: " "))` has no command \"\(word)\"; "
                    + "the commands are: \(names.joined(separator: ", "))\n"
                    + "how to fix: run `\(path.joined(separator: " ")) help <command>` with one of them"
            }
            command = next
            path.append(word)
        }
        return nil
    }

    private static func name(of command: any ParsableCommand.Type) -> String {
        command.configuration.commandName ?? command._commandName
    }
}
