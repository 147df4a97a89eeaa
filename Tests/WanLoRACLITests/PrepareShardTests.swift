import Foundation
import Testing

/// End-to-end: `prepare --shard`, `--merge` and `--dry-run --slurm` with the built binary and ffmpeg.
@Suite(.serialized) struct PrepareShardTests {
    typealias CLI = PrepareCommandTests

    static let options = ["--resolution", "64x48", "--frames", "17", "--jobs", "2", "--progress", "none"]
    static let resultFiles = ["manifest.csv", "train.csv", "val.csv", "quarantine.csv", "skipped.csv"]

    static let manifests = ["train.csv", "val.csv", "extra/train-extra.csv"]

    /// Ten 1.5 s videos and a broken file. train.csv: v0 … v7 and broken.mp4 (quarantined);
    /// val.csv: v8, v9; extra/train-extra.csv: ../v6.mp4 (the same file as train.csv's v6.mp4:
    /// skipped). Their shards of 3 (FNV-1a of "SPLIT\u{1F}PATH", splitmix64-mixed, mod 3, plus 1):
    /// 1 ← v5 v6 v7; 2 ← v0 v2 v3 v4; 3 ← v1 broken ../v6 and val's v8 v9.
    static func makeSplits(in folder: String) throws {
        try CLI.makeSources(in: folder, count: 10)
        try "not a video".write(toFile: folder + "/broken.mp4", atomically: true, encoding: .utf8)
        let header = "path,media_type,width,height,duration,category,caption"
        let train =
            [header] + (0..<8).map { "v\($0).mp4,video,160,120,1.5,축제,\"비디오 \($0), 캡션\"" }
            + ["broken.mp4,video,160,120,1.5,축제,깨진 파일"]
        let extra = [header, "../v6.mp4,video,160,120,1.5,축제,같은 파일"]
        try FileManager.default.createDirectory(atPath: folder + "/extra", withIntermediateDirectories: true)
        try (extra.joined(separator: "\n") + "\n").write(
            toFile: folder + "/extra/train-extra.csv", atomically: true, encoding: .utf8)
        let val = [header] + (8..<10).map { "v\($0).mp4,video,160,120,1.5,역사/사회,검증 \($0)" }
        try (train.joined(separator: "\n") + "\n").write(
            toFile: folder + "/train.csv", atomically: true, encoding: .utf8)
        try (val.joined(separator: "\n") + "\n").write(toFile: folder + "/val.csv", atomically: true, encoding: .utf8)
    }

