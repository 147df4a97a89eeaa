import ArgumentParser
import Foundation
import Support

// The options every command spells the same way (swift-argument-parser's `@OptionGroup`): one
// definition each, so `--progress`, `--quiet`, `--jobs` and `--force` mean one thing everywhere.

/// How a command shows its progress on stderr.
enum ProgressStyle: String, CaseIterable, ExpressibleByArgument {
    /// `terminal` when stderr is a terminal, else `plain`.
    case auto
    /// One line redrawn in place; other messages as lines above it.
    case terminal
    /// Plain lines, throttled (logs, pipes, CI).
    case plain
    /// JSON lines (cache and train: the engine's events unchanged, on stdout).
    case json
    /// Nothing but the result and errors.
    case none

    /// The style to draw in: `auto` decided by stderr.
    var resolved: ProgressStyle {
        self == .auto ? (Console.stderrIsTerminal ? .terminal : .plain) : self
    }
}

/// `--progress STYLE` and `--quiet`, on every command that runs long.
struct ProgressOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Progress on stderr: auto (a live line on a terminal, plain lines in a pipe), terminal, plain, "
                + "json (JSON lines; cache and train: the engine's events on stdout) or none.",
            valueName: "style"))
    var progress: ProgressStyle = .auto

    @Flag(help: "No progress on stderr (the same as --progress none).")
    var quiet = false

    /// The style to draw in (never `auto`).
    var style: ProgressStyle { quiet ? .none : progress.resolved }
}

/// `--jobs N` (`-j N`): parallel workers, on every command that runs work in parallel. make, ninja, cargo
/// and SwiftPM spell it so; curate's former `--workers` is kept as a hidden, deprecated alias.
struct JobsOptions: ParsableArguments {
    @Option(
        name: [.customLong("jobs"), .customShort("j")],
        help: ArgumentHelp("Parallel workers (default: one per core).", valueName: "n"))
    var jobs: Int?

    @Option(name: .customLong("workers"), help: ArgumentHelp("Deprecated: use --jobs.", visibility: .hidden))
    var workers: Int?

    func validate() throws {
        if jobs != nil && workers != nil {
            throw ValidationError("give --jobs only (--workers is its old, deprecated name)")
        }
        if let given, given < 1 { throw ValidationError("--jobs must be at least 1 (got \(given))") }
        if workers != nil { Console.err("warning: --workers is deprecated and will be removed; use --jobs") }
    }

    /// The count the user gave, if any (a config file may set one otherwise).
    var given: Int? { jobs ?? workers }

    /// The count to run with.
    var count: Int { given ?? ProcessInfo.processInfo.activeProcessorCount }
}

/// `-o FILE` / `--output FILE`: a command that writes one file. `--out` names a folder on every command
/// (created when missing, with a default named after what it holds); probe and `config init`, which write one
/// file, took `--out FILE` before and still do, hidden and deprecated.
struct OutputFileOptions: ParsableArguments {
    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("File to write.", valueName: "file"))
    var output: String?

    @Option(name: .customLong("out"), help: ArgumentHelp("Deprecated: use --output.", visibility: .hidden))
    var deprecatedOut: String?

    func validate() throws {
        if output != nil && deprecatedOut != nil {
            throw ValidationError("give --output only (--out FILE is its old, deprecated name here)")
        }
        if deprecatedOut != nil {
            Console.err("warning: --out FILE is deprecated here (--out names a folder elsewhere); use -o/--output FILE")
        }
    }

    /// The file to write, if any.
    var path: String? { output ?? deprecatedOut }
}

/// `--force`: replace the outputs an earlier run left in the output folder.
struct OverwriteOptions: ParsableArguments {
    @Flag(help: "Replace what an earlier run wrote into the output folder (without it, the command stops).")
    var force = false

    /// Stops when any of `files` (inside `folder`) exists and --force was not given.
    func check(folder: String, files: [String], command: String) throws {
        let existing = files.filter {
            FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent($0))
        }
        guard !force, !existing.isEmpty else { return }
        throw GeneralError(
            "\(folder) already holds the output of an earlier `wanlora \(command)` "
                + "(\(existing.joined(separator: ", "))).",
            remedy: "add --force to replace it, or choose another --out folder")
    }
}

/// The `#SBATCH` settings of a Slurm script that `--dry-run` prints (`train`, `prepare --slurm`).
struct SlurmJobOptions: ParsableArguments {
    @Option(
        name: .customLong("slurm-time"),
        help: ArgumentHelp(
            "The Slurm script's time limit per job (#SBATCH --time), e.g. 12:00:00 or 2-00:00:00.", valueName: "limit"))
    var time: String?

    @Option(
        name: .customLong("slurm-partition"),
        help: ArgumentHelp("The Slurm script's partition (#SBATCH --partition).", valueName: "name"))
    var partition: String?

    @Option(
        name: .customLong("slurm-account"),
        help: ArgumentHelp("The Slurm script's account charged (#SBATCH --account).", valueName: "name"))
    var account: String?
}
