import ArgumentParser
import DemoData
import Foundation
import Manifest
import Support

struct DemoData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-data",
        abstract: "Write a demo manifest shaped like the MBC archive.",
        discussion: """
        The manifest reproduces the seed report's shares of media types (50:50), resolutions \
        (1920×1080 77.78%, 720×512 15.52%, 1280×720 5.86%, other 0.84%), the eight categories, \
        video-duration buckets and caption lengths (≈440 characters, ≈106 words, Korean-looking \
        text with the report's most frequent words). The same --seed gives the same bytes.

        Examples:
          wanlora demo-data --rows 199994 --out demo            # demo/manifest.csv
          wanlora demo-data --rows 2000 --splits --broken 9 --out demo
              # also demo/train.csv (85%, converted to 1280×720) and demo/val.csv (10%, not
              # converted: the report's mistake) and 9 rows that the reader must reject
        """)

    @Option(help: "Number of rows (any size; the archive has 199,994).")
    var rows: Int = 2_000

    @Option(help: "Random seed; the same seed writes the same bytes.")
    var seed: UInt64 = 42

    @Option(help: "Output folder (created when missing).")
    var out: String = "demo"

    @Flag(help: "Also write train.csv and val.csv shaped like the report's splits.")
    var splits = false

    @Option(help: "Append this many rows that each break one validation rule.")
    var broken: Int = 0

    @Flag(help: "No progress on stderr.")
    var quiet = false

    func validate() throws {
        guard rows > 0 else { throw ValidationError("--rows must be at least 1 (got \(rows))") }
        guard broken >= 0 else { throw ValidationError("--broken cannot be negative (got \(broken))") }
    }

    func run() throws {
        try reportingErrors {
            do {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            } catch {
                throw GeneralError("cannot create folder \(out): \(error.localizedDescription)", remedy: "choose a writable --out folder")
            }
            let generator = DemoManifestGenerator(rows: rows, seed: seed, brokenRows: broken)
            let generated = generator.generate(progress: Console.progress(style: .automatic(quiet: quiet)))
            let manifestPath = (out as NSString).appendingPathComponent("manifest.csv")
            try write(generator.csv(generated), to: manifestPath)
            var written = ["\(manifestPath) (\(NumberFormat.grouped(rows + broken)) rows)"]
            if splits {
                let (train, val) = DemoManifestGenerator.reportSplits(generated, seed: seed)
                let plain = DemoManifestGenerator(rows: 0, seed: seed)
                let trainPath = (out as NSString).appendingPathComponent("train.csv")
                let valPath = (out as NSString).appendingPathComponent("val.csv")
                try write(plain.csv(train), to: trainPath)
                try write(plain.csv(val), to: valPath)
                written.append("\(trainPath) (\(NumberFormat.grouped(train.count)) rows, all at 1280×720)")
                written.append("\(valPath) (\(NumberFormat.grouped(val.count)) rows, at the source resolutions)")
            }
            Console.out("wrote " + written.joined(separator: ", "))
        }
    }

    func write(_ bytes: [UInt8], to path: String) throws {
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw GeneralError("cannot write \(path): \(error.localizedDescription)", remedy: "check the folder's permissions and free disk space")
        }
    }
}
