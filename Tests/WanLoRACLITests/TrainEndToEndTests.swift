import Foundation
import Testing

/// `wanlora cache`, `train` and `runs` as a user runs them: the launch command without an
/// engine (`--dry-run`), then the real engine on the tiny demo configuration.
@Suite(.serialized) struct TrainEndToEndTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let enginePython = repoRoot.appendingPathComponent("engine/.venv/bin/python").path
    static var haveEngine: Bool { FileManager.default.isExecutableFile(atPath: enginePython) }
    static var haveBinary: Bool { FileManager.default.isExecutableFile(atPath: BinaryRunner.binary.path) }

    func run(_ arguments: [String], in folder: URL) throws -> BinaryRunner.Result {
        try BinaryRunner.run(arguments, in: folder)
    }

    /// A project folder with a config, an (empty) model folder and a cache index of 2 videos
    /// and 1 image, and a stand-in engine venv (python + torchrun that only exit).
    func project() throws -> URL {
        let folder = BinaryRunner.temporaryFolder()
        let fm = FileManager.default
        try fm.createDirectory(at: folder.appendingPathComponent("model"), withIntermediateDirectories: true)
        try fm.createDirectory(at: folder.appendingPathComponent("venv/bin"), withIntermediateDirectories: true)
        for tool in ["python", "torchrun"] {
            let path = folder.appendingPathComponent("venv/bin/\(tool)").path
            try Data("#!/bin/sh\nexit 0\n".utf8).write(to: URL(fileURLWithPath: path))
            try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        }
        try Data(
            """
            preset = "h100"
            [run]
            name = "p"
            [model]
            checkpoint = "model"
            [training]
            frames = 49
            """.utf8
        ).write(to: folder.appendingPathComponent("run.toml"))
        let cache = folder.appendingPathComponent("cache/1280x720-49f-512t")
        try fm.createDirectory(at: cache.appendingPathComponent("train"), withIntermediateDirectories: true)
        try Data(
            (#"{"schema_version": 1, "settings": {"width": 1280, "height": 720, "frames": 49, "#
                + #""fps": 16, "text_length": 512, "model_fingerprint": "x"}, "model_path": "m"}"#).utf8
        )
        .write(to: cache.appendingPathComponent("cache.json"))
        try Data(
            """
            {"id": "a", "media_type": "video"}
            {"id": "b", "media_type": "image"}
            {"id": "c", "media_type": "video"}

            """.utf8
        ).write(to: cache.appendingPathComponent("train/index.jsonl"))
        return folder
    }

    /// model.checkpoint as a Hugging Face repo id: once the hub cache (HF_HUB_CACHE) holds it, it reaches
    /// the engine as written; before, the error names the folder and the cache entry it looked for.
    @Test(.enabled(if: haveBinary)) func aRepoIDInTheHubCacheReachesTheEngine() throws {
        let folder = try project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let toml = folder.appendingPathComponent("run.toml")
        let text = try String(contentsOf: toml, encoding: .utf8)
        let repoTOML = text.replacingOccurrences(
            of: #"checkpoint = "model""#, with: #"checkpoint = "Wan-AI/Wan2.2-T2V-A14B""#)
        try Data(repoTOML.utf8).write(to: toml)
        var environment = ProcessInfo.processInfo.environment
        environment["HF_HUB_CACHE"] = folder.path + "/hub"
        let arguments = [
            "train", "--config", "run.toml", "--engine-python", folder.path + "/venv/bin/python", "--gpus", "1",
            "--set", "hardware.ulysses_degree=1", "--dry-run", "--force",  // --force: this host's RAM is small
        ]
        let entry = folder.path + "/hub/models--Wan-AI--Wan2.2-T2V-A14B"
        let missing = try BinaryRunner.run(arguments, in: folder, environment: environment)
        #expect(missing.status == 1, "\(missing.stderr)")
        #expect(
            missing.stderr.contains("The model folder \(folder.path)/Wan-AI/Wan2.2-T2V-A14B (model.checkpoint)"))
        #expect(missing.stderr.contains("not in the local hub cache either (\(entry) does not exist"))
        #expect(missing.stderr.contains("huggingface-cli download Wan-AI/Wan2.2-T2V-A14B"))
        try FileManager.default.createDirectory(atPath: entry + "/snapshots", withIntermediateDirectories: true)
        let found = try BinaryRunner.run(arguments, in: folder, environment: environment)
        #expect(found.status == 0, "\(found.stderr)")
        let resolved = try JSONSerialization.jsonObject(
            with: Data(contentsOf: folder.appendingPathComponent("runs/p/config.resolved.json")))
        let model = (resolved as? [String: Any])?["model"] as? [String: Any]
        #expect(model?["checkpoint"] as? String == "Wan-AI/Wan2.2-T2V-A14B")
    }

    @Test(.enabled(if: haveBinary)) func dryRunShowsTheLaunchForOneAndSeveralGPUs() throws {
        let folder = try project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let venv = folder.appendingPathComponent("venv/bin").path
        let config = folder.appendingPathComponent("run.toml").path
        let four = try run(
            [
                "train", "--config", "run.toml", "--engine-python", venv + "/python", "--gpus", "4", "--dry-run",
                "--force",
            ], in: folder)
        #expect(four.status == 0, "\(four.stderr)")
        let runDir = folder.path + "/runs/p"
        #expect(four.stdout.contains("run folder:  \(runDir)\n"))
        #expect(four.stdout.contains("processes:   4 (torchrun)\n"))
        #expect(
            four.stdout.contains(
                "command:     \(venv)/python -m torch.distributed.run --nnodes 1 --nproc-per-node 4 --standalone "
                    + "--signals-to-handle SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 --shutdown-timeout 135 -m "
                    + "wanlora_engine train --config \(runDir)/config.resolved.json --ulysses 2 --fsdp\n"
            ), "\(four.stdout)")
        // The same launch for Slurm and the per-GPU plan (the Launch library's dry-run text).
        #expect(
            four.stdout.contains(
                "srun --export=ALL \(venv)/python -m torch.distributed.run --nnodes 1 --nproc-per-node 4 --standalone"))
        #expect(four.stdout.contains("Per-GPU plan (H100"))
        #expect(
            four.stdout.contains("Ulysses         2 (a 49-frame clip's 46,800 tokens: 23,400 per GPU)"),
            "\(four.stdout)")
        #expect(!four.stdout.contains("trains on one process"))  // the old single-process note is gone
        #expect(four.stdout.contains("plan:        "))  // a GPU run is planned
        // a dry run writes only the config its command and Slurm script read
        #expect(
            four.stdout.contains(
                "config:      \(runDir)/config.resolved.json (written for the command and the Slurm script below)\n"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: runDir) == ["config.resolved.json"])
        #expect(four.stdout.contains("#SBATCH --requeue\n") && four.stdout.contains("#SBATCH --signal=B:USR1@165\n"))
        let one = try run(
            [
                "train", "--config", config, "--engine-python", venv + "/python", "--gpus", "1",
                "--set", "hardware.ulysses_degree=1", "--set", "training.frames=49", "--dry-run", "--resume", "--force",
            ], in: folder)
        #expect(
            one.stdout.contains(
                "command:     \(venv)/python -m wanlora_engine train --config \(runDir)/config.resolved.json --resume\n"
            ), "\(one.stdout)\(one.stderr)")
        // --gpus 1 with the preset's Ulysses degree 2 lowers the degree, with a note naming the key (#22.6).
        let ulysses = try run(
            ["train", "--config", "run.toml", "--engine-python", venv + "/python", "--gpus", "1", "--dry-run"],
            in: folder)
        #expect(
            ulysses.stderr.contains(
                "note: hardware.ulysses_degree = 2 does not divide the 1 GPU asked for: using Ulysses degree 1 (off)"),
            "\(ulysses.stderr)")
        #expect(!ulysses.stderr.contains("does not divide the 1 GPUs"))
        // Training needs its cache.
        let noCache = try run(
            [
                "train", "--config", "run.toml", "--engine-python", venv + "/python", "--set", "training.frames=81",
                "--dry-run",
            ], in: folder)
        #expect(
            noCache.status == 1
                && noCache.stderr.contains("There is no cache at \(folder.path)/cache/1280x720-81f-512t"))
        #expect(noCache.stderr.contains("wanlora cache --config run.toml"))
        // An engine that is not there.
        let missing = try run(
            ["train", "--config", "run.toml", "--engine-python", "/nonexistent/python", "--dry-run"], in: folder)
        #expect(
            missing.status == 1
                && missing.stderr.contains("/nonexistent/python (from --engine-python) is not an executable file"))
        // the config the dry run wrote makes a run `wanlora runs` lists as new
        let runs = try run(["runs", "--config", "run.toml"], in: folder)
        #expect(runs.status == 0 && runs.stdout.contains("\np ") && runs.stdout.contains(" new "), "\(runs.stdout)")
        let nowhere = try run(["runs", "--runs-dir", "nowhere"], in: folder)
        #expect(nowhere.status == 1 && nowhere.stderr.contains("runs folder \(folder.path)/nowhere does not exist"))
    }

    /// A stand-in for the engine's Python: writes its arguments and environment, exits 7.
    func recordingPython(in folder: URL) throws -> String {
        let script = folder.appendingPathComponent("venv/bin/python")
        try """
        #!/bin/sh
        printf '%s\\n' "$@" > "$(dirname "$0")/args.txt"
        env > "$(dirname "$0")/env.txt"
        exit 7
        """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        return script.path
    }

    @Test(.enabled(if: haveBinary)) func launchPassesTheCallersEnvironmentToEveryRankUnchanged() throws {
        let folder = try project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let python = try recordingPython(in: folder)
        var environment = ProcessInfo.processInfo.environment
        environment["NCCL_NVLS_ENABLE"] = "0"
        environment["TORCH_SYMM_MEM_DISABLE_MULTICAST"] = "1"
        environment["NVSHMEM_DISABLE_NVLS"] = "1"
        environment["WANLORA_TEST_MARK"] = "한글 and spaces"
        environment.removeValue(forKey: "WANLORA_ENGINE_PYTHON")
        let result = try BinaryRunner.run(
            [
                "train", "--config", "run.toml", "--engine-python", python, "--gpus", "2", "--ulysses", "2",
                "--no-fsdp", "--shutdown-timeout", "120", "--progress", "plain", "--force",
            ],
            in: folder, environment: environment)
        #expect(result.status != 0, "\(result.stderr)")  // the stand-in exits 7 without events
        let arguments = try String(contentsOf: folder.appendingPathComponent("venv/bin/args.txt"), encoding: .utf8)
        #expect(
            arguments == """
                -m
                torch.distributed.run
                --nnodes
                1
                --nproc-per-node
                2
                --standalone
                --signals-to-handle
                SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1
                --shutdown-timeout
                120
                -m
                wanlora_engine
                train
                --config
                \(folder.path)/runs/p/config.resolved.json
                --ulysses
                2

                """)
        let seen = try String(contentsOf: folder.appendingPathComponent("venv/bin/env.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        for line in [
            "NCCL_NVLS_ENABLE=0", "TORCH_SYMM_MEM_DISABLE_MULTICAST=1", "NVSHMEM_DISABLE_NVLS=1",
            "WANLORA_TEST_MARK=한글 and spaces",
        ] {
            #expect(seen.contains(line), "\(line)")
        }
        if let path = environment["PATH"] { #expect(seen.contains("PATH=\(path)")) }
    }

    @Test(.enabled(if: haveBinary)) func cacheStartsTorchrunOnTheGPUsItIsGiven() throws {
        let folder = try project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let python = try recordingPython(in: folder)
        try Data("path,caption\n".utf8).write(to: folder.appendingPathComponent("train.csv"))
        let base = [
            "cache", "--config", "run.toml", "--engine-python", python, "--set", "data.train_manifest=\"train.csv\"",
            "--set", "data.val_manifest=\"\"", "--progress", "plain",
        ]
        // 3 GPUs although the preset's Ulysses degree (2) does not divide 3: the cache stage has no Ulysses groups.
        let three = try run(base + ["--gpus", "3"], in: folder)
        #expect(three.status != 0, "\(three.stderr)")  // the stand-in exits 7 without events
        let arguments = try String(contentsOf: folder.appendingPathComponent("venv/bin/args.txt"), encoding: .utf8)
        #expect(
            arguments.split(separator: "\n").joined(separator: " ")
                == "-m torch.distributed.run --nnodes 1 --nproc-per-node 3 --standalone --signals-to-handle "
                + "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 -m wanlora_engine cache --config "
                + "\(folder.path)/runs/p/config.resolved.json", "\(arguments)")
        // One GPU: the engine itself, no torchrun.
        _ = try run(base + ["--gpus", "1"], in: folder)
        let one = try String(contentsOf: folder.appendingPathComponent("venv/bin/args.txt"), encoding: .utf8)
        #expect(one == "-m\nwanlora_engine\ncache\n--config\n\(folder.path)/runs/p/config.resolved.json\n")
        // Two nodes: this node's rank and node 0's address, as for train.
        _ = try run(
            base + ["--gpus", "2", "--nodes", "2", "--node-rank", "1", "--master", "10.0.0.1:29500"], in: folder)
        let nodes = try String(contentsOf: folder.appendingPathComponent("venv/bin/args.txt"), encoding: .utf8)
        #expect(
            nodes.split(separator: "\n").joined(separator: " ").hasPrefix(
                "-m torch.distributed.run --nnodes 2 --nproc-per-node 2 --node-rank 1 --master-addr 10.0.0.1 "
                    + "--master-port 29500 --signals-to-handle SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 -m wanlora_engine "
                    + "cache --config"), "\(nodes)")
        let noMaster = try run(base + ["--gpus", "2", "--nodes", "2"], in: folder)
        #expect(
            noMaster.status == 1 && noMaster.stderr.contains("--nodes 2 needs the address where node 0 waits"),
            "\(noMaster.stderr)")
        let zero = try run(base + ["--gpus", "0"], in: folder)
        #expect(zero.status != 0 && zero.stderr.contains("--gpus must be 1 or more, not 0."), "\(zero.stderr)")
    }

    @Test(.enabled(if: haveBinary)) func severalNodesAndImpossibleLayouts() throws {
        let folder = try project()
        defer { try? FileManager.default.removeItem(at: folder) }
        let python = folder.appendingPathComponent("venv/bin/python").path
        let base = ["train", "--config", "run.toml", "--engine-python", python, "--dry-run", "--force"]
        let two = try run(
            base + ["--gpus", "8", "--nodes", "2", "--node-rank", "1", "--master", "10.0.0.1:29500"], in: folder)
        #expect(two.status == 0, "\(two.stderr)")
        #expect(
            two.stdout.contains(
                "command:     \(python) -m torch.distributed.run --nnodes 2 --nproc-per-node 8 --node-rank 1 "
                    + "--master-addr 10.0.0.1 --master-port 29500 --signals-to-handle "
                    + "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 --shutdown-timeout 135 -m wanlora_engine train"
            ), "\(two.stdout)")
        #expect(
            two.stdout.contains("#SBATCH --nodes=2")
                && two.stdout.contains("--node-rank \"$SLURM_NODEID\" --master-addr \"$head\""))
        #expect(two.stdout.contains("Launch on this node (node 1 of 2"))
        // Without --master a dry run still shows the Slurm script, which finds node 0 in SLURM_JOB_NODELIST;
        // starting a node needs it.
        let slurm = try run(
            base + [
                "--gpus", "8", "--nodes", "2", "--slurm-time", "48:00:00", "--slurm-partition", "gpu",
                "--slurm-account", "lab",
            ], in: folder)
        #expect(slurm.status == 0, "\(slurm.stderr)")
        #expect(slurm.stdout.contains("--master-addr NODE0_ADDRESS --master-port 29500"))
        for line in [
            "#SBATCH --time=48:00:00", "#SBATCH --partition=gpu", "#SBATCH --account=lab",
            "export head=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)", "trap stop_and_requeue USR1",
        ] {
            #expect(slurm.stdout.contains("  " + line + "\n"), "\(line)")
        }
        let nodes = try run(
            ["train", "--config", "run.toml", "--engine-python", python, "--force", "--gpus", "8", "--nodes", "2"],
            in: folder)
        #expect(
            nodes.status == 1 && nodes.stderr.contains("--nodes 2 needs the address where node 0 waits"),
            "\(nodes.stderr)")
        let master = try run(base + ["--master", "node0"], in: folder)
        #expect(master.status != 0 && master.stderr.contains("--master node0 is not ADDR:PORT."), "\(master.stderr)")
        let odd = try run(base + ["--gpus", "6", "--ulysses", "4"], in: folder)
        #expect(odd.status == 1 && odd.stderr.contains("4"), "\(odd.stderr)")
    }

    /// The real engine on the tiny demo configuration (a tiny random Wan2.2 model, 4 + 2 real
    /// media files): cache, a 2-step training, then Ctrl-C during a long run, a refused and a
    /// forced resume. `make test` creates engine/.venv, so CI runs this.
    @Test(
        .enabled(
            if: haveEngine && haveBinary,
            "engine/.venv is missing: `make -C engine venv` (make test does it) enables this test"))
    func cacheTrainInterruptResumeWithTheRealEngine() throws {
        let folder = BinaryRunner.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for stage in [
            ["tiny-model", "--out", "model", "--layout", "official"],
            ["demo-data", "--out", "data", "--images", "2", "--videos", "2"],
        ] {
            let made = try BinaryRunner.runProgram(Self.enginePython, ["-m", "wanlora_engine"] + stage, in: folder)
            #expect(made.status == 0, "\(made.stderr)")
        }
        try FileManager.default.copyItem(
            at: Self.repoRoot.appendingPathComponent("configs/demo.toml"),
            to: folder.appendingPathComponent("wanlora.toml"))

        let cache = try run(["cache", "--config", "wanlora.toml", "--progress", "plain"], in: folder)
        #expect(cache.status == 0, "\(cache.stderr)")
        #expect(cache.stdout.contains("cache complete: \(folder.path)/cache"))
        #expect(cache.stderr.contains("cache completed after") && cache.stderr.contains("6 items cached"))

        let train = try run(
            [
                "train", "--config", "wanlora.toml", "--set", "training.max_steps=2", "--set", "training.eval_steps=2",
                "--set", "training.save_steps=2", "--progress", "plain",
            ], in: folder)
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("training complete after 2 steps: \(folder.path)/runs/demo"))
        #expect(train.stderr.contains("step 2/2 (100%) · loss "))
        #expect(train.stderr.contains("note: training.device = \"cpu\""))
        for file in ["high_noise.diffusers.safetensors", "low_noise.comfyui.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: folder.path + "/runs/demo/lora/" + file))
        }
        let log = try String(contentsOfFile: folder.path + "/runs/demo/train.log", encoding: .utf8)
        #expect(log.contains("-m wanlora_engine train --config \(folder.path)/runs/demo/config.resolved.json"))

        // A long run, stopped with Ctrl-C (SIGINT to wanlora) after its first step: the engine
        // checkpoints and stops, wanlora exits 130. --progress json passes the events through.
        let long = [
            "train", "--config", "wanlora.toml", "--set", "run.name=stop", "--set", "training.max_steps=10000",
            "--set", "training.save_steps=0", "--set", "training.eval_steps=0",
        ]
        let stopped = try BinaryRunner.runUntil(
            long + ["--progress", "json"], in: folder,
            when: { $0.contains(#""event": "step""#) }, send: SIGINT)
        #expect(stopped.status == 130, "\(stopped.stderr)")
        #expect(stopped.stderr.contains("stopped: Interrupted at step "))
        let events = stopped.stdout.split(separator: "\n")
        let last = try #require(
            events.last.flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(last["event"] as? String == "run_finished" && last["status"] as? String == "interrupted")
        let step = try #require(last["step"] as? Int)
        #expect(step >= 1 && step < 10000)

        // Resuming with another max_steps is a changed configuration: refused, then forced.
        let refused = try run(
            long.dropLast(4) + [
                "--set", "training.max_steps=\(step + 1)", "--set", "training.save_steps=0",
                "--set", "training.eval_steps=0", "--resume",
            ], in: folder)
        #expect(
            refused.status == 1 && refused.stderr.contains("training.max_steps 10000 → \(step + 1)"),
            "\(refused.stderr)")
        let resumed = try run(
            long.dropLast(4) + [
                "--set", "training.max_steps=\(step + 1)", "--set", "training.save_steps=0",
                "--set", "training.eval_steps=0", "--resume", "--force", "--progress", "plain",
            ], in: folder)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming from step \(step)"))
        #expect(resumed.stdout.contains("training complete after \(step + 1) steps"))
        // A new start of a run with checkpoints is refused.
        let again = try run(long, in: folder)
        #expect(again.status == 1 && again.stderr.contains("already has checkpoints"))

        let runs = try run(["runs", "--config", "wanlora.toml", "--json"], in: folder)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        #expect(list.map { $0["name"] as? String } == ["demo", "stop"])
        #expect(list.map { $0["state"] as? String } == ["completed", "completed"])
        #expect(list.map { $0["step"] as? Int } == [2, step + 1])
        let table = try run(["runs", "--runs-dir", "runs"], in: folder)
        #expect(table.stdout.hasPrefix("run   stage  state      steps"))
    }
}

extension BinaryRunner {
    /// Runs wanlora and sends `signal` to it once a stdout line satisfies `when` (as a user's
    /// Ctrl-C would reach it: to wanlora only, the engine runs in its own process group).
    static func runUntil(
        _ arguments: [String], in directory: URL, when: @escaping @Sendable (String) -> Bool, send signal: Int32
    ) throws -> Result {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let pid = process.processIdentifier
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            var sent = false
            var pending = Data()
            while true {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                outData.append(chunk)
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    if !sent && when(line) {
                        sent = true
                        kill(pid, signal)
                    }
                }
            }
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        group.wait()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}
