import Foundation
import Testing

@Test func demoDataThenAnalyzeWritesAllReports() throws {
    let folder = BinaryRunner.temporaryFolder()
    let data = folder.appendingPathComponent("data").path
    let generate = try BinaryRunner.run([
        "demo-data", "--rows", "600", "--splits", "--broken", "9", "--out", data, "--quiet",
    ])
    #expect(generate.status == 0, "\(generate.stderr)")
    #expect(generate.stdout.contains("manifest.csv (609 rows)"))

    let out = folder.appendingPathComponent("report").path
    let analyze = try BinaryRunner.run([
        "analyze", "\(data)/manifest.csv", "--split", "train=\(data)/train.csv", "--split", "val=\(data)/val.csv",
        "--out", out, "--quiet",
    ])
    #expect(analyze.status == 0, "\(analyze.stderr)")
    #expect(analyze.stdout.contains("all: 600 items"))
    #expect(analyze.stdout.contains("9 rejected"))
    #expect(analyze.stdout.contains("[critical]"))
    for file in ["report.md", "report.html", "report.json", "rejects-all.csv"] {
        #expect(FileManager.default.fileExists(atPath: "\(out)/\(file)"), "missing \(file)")
    }
    // The rejects file holds every rejected row: a header and nine lines.
    let rejects = try String(contentsOfFile: "\(out)/rejects-all.csv", encoding: .utf8)
    #expect(rejects.split(separator: "\n").count == 10)

    // --fail-on turns a critical finding into exit status 2.
    let strict = try BinaryRunner.run([
        "analyze", "\(data)/val.csv", "--name", "val", "--split", "train=\(data)/train.csv", "--out", out, "--quiet",
        "--fail-on", "critical", "--force",
    ])
    #expect(strict.status == 2)
}

@Test func userErrorsAreTwoPlainLines() throws {
    let missing = try BinaryRunner.run([
        "analyze", "/nonexistent/all.csv", "--quiet", "--out", BinaryRunner.temporaryFolder().path,
    ])
    #expect(missing.status == 1)
    #expect(missing.stderr.hasPrefix("error: cannot read manifest /nonexistent/all.csv"))
    #expect(missing.stderr.contains("how to fix: check the path"))

    let badTarget = try BinaryRunner.run(["analyze", "x.csv", "--target", "1280by720"])
    #expect(badTarget.status == 64)
    #expect(badTarget.stderr.contains("--target 1280by720 is not WIDTHxHEIGHT"))

    let noManifest = try BinaryRunner.run(["analyze", "--split", "train=a.csv"])
    #expect(noManifest.status == 64)
    #expect(noManifest.stderr.contains("give a manifest, or at least two --split"))

    let folder = BinaryRunner.temporaryFolder()
    try Data("name,kind\na,b\n".utf8).write(to: folder.appendingPathComponent("odd.csv"))
    let columns = try BinaryRunner.run([
        "analyze", folder.appendingPathComponent("odd.csv").path, "--quiet", "--out", folder.path,
    ])
    #expect(columns.status == 1)
    #expect(columns.stderr.contains("--column caption=설명"))
}

@Test func helpTeachesTheCommands() throws {
    let help = try BinaryRunner.run(["--help"])
    #expect(help.status == 0)
    #expect(help.stdout.contains("analyze"))
    #expect(help.stdout.contains("demo-data"))
    let analyzeHelp = try BinaryRunner.run(["analyze", "--help"])
    #expect(analyzeHelp.stdout.contains("--split <name=manifest>"))
    #expect(analyzeHelp.stdout.contains("Examples:"))
}
