import ArgumentParser
import Curation
import DemoData
import Foundation
import Manifest
import Testing

@testable import WanLoRACLI

/// `wanlora curate` as a user runs it: arguments, a config file, the files it writes.
@Suite struct CurateCommandTests {
    let folder: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("curate-cli-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    func writeManifest() throws -> String {
        let generator = DemoManifestGenerator(rows: 400, seed: 3, brokenRows: 2)
        let path = folder + "/manifest.csv"
        try Data(generator.csv(generator.generate())).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func flagsOverrideTheConfigFileAndTheFilesAreWritten() async throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let manifest = try writeManifest()
        try Data("[curate]\nseed = 1\nval_fraction = 0.2\nweighting = \"inverse\"\n".utf8).write(
            to: URL(fileURLWithPath: folder + "/wanlora.toml"))
        var command = try #require(
            try WanLoRA.parseAsRoot([
                "curate", manifest, "--out", folder + "/out", "--config",
                folder + "/wanlora.toml", "--seed", "7", "--quiet",
            ]) as? AsyncParsableCommand)
        try await command.run()
        for name in ["train.csv", "val.csv", "curation-log.csv", "curation-summary.md"] {
            #expect(FileManager.default.fileExists(atPath: folder + "/out/" + name), "\(name)")
        }
        // The same run through the library, with the options the command should have resolved.
        var options = CurationOptions()
        options.seed = 7
        options.valFraction = 0.2
        options.weighting = .inverse
        options.workers = ProcessInfo.processInfo.activeProcessorCount
        let expected = try await Curator.curate(try ManifestReader().read(path: manifest), options: options)
        let written = try Data(contentsOf: URL(fileURLWithPath: folder + "/out/val.csv"))
        // Paths are rewritten to resolve from the output folder (the manifest sits one folder up).
        #expect(
            written
                == Data(
                    CurationWriter.splitCSV(
                        expected, .val, rows: expected.rows.indices, header: true, outputFolder: folder + "/out")))
        let firstPath = try #require(try ManifestReader().read(path: folder + "/out/val.csv").items.first?.path)
        #expect(firstPath.hasPrefix("../"))
        let log = try Data(contentsOf: URL(fileURLWithPath: folder + "/out/curation-log.csv"))
        #expect(log == Data(CurationWriter.logCSV(expected)))
        #expect(expected.summary.val == 80)
        let summary = try String(contentsOfFile: folder + "/out/curation-summary.md", encoding: .utf8)
        #expect(summary.contains("## Where every row went"))
    }

    @Test func badInputIsRefusedWithAReason() async throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let manifest = try writeManifest()
        #expect(throws: (any Error).self) { try WanLoRA.parseAsRoot(["curate", manifest, "--duplicates", "merge"]) }
        #expect(throws: (any Error).self) { try WanLoRA.parseAsRoot(["curate", manifest, "--sample", "-3"]) }
        try Data("[curate]\nval_fraction = 1.5\n".utf8).write(to: URL(fileURLWithPath: folder + "/bad.toml"))
        var command = try #require(
            try WanLoRA.parseAsRoot([
                "curate", manifest, "--out", folder + "/out", "--config",
                folder + "/bad.toml", "--quiet",
            ]) as? AsyncParsableCommand)
        await #expect(throws: (any Error).self) { try await command.run() }
        #expect(!FileManager.default.fileExists(atPath: folder + "/out/train.csv"))
    }
}
