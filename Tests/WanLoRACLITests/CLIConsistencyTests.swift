import Foundation
import Testing

/// One convention across commands (#22.5–7): worker counts, progress, presets, help topics, outputs that are
/// not replaced silently, and errors that say what to do instead of a Foundation error code.
@Suite struct CLIConsistencyTests {
    /// A small demo manifest (metadata only: curate and analyze run without media).
    static func demoManifest(in folder: URL) throws -> String {
        let data = folder.appendingPathComponent("data").path
        let generate = try BinaryRunner.run(["demo-data", "--rows", "60", "--out", data, "--quiet"])
        #expect(generate.status == 0, "\(generate.stderr)")
        return "\(data)/manifest.csv"
    }

    /// Runs the binary as an unprivileged user for whom `folder` is read-only: as root (which writes
    /// anywhere) through setpriv as nobody, whose folders these are not; else with the folder made 0555.
    static func runWithoutWriteAccess(to folder: URL, _ arguments: [String]) throws -> BinaryRunner.Result {
        if geteuid() == 0 {
            return try BinaryRunner.runProgram(
                "/usr/bin/setpriv",
                ["--reuid=65534", "--regid=65534", "--clear-groups", BinaryRunner.binary.path] + arguments)
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: folder.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder.path) }
        return try BinaryRunner.run(arguments)
    }

    @Test func helpOfAnUnknownCommandFailsAndListsTheCommands() throws {
        let unknown = try BinaryRunner.run(["help", "nonexistent"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("`wanlora` has no command \"nonexistent\""))
        #expect(unknown.stderr.contains("analyze, curate, probe, prepare, plan, config, cache, train, runs, sample"))
        let nested = try BinaryRunner.run(["help", "config", "bogus"])
        #expect(nested.status == 64 && nested.stderr.contains("the commands are: init, check, show, generate"))
        let known = try BinaryRunner.run(["help", "config", "init"])
        #expect(known.status == 0 && known.stdout.contains("--preset"))
    }

    @Test func everyLongCommandTakesJobsProgressAndQuietTheSameWay() throws {
        func help(_ command: [String]) throws -> String {
            try BinaryRunner.run(command + ["--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(
                separator: " ")
        }
        for command in ["analyze", "curate", "probe", "prepare", "cache", "train", "sample", "evaluate", "demo-data"] {
            let text = try help([command])
            #expect(text.contains("--progress <style>"), "\(command) lacks --progress")
            #expect(text.contains("--quiet"), "\(command) lacks --quiet")
        }
        for command in ["curate", "probe", "prepare", "demo-data"] {
            #expect(try help([command]).contains("-j, --jobs <n>"), "\(command) lacks --jobs")
        }
        #expect(!(try help(["curate"]).contains("--workers")))  // a hidden, deprecated alias
        for command in ["cache", "train"] {
            #expect(try help([command]).contains("--preset <preset>"), "\(command) lacks --preset")
        }
        let badStyle = try BinaryRunner.run(["probe", "x.csv", "--progress", "fancy"])
        #expect(badStyle.status == 64 && badStyle.stderr.contains("'fancy' is invalid for '--progress <style>'"))
    }

    /// `--out DIR` is a folder on every command, created when missing, with a default named after its
    /// contents; the two commands that write one file take `-o/--output FILE` (their old `--out` still works).
    @Test func outNamesAFolderEverywhereAndOutputAFile() throws {
        func help(_ command: [String]) throws -> String {
            try BinaryRunner.run(command + ["--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(
                separator: " ")
        }
        for (command, folder) in [
            ("demo-data", "demo"), ("analyze", "report"), ("curate", "curated"), ("prepare", "prepared"),
            ("sample", "samples"), ("evaluate", "eval"),
        ] {
            #expect(try help([command]).contains("--out <dir>"), "\(command)")
            #expect(try help([command]).contains("(default: \(folder))"), "\(command)")
        }
        for command in [["probe"], ["config", "init"]] {
            let text = try help(command)
            #expect(text.contains("-o, --output <file>") && !text.contains("--out "), "\(command)")
        }
        let folder = BinaryRunner.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let old = try BinaryRunner.run(["config", "init", "--out", folder.appendingPathComponent("a.toml").path])
        #expect(old.status == 0 && old.stderr.contains("warning: --out FILE is deprecated here"))
    }

    @Test func curateStillTakesWorkersAndWarns() throws {
        let folder = BinaryRunner.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try Self.demoManifest(in: folder)
        let out = folder.appendingPathComponent("curated").path
        let old = try BinaryRunner.run(["curate", manifest, "--out", out, "--workers", "2", "--quiet"])
        #expect(old.status == 0, "\(old.stderr)")
        #expect(old.stderr.contains("warning: --workers is deprecated and will be removed; use --jobs"))
        let both = try BinaryRunner.run(["curate", manifest, "--out", out, "--workers", "2", "-j", "2"])
        #expect(both.status == 64 && both.stderr.contains("give --jobs only"))
    }

    @Test func cacheStartsFromAPresetLikePlanAndSample() throws {
        let result = try BinaryRunner.run([
            "cache", "--preset", "h100", "--set", "model.checkpoint=/nonexistent/Wan2.2", "--quiet",
        ])
        // Refused for the model folder (or a missing engine), no longer for a missing --config.
        #expect(result.status == 1, "\(result.stderr)")
        #expect(!result.stderr.contains("Missing expected argument"))
    }

    @Test func planOnOneGPUAdaptsThePresetsUlyssesDegree() throws {
        let result = try BinaryRunner.run(["plan", "--preset", "h100", "--gpus", "1", "--json"])
        #expect(result.stderr.contains("hardware.ulysses_degree = 2 does not divide the 1 GPU asked for"))
        #expect(result.stderr.contains("using Ulysses degree 1 (off)"))
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(plan["checks"] != nil)
        // An explicit degree is the user's choice: checked, not changed.
        let explicit = try BinaryRunner.run(["plan", "--preset", "h100", "--gpus", "1", "--ulysses", "2"])
        #expect(explicit.status == 1 && explicit.stderr.contains("does not divide the 1 GPUs"))
    }

    @Test func analyzeAndCurateDoNotReplaceAnEarlierOutputWithoutForce() throws {
        let folder = BinaryRunner.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try Self.demoManifest(in: folder)
        for (command, out) in [("analyze", "report"), ("curate", "curated")] {
            let path = folder.appendingPathComponent(out).path
            let first = try BinaryRunner.run([command, manifest, "--out", path, "--quiet"])
            #expect(first.status == 0, "\(first.stderr)")
            let again = try BinaryRunner.run([command, manifest, "--out", path, "--quiet"])
            #expect(again.status == 1, "\(command)")
            #expect(again.stderr.contains("already holds the output of an earlier `wanlora \(command)`"))
            #expect(again.stderr.contains("how to fix: add --force to replace it"))
            let forced = try BinaryRunner.run([command, manifest, "--out", path, "--quiet", "--force"])
            #expect(forced.status == 0, "\(forced.stderr)")
        }
    }

    @Test func manifestHeadersItCannotMapAreNamedWithTheFix() throws {
        let folder = BinaryRunner.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = folder.appendingPathComponent("items.csv").path
        try Data(
            "path,media_type,width,height,dur,cat,caption\na.mp4,video,1280,720,4.5,축제,한옥 마을의 봄 풍경입니다\n"
                .utf8
        ).write(to: URL(fileURLWithPath: manifest))
        let result = try BinaryRunner.run(["analyze", manifest, "--out", folder.appendingPathComponent("r").path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("headers not recognised: dur, cat"))
        #expect(result.stderr.contains("how to fix: map them: --column duration=dur --column category=cat"))
    }

    @Test func readOnlyFoldersGiveAnActionableError() throws {
        let folder = BinaryRunner.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try Self.demoManifest(in: folder)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder.path)
        try FileManager.default.setAttributes(
            [.posixPermissions: 0o644], ofItemAtPath: manifest)
        let curated = folder.appendingPathComponent("curated").path
        let curate = try Self.runWithoutWriteAccess(to: folder, ["curate", manifest, "--out", curated, "--quiet"])
        #expect(curate.status == 1)
        #expect(curate.stderr.hasPrefix("error: cannot write \(curated) (--out): cannot create \(curated): "))
        #expect(curate.stderr.contains("how to fix: give --out a place you can write to"))
        #expect(!curate.stderr.contains("NSCocoaErrorDomain"))

        let toml = folder.appendingPathComponent("run.toml").path
        let initialise = try Self.runWithoutWriteAccess(to: folder, ["config", "init", "--output", toml])
        #expect(initialise.status == 1)
        #expect(initialise.stderr.hasPrefix("error: cannot write \(toml) (--output): cannot create a file in it"))
        #expect(!initialise.stderr.contains("NSCocoaErrorDomain"))
    }

    @Test func probeChecksItsOutputBeforeProbingAnything() throws {
        let folder = BinaryRunner.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try Self.demoManifest(in: folder)
        // A missing ffprobe would fail every file: the output check must come first.
        let result = try BinaryRunner.run([
            "probe", manifest, "--output", "/proc/version/probe.csv", "--ffprobe", "/nonexistent/ffprobe",
            "--progress", "plain",
        ])
        #expect(result.status == 1)
        #expect(
            result.stderr.hasPrefix("error: cannot write /proc/version/probe.csv (--output): /proc/version is a file"))
        #expect(!result.stderr.contains("probe:"))
    }
}
