import Foundation
import Testing

/// End-to-end: the built `wanlora` binary, run the way a user runs it.
@Suite(.serialized) struct PrepareCommandTests {
    /// `wanlora` sits beside the test bundle in the build folder.
    static func locateBinary() -> String {
        var folder =
            ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
            as NSString
        for _ in 0..<4 {
            folder = folder.deletingLastPathComponent as NSString
            let candidate = folder.appendingPathComponent("wanlora")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue {
                return candidate
            }
        }
        return "wanlora"
    }

    struct Run {
        var status: Int32
        var output: String
        var error: String
    }

    static func run(_ arguments: [String], in folder: String) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: locateBinary())
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        // Read both pipes before waiting, on two threads, so that neither fills up.
        nonisolated(unsafe) var errorData = Data()
        let reader = Thread { errorData = error.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { usleep(1_000) }
        return Run(
            status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
            error: String(decoding: errorData, as: UTF8.self))
    }

    static func shell(_ command: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        try process.run()
        process.waitUntilExit()
        if process.terminationStatus != 0 { throw CLITestError("failed: \(command)") }
    }

    static func makeFolder(_ label: String) -> String {
        let path = NSTemporaryDirectory() + "wanlora-cli-\(label)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Eight tiny videos and a manifest of them.
    static func makeSources(in folder: String, count: Int = 8) throws {
        var rows = ["path,media_type,width,height,duration,category,caption"]
        for index in 0..<count {
            try shell(
                "ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=160x120:rate=25 -t 1.5 "
                    + "-vf hue=h=\(index * 40) -c:v libx264 -preset ultrafast '\(folder)/v\(index).mp4'")
            rows.append("v\(index).mp4,video,160,120,1.5,축제,\"비디오 \(index), 캡션\"")
        }
        try (rows.joined(separator: "\n") + "\n").write(
            toFile: folder + "/train.csv", atomically: true, encoding: .utf8)
    }

    /// An ffmpeg that logs the output it was asked for, sleeps a little (so that a kill lands
    /// mid-run), then becomes the real ffmpeg (same process id).
    static func makeLoggingFFmpeg(in folder: String) throws -> String {
        let path = folder + "/ffmpeg-logged"
        let script = """
            #!/bin/sh
            for last in "$@"; do :; done
            echo "$last" >> "$FFMPEG_LOG"
            sleep 0.4
            exec ffmpeg "$@"
            """
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    /// The final name a temporary output stands for: `dir/.NAME.RUNID.part` → `dir/NAME`.
    static func finalName(_ temporary: String) -> String {
        let folder = (temporary as NSString).deletingLastPathComponent
        var name = (temporary as NSString).lastPathComponent
        if name.hasPrefix(".") { name.removeFirst() }
        if name.hasSuffix(".part") {
            name = ((name as NSString).deletingPathExtension as NSString).deletingPathExtension
        }
        return folder + "/" + name
    }

    static func allFiles(in folder: String) -> [String] {
        (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String]) ?? []
    }

    static func clips(in folder: String) -> [String] {
        allFiles(in: folder).filter { $0.hasSuffix(".mp4") && !$0.contains("/.") }.sorted()
    }

    /// Starts `wanlora ARGUMENTS` in `folder` and kills it with SIGKILL once `output` holds `clips` finished
    /// clips (or after 60 s); returns the killed process.
    static func killedAfterClips(_ arguments: [String], in folder: String, output: String, clips count: Int) throws
        -> Process
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: locateBinary())
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while clips(in: output).count < count && Date() < deadline { usleep(20_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return process
    }

    @Test func killedRunResumesToTheSameResult() throws {
        let folder = Self.makeFolder("resume")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.makeSources(in: folder)
        let ffmpeg = try Self.makeLoggingFFmpeg(in: folder)
        let common = [
            "prepare", "train.csv", "--resolution", "64x48", "--frames", "17", "--jobs", "2", "--ffmpeg", ffmpeg,
            "--progress", "none",
        ]

        // An uninterrupted run for reference.
        setenv("FFMPEG_LOG", folder + "/reference.log", 1)
        let reference = try Self.run(common + ["--out", "reference"], in: folder)
        #expect(reference.status == 0, "\(reference.error)")

        // The same run, killed with SIGKILL once three clips are finished.
        setenv("FFMPEG_LOG", folder + "/resumed.log", 1)
        let process = try Self.killedAfterClips(
            common + ["--out", "resumed"], in: folder, output: folder + "/resumed", clips: 3)
        #expect(process.terminationReason == .uncaughtSignal)
        let finishedBeforeKill = Set(Self.clips(in: folder + "/resumed"))
        let startedBeforeKill = try String(contentsOfFile: folder + "/resumed.log", encoding: .utf8).split(
            separator: "\n"
        ).count
        #expect(finishedBeforeKill.count >= 3)
        #expect(finishedBeforeKill.count < 8, "the kill came too late to test anything")
        #expect(!FileManager.default.fileExists(atPath: folder + "/resumed/manifest.csv"))

        // Run it again to the end.
        let resumed = try Self.run(common + ["--out", "resumed"], in: folder)
        #expect(resumed.status == 0, "\(resumed.error)")
        #expect(resumed.output.contains("reused"))

        // Same clips, byte for byte, and the same manifest.
        let referenceClips = Self.clips(in: folder + "/reference")
        #expect(referenceClips.count == 8)
        #expect(Self.clips(in: folder + "/resumed") == referenceClips)
        for clip in referenceClips {
            let a = FileManager.default.contents(atPath: folder + "/reference/" + clip)
            let b = FileManager.default.contents(atPath: folder + "/resumed/" + clip)
            #expect(a != nil && a == b, "\(clip) differs")
        }
        #expect(
            FileManager.default.contents(atPath: folder + "/reference/manifest.csv")
                == FileManager.default.contents(atPath: folder + "/resumed/manifest.csv"))
        let leftovers = Self.allFiles(in: folder + "/resumed").filter { $0.hasSuffix(".part") }
        #expect(leftovers.isEmpty)

        // Encodes per clip: once for those finished before the kill, at most twice (the ones in
        // flight when it came) for the rest; never more than `--jobs` clips encoded twice.
        let log = try String(contentsOfFile: folder + "/resumed.log", encoding: .utf8).split(separator: "\n").map {
            Self.finalName(String($0))
        }
        var encodes: [String: Int] = [:]
        for output in log { encodes[(output as NSString).lastPathComponent, default: 0] += 1 }
        #expect(encodes.count == 8)
        for clip in finishedBeforeKill {
            #expect(encodes[(clip as NSString).lastPathComponent] == 1, "\(clip) was encoded again after the kill")
        }
        let twice = encodes.values.filter { $0 == 2 }.count
        #expect(encodes.values.allSatisfy { $0 <= 2 })
        #expect(twice <= 2)
        #expect(log.count == 8 + twice)
        #expect(startedBeforeKill - finishedBeforeKill.count <= 2)
    }

    @Test func ctrlCStopsCleanlyAndResumes() throws {
        let folder = Self.makeFolder("interrupt")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.makeSources(in: folder, count: 6)
        let ffmpeg = try Self.makeLoggingFFmpeg(in: folder)
        setenv("FFMPEG_LOG", folder + "/interrupted.log", 1)
        let common = [
            "prepare", "train.csv", "--out", "out", "--resolution", "64x48", "--frames", "17", "--jobs", "2",
            "--ffmpeg", ffmpeg,
        ]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.locateBinary())
        process.arguments = common + ["--progress", "json"]
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while Self.clips(in: folder + "/out").count < 1 && Date() < deadline { usleep(20_000) }
        // Two ffmpeg (wrappers) are running now; SIGINT is what Ctrl-C sends.
        kill(process.processIdentifier, SIGINT)
        let errorText = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let outputText = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        #expect(outputText.contains("stopped:"))
        #expect(outputText.contains("run the same command again to resume"))
        #expect(errorText.contains("\"stage\":\"encode\""))
        #expect(errorText.contains("\"event\":\"progress\""))
        // Nothing half-written, no manifest, no ffmpeg left running for this folder.
        #expect(Self.allFiles(in: folder + "/out").filter { $0.hasSuffix(".part") }.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: folder + "/out/manifest.csv"))
        let finished = Self.clips(in: folder + "/out").count
        #expect(finished >= 1 && finished < 6)
        usleep(200_000)
        let survivors = try Self.processes(mentioning: folder + "/out/")
        #expect(survivors.isEmpty, "still running: \(survivors)")

        let resumed = try Self.run(common + ["--progress", "none"], in: folder)
        #expect(resumed.status == 0, "\(resumed.error)")
        #expect(resumed.output.contains("\(finished) reused"))
        #expect(Self.clips(in: folder + "/out").count == 6)
    }

    /// Command lines of running processes that contain `text`.
    static func processes(mentioning text: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap { name -> String? in
            guard Int32(name) != nil, let data = FileManager.default.contents(atPath: "/proc/\(name)/cmdline"),
                !data.isEmpty
            else { return nil }
            let line = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return line.contains(text) ? line : nil
        }
    }

    @Test func probeReportsUnreadableFilesAndMismatches() throws {
        let folder = Self.makeFolder("probe")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.makeSources(in: folder, count: 2)
        try "not a video".write(toFile: folder + "/broken.mp4", atomically: true, encoding: .utf8)
        try
            ("path,media_type,width,height,duration,category,caption\n"
            + "v0.mp4,video,160,120,1.5,축제,맞는 행\n"
            + "v1.mp4,video,1920,1080,20,축제,크기와 길이가 틀린 행\n"
            + "broken.mp4,video,160,120,1.5,축제,읽을 수 없는 파일\n").write(
                toFile: folder + "/all.csv", atomically: true, encoding: .utf8)
        let run = try Self.run(["probe", "all.csv", "--output", "probe.csv", "--quiet"], in: folder)
        // 1.5 s of testsrc2 at 25 fps is 38 whole frames: 1.52 s.
        #expect(run.status == 0, "\(run.error)")
        #expect(run.output.contains("probed 3 files"))
        #expect(run.output.contains("1 unreadable"))
        #expect(
            run.output.contains("v1.mp4 (line 3): resolution differs: manifest says 1920×1080, the file is 160×120"))
        #expect(run.output.contains("v1.mp4 (line 3): duration differs: manifest says 20.00 s, the file lasts 1.52 s"))
        let table = try String(contentsOfFile: folder + "/probe.csv", encoding: .utf8).split(separator: "\n")
        #expect(table.count == 4)
        #expect(
            table[1].hasPrefix(
                "v0.mp4,2,ok,video,h264,160,120,1:1,4:3,0,160,120,1.520,25/1,25/1,constant,progressive,no,yuv420p"))
        #expect(table[3].hasPrefix("broken.mp4,4,unreadable"))
    }

    @Test func badOptionsSayHowToFixThem() throws {
        let folder = Self.makeFolder("options")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let frames = try Self.run(["prepare", "train.csv", "--out", "x", "--frames", "80"], in: folder)
        #expect(frames.status != 0)
        #expect(frames.error.contains("--frames must be 4n+1"))
        let mode = try Self.run(["prepare", "train.csv", "--out", "x", "--mode", "random"], in: folder)
        #expect(mode.error.contains("use head, uniform or chunk"))
        let missing = try Self.run(["prepare", "nowhere.csv", "--out", "x"], in: folder)
        #expect(missing.status == 1)
        #expect(missing.error.contains("cannot read manifest nowhere.csv"))
        #expect(missing.error.contains("how to fix"))
        let split = try Self.run(["prepare", "a.csv", "b.csv", "--out", "x", "--split-name", "train"], in: folder)
        #expect(split.error.contains("--split-name"))
    }
}

struct CLITestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