    static func contents(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    static func shardRecord(_ folder: String) throws -> [String: Any] {
        let bytes = try #require(contents(folder + "/shard.json"))
        return try #require(try JSONSerialization.jsonObject(with: bytes) as? [String: Any])
    }

    /// The merged folder holds the single run's result files byte for byte and the same clips.
    static func expectSameResult(_ single: String, _ merged: String) {
        for name in resultFiles {
            let a = contents(single + "/" + name)
            #expect(a != nil && a == contents(merged + "/" + name), "\(name) differs")
        }
        // The merged folder may hold the shard folders too (the Slurm script puts them there).
        let clips = CLI.clips(in: single)
        #expect(CLI.clips(in: merged).filter { !$0.hasPrefix("shard-") } == clips)
        for clip in clips {
            let a = contents(single + "/" + clip)
            #expect(a != nil && a == contents(merged + "/" + clip), "\(clip) differs")
        }
    }

    @Test func threeShardsAndTheirMergeEqualOneRun() throws {
        let folder = CLI.makeFolder("shards")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.makeSplits(in: folder)
        let single = try CLI.run(["prepare"] + Self.manifests + ["--out", "single"] + Self.options, in: folder)
        #expect(single.status == 0, "\(single.error)")
        #expect(single.output.contains("check: 12 items = 10 prepared + 1 quarantined + 1 skipped"))

        let shares: [Int: [String: Int]] = [
            1: ["train": 3, "val": 0], 2: ["train": 4, "val": 0], 3: ["train": 3, "val": 2],
        ]
        for index in 1...3 {
            let run = try CLI.run(
                ["prepare"] + Self.manifests + ["--out", "shards/\(index)", "--shard", "\(index)/3"] + Self.options,
                in: folder)
            #expect(run.status == 0, "\(run.error)")
            let record = try Self.shardRecord(folder + "/shards/\(index)")
            #expect(record["shard"] as? Int == index)
            #expect(record["shards"] as? Int == 3)
            #expect(record["items"] as? [String: Int] == shares[index])
            #expect(record["all_items"] as? [String: Int] == ["train": 10, "val": 2])
        }
        // The duplicate ../v6.mp4 is shard 3's, v6.mp4 shard 1's: shard 3 sets it aside, shard 1 prepares it.
        let skipped3 = try String(contentsOfFile: folder + "/shards/3/skipped.csv", encoding: .utf8)
        #expect(skipped3.contains("the same file is already in split train"))
        #expect(CLI.clips(in: folder + "/shards/1").count == 3)
        #expect(CLI.clips(in: folder + "/shards/3").count == 3)

        let folders = (1...3).map { "shards/\($0)" }
        let merge = try CLI.run(["prepare", "--merge"] + folders + ["--out", "merged"], in: folder)
        #expect(merge.status == 0, "\(merge.error)")
        #expect(merge.output.contains("merged 3 shards"))
        #expect(merge.output.contains("check: 12 items = 10 prepared + 1 quarantined + 1 skipped, each in exactly one"))
        #expect(merge.output.contains("10 hard-linked, 0 already in place, 0 copied"))
        Self.expectSameResult(folder + "/single", folder + "/merged")
        // Hard links: the merged clip is the shard's file, not a copy.
        let clip = try #require(CLI.clips(in: folder + "/shards/1").first)
        let attributes = try FileManager.default.attributesOfItem(atPath: folder + "/merged/" + clip)
        let shardAttributes = try FileManager.default.attributesOfItem(atPath: folder + "/shards/1/" + clip)
        #expect(attributes[.systemFileNumber] as? Int == shardAttributes[.systemFileNumber] as? Int)

        // Merging again changes nothing.
        let again = try CLI.run(["prepare", "--merge"] + folders + ["--out", "merged"], in: folder)
        #expect(again.status == 0, "\(again.error)")
        #expect(again.output.contains("0 hard-linked, 10 already in place"))
        Self.expectSameResult(folder + "/single", folder + "/merged")

        // What the merge refuses, and says how to fix.
        func refusal(_ folders: [String]) throws -> String {
            let run = try CLI.run(["prepare", "--merge"] + folders + ["--out", "refused"], in: folder)
            #expect(run.status == 1)
            #expect(run.error.contains("how to fix:"))
            return run.error
        }
        #expect(try refusal(["shards/1", "shards/3"]).contains("shard 2 of 3 is missing"))
        #expect(try refusal(["shards/1", "shards/2", "shards/2", "shards/3"]).contains("shard 2/3 is given twice"))
        #expect(try refusal(["shards/1", "shards/2", "nowhere"]).contains("shard folder"))
        let other = try CLI.run(
            ["prepare"] + Self.manifests + ["--out", "other-n", "--shard", "2/2"] + Self.options, in: folder)
        #expect(other.status == 0, "\(other.error)")
        #expect(try refusal(["shards/1", "other-n", "shards/3"]).contains("is shard 2/2, but"))
        let seed = try CLI.run(
            ["prepare"] + Self.manifests + ["--out", "other-seed", "--shard", "2/3", "--seed", "7"] + Self.options,
            in: folder)
        #expect(seed.status == 0, "\(seed.error)")
        #expect(try refusal(["shards/1", "other-seed", "shards/3"]).contains("other manifests or with other options"))
        // A shard that never finished has no shard.json.
        try FileManager.default.createDirectory(atPath: folder + "/unfinished", withIntermediateDirectories: true)
        #expect(try refusal(["shards/1", "unfinished", "shards/3"]).contains("is not a finished shard"))
        // A clip listed by two shards (a folder edited after its run).
        try FileManager.default.copyItem(atPath: folder + "/shards/3", toPath: folder + "/edited")
        let manifest1 = try String(contentsOfFile: folder + "/shards/1/manifest.csv", encoding: .utf8)
        let row = try #require(manifest1.split(separator: "\n").dropFirst().first)
        let handle = try #require(FileHandle(forWritingAtPath: folder + "/edited/manifest.csv"))
        handle.seekToEndOfFile()
        handle.write(Data((row + "\n").utf8))
        handle.closeFile()
        #expect(try refusal(["shards/1", "shards/2", "edited"]).contains("is in two shards"))
        #expect(!FileManager.default.fileExists(atPath: folder + "/refused/manifest.csv"))
    }

    @Test func killedShardResumesToTheSameResult() throws {
        let folder = CLI.makeFolder("shard-resume")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // Shard 1 of 2 of v0 … v7: v1, v3, v6, v7.
        try CLI.makeSources(in: folder, count: 8)
        let ffmpeg = try CLI.makeLoggingFFmpeg(in: folder)
        let common = [
            "prepare", "train.csv", "--shard", "1/2", "--ffmpeg", ffmpeg, "--resolution", "64x48", "--frames", "17",
            "--jobs", "1", "--progress", "none",
        ]
        setenv("FFMPEG_LOG", folder + "/reference.log", 1)
        let reference = try CLI.run(common + ["--out", "reference"], in: folder)
        #expect(reference.status == 0, "\(reference.error)")
        #expect(CLI.clips(in: folder + "/reference").count == 4)

        setenv("FFMPEG_LOG", folder + "/resumed.log", 1)
        _ = try CLI.killedAfterClips(common + ["--out", "resumed"], in: folder, output: folder + "/resumed", clips: 1)
        let finishedBeforeKill = CLI.clips(in: folder + "/resumed").count
        #expect(finishedBeforeKill >= 1 && finishedBeforeKill < 4, "the kill came too late to test anything")
        #expect(!FileManager.default.fileExists(atPath: folder + "/resumed/shard.json"))

        let resumed = try CLI.run(common + ["--out", "resumed"], in: folder)
        #expect(resumed.status == 0, "\(resumed.error)")
        #expect(resumed.output.contains("\(finishedBeforeKill) reused"))
        for name in ["manifest.csv", "train.csv", "quarantine.csv", "skipped.csv", "shard.json"] {
            let a = Self.contents(folder + "/reference/" + name)
            #expect(a != nil && a == Self.contents(folder + "/resumed/" + name), "\(name) differs")
        }
        let clips = CLI.clips(in: folder + "/reference")
        #expect(CLI.clips(in: folder + "/resumed") == clips)
        for clip in clips {
            let a = Self.contents(folder + "/reference/" + clip)
            #expect(a != nil && a == Self.contents(folder + "/resumed/" + clip), "\(clip) differs")
        }
        #expect(CLI.allFiles(in: folder + "/resumed").filter { $0.hasSuffix(".part") }.isEmpty)
    }

    /// The printed script, submitted through a stand-in `sbatch` that keeps each job's script, then
    /// run as Slurm would: the array script once per task id, then the merge.
    @Test func slurmScriptRunsEveryShardThenTheMerge() throws {
        let folder = CLI.makeFolder("slurm")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.makeSplits(in: folder)
        let printed = try CLI.run(
            ["prepare"] + Self.manifests + [
                "--out", "prepared", "--dry-run", "--slurm", "3", "--slurm-time", "01:00:00", "--slurm-partition",
                "cpu",
            ] + Self.options, in: folder)
        #expect(printed.status == 0, "\(printed.error)")
        let script = printed.output
        #expect(script.contains("# wanlora prepare on Slurm: 12 items in 3 shards (3, 4, 5 items)"))
        #expect(script.contains("#SBATCH --array=1-3\n"))
        #expect(script.contains("#SBATCH --cpus-per-task=2\n"))
        #expect(script.contains("#SBATCH --time=01:00:00\n"))
        #expect(script.contains("#SBATCH --partition=cpu\n"))
        #expect(script.contains("#SBATCH --chdir=\(folder)\n") || script.contains("#SBATCH --chdir='\(folder)'\n"))
        #expect(
            script.contains(
                "prepare train.csv val.csv extra/train-extra.csv --resolution 64x48 --frames 17 --progress none "
                    + "--shard \"$SLURM_ARRAY_TASK_ID\"/3 --out prepared/shard-\"$SLURM_ARRAY_TASK_ID\"-of-3 --jobs 2 &"
            ))
        #expect(
            script.contains(
                "prepare --merge prepared/shard-1-of-3 prepared/shard-2-of-3 prepared/shard-3-of-3 --out prepared\n"))
        #expect(!script.contains("--dry-run"))
        #expect(!script.contains("--slurm"))

