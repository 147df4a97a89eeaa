import ArgumentParser
import Config
import Foundation
import Support

/// `wanlora config`: write, check and show configuration files.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Write, check and show wanlora configuration files (TOML).",
        discussion: """
            One TOML file configures every stage. Start with `wanlora config init --preset h100 --output run.toml`,
            which writes every key with its meaning and allowed values; docs/config.md has the details.
            """,
        subcommands: [Init.self, Check.self, Show.self, Generate.self]
    )

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a commented configuration file of a preset.")
        @Option(help: "a100, v100 (the report's, SPEC §6) or h100 (ours).") var preset: String = "h100"
        /// The file to write (default: standard output).
        @OptionGroup var output: OutputFileOptions
        @Flag(help: "Overwrite an existing file.") var force = false

        func validate() throws {
            if Preset(rawValue: preset) == nil {
                throw ValidationError(
                    "Unknown preset \"\(preset)\". Use one of: "
                        + "\(Preset.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
        }

        func run() throws { try reportingErrors { try write() } }

        private func write() throws {
            let text = ConfigTemplate.toml(.preset(Preset(rawValue: preset)!))
            guard let out = output.path else { return print(text, terminator: "") }
            if FileManager.default.fileExists(atPath: out) && !force {
                throw GeneralError(
                    "\(out) already exists.", remedy: "Choose another --output, or add --force to overwrite it.")
            }
            try OutputLocation.checkFile(out, option: "--output")
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: out))
            } catch {
                throw OutputError(path: out, option: "--output", reason: OutputLocation.reason(error))
            }
            print("wrote \(out) (preset \(preset))")
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file; exit status 0 when it is valid.")
        @Argument(help: "The TOML file.") var file: String
        func run() throws {
            let config = try reportingErrors { try ConfigLoader.load(file: file) }
            print(
                "\(file): valid (preset \(config.preset.rawValue), \(config.model.architecture.rawValue), "
                    + "\(config.hardware.worldSize) × \(config.hardware.gpu)). "
                    + "Run `wanlora plan --config \(file)` for memory and time.")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the fully resolved configuration (every key), as TOML or as the engine's JSON.")
        @OptionGroup var source: ConfigSourceOptions
        @Option(
            name: .customLong("set"),
            help: ArgumentHelp("Set any key: section.key=value. Repeatable.", valueName: "key=value"))
        var assignments: [String] = []
        @Flag(
            help: ArgumentHelp(
                "Print config.resolved.json as `wanlora train` writes it into "
                    + "the run folder (paths absolute; docs/engine-contract.md)."))
        var json = false

        func run() throws { try reportingErrors { try show() } }

        private func show() throws {
            var (config, baseDir) = try source.load()
            for assignment in assignments { try ConfigLoader.set(assignment, in: &config, validate: false) }
            try config.validate()
            if json {
                let name = ResolvedConfig.defaultRunName(config: config, configFile: source.configFile)
                let resolved = try ResolvedConfig(resolving: config, runName: name).anchored(at: baseDir)
                FileHandle.standardOutput.write(Data(resolved.formatted().utf8))
            } else {
                print(ConfigTemplate.toml(config), terminator: "")
            }
        }
    }

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the files made from the key registry: docs/config.md's key tables, the engine's schema "
                + "and the resolved-config fixtures of the engine's tests.")
        @Option(help: "The repository's root folder.") var root: String = "."

        func run() throws {
            try reportingErrors {
                for (path, text) in try GeneratedFiles.expected(root: root) {
                    let url = URL(fileURLWithPath: root).appendingPathComponent(path)
                    let old = try? String(contentsOf: url, encoding: .utf8)
                    if old != text { try Data(text.utf8).write(to: url) }
                    print("\(old == text ? "unchanged" : "wrote    ") \(path)")
                }
            }
        }
    }
}