        let jobs = folder + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs + "/bin", withIntermediateDirectories: true)
        let sbatch = """
            #!/bin/sh
            n=$(ls "$JOBS" | grep -c '^job.*\\.sh$')
            cat > "$JOBS/job$n.sh"
            echo "$@" > "$JOBS/job$n.args"
            echo "70$n;cluster"
            """
        try sbatch.write(toFile: jobs + "/bin/sbatch", atomically: true, encoding: .utf8)
        chmod(jobs + "/bin/sbatch", 0o755)
        try script.write(toFile: folder + "/prepare-slurm.sh", atomically: true, encoding: .utf8)
        let path = jobs + "/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        try CLI.shell("cd '\(folder)' && JOBS='\(jobs)' PATH='\(path)' bash prepare-slurm.sh 2> submit.log")
        #expect(try String(contentsOfFile: jobs + "/job0.args", encoding: .utf8) == "--parsable\n")
        // The merge waits for the whole array, whose id sbatch gave without its cluster name.
        #expect(
            try String(contentsOfFile: jobs + "/job1.args", encoding: .utf8) == "--parsable --dependency=afterok:700\n")
        for task in 1...3 {
            try CLI.shell(
                "cd '\(folder)' && SLURM_ARRAY_TASK_ID=\(task) SLURM_JOB_ID=80\(task) bash '\(jobs)/job0.sh' "
                    + "> task\(task).log 2>&1")
        }
        try CLI.shell("cd '\(folder)' && bash '\(jobs)/job1.sh' > merge.log 2>&1")
        let single = try CLI.run(["prepare"] + Self.manifests + ["--out", "single"] + Self.options, in: folder)
        #expect(single.status == 0, "\(single.error)")
        Self.expectSameResult(folder + "/single", folder + "/prepared")
    }

    @Test func badShardOptionsSayHowToFixThem() throws {
        let folder = CLI.makeFolder("shard-options")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func error(_ arguments: [String]) throws -> String {
            let run = try CLI.run(["prepare"] + arguments, in: folder)
            #expect(run.status != 0)
            return run.error
        }
        let base = ["train.csv", "--out", "x", "--shard"]
        #expect(try error(base + ["4/3"]).contains("--shard 4/3: shards are numbered 1 to 3, so 4 names none of them"))
        #expect(try error(base + ["0/3"]).contains("shards are numbered 1 to 3, so 0 names none of them"))
        #expect(try error(base + ["1/0"]).contains("--shard 1/0: the number of shards N must be at least 1"))
        #expect(try error(base + ["2"]).contains("--shard 2 is not K/N"))
        #expect(try error(base + ["a/b"]).contains("--shard a/b is not K/N"))
        #expect(try error(base + ["2/3/4"]).contains("--shard 2/3/4 is not K/N"))
        #expect(try error(base + ["1-3"]).contains("--shard \"$SLURM_ARRAY_TASK_ID\"/3 with --array=1-3"))
        #expect(try error(["train.csv", "--out", "x", "--slurm", "3"]).contains("add --dry-run"))
        #expect(try error(["train.csv", "--out", "x", "--dry-run", "--slurm", "0"]).contains("at least 1"))
        #expect(try error(["train.csv", "--merge", "a", "b", "--out", "x"]).contains("remove train.csv"))
        #expect(try error(["--merge", "a", "--shard", "1/2", "--out", "x"]).contains("--merge goes alone"))
        #expect(try error(["--out", "x"]).contains("give the manifests to prepare"))
    }
}
