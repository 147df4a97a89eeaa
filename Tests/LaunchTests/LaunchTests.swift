import Config
import Foundation
import Planner
import Testing

@testable import Launch

@Suite struct TorchrunCommandTests {
    let config = "/runs/v100/config.resolved.json"
    let python = "engine/.venv/bin/python"

    @Test func oneGPUStartsThePlainEngineWithoutTorchrun() throws {
        let request = LaunchRequest(
            gpusPerNode: 1, fsdp: true, configPath: config, resume: true, python: python,
            shutdownTimeoutSeconds: 600)
        #expect(
            try Launcher.command(for: request).arguments == [
                python, "-m", "wanlora_engine", "train", "--config", config, "--resume",
            ])
    }

    @Test func oneNodeOfTwoGPUsUsesStandaloneTorchrun() throws {
        let request = LaunchRequest(
            gpusPerNode: 2, ulysses: 2, fsdp: true, configPath: config, python: python,
            shutdownTimeoutSeconds: 600)
        let command = try Launcher.command(for: request)
        #expect(
            command.arguments == [
                python, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2", "--standalone",
                "--signals-to-handle", "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1",
                "--shutdown-timeout", "600", "-m", "wanlora_engine", "train", "--config", config, "--ulysses", "2",
                "--fsdp",
            ])
        #expect(
            command.shellLine == "engine/.venv/bin/python -m torch.distributed.run --nnodes 1 --nproc-per-node 2 "
                + "--standalone --signals-to-handle SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 --shutdown-timeout 600 "
                + "-m wanlora_engine train --config /runs/v100/config.resolved.json --ulysses 2 --fsdp")
        // Ulysses 1 and no FSDP leave the engine's flags out; torchrun's default shutdown when not asked
        let plain = LaunchRequest(gpusPerNode: 4, fsdp: false, configPath: config, python: python)
        #expect(
            try Launcher.command(for: plain).arguments == [
                python, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "4", "--standalone",
                "--signals-to-handle", "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1", "-m", "wanlora_engine", "train",
                "--config", config,
            ])
    }

    @Test func sampleRunsTheSampleStageUnderTorchrunWithItsLayoutAndNeverResumes() throws {
        let job = "/samples/a/sample-job.json"
        let two = LaunchRequest(
            stage: .sample, gpusPerNode: 4, ulysses: 2, fsdp: true, configPath: job, resume: true, python: python)
        #expect(
            try Launcher.command(for: two).arguments == [
                python, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "4", "--standalone",
                "--signals-to-handle", "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1", "-m", "wanlora_engine", "sample",
                "--config", job, "--ulysses", "2", "--fsdp",
            ])
        #expect(two.dataParallelSize == 2)
        let one = LaunchRequest(stage: .sample, gpusPerNode: 1, fsdp: false, configPath: job, python: python)
        #expect(
            try Launcher.command(for: one).arguments == [python, "-m", "wanlora_engine", "sample", "--config", job])
        // the Ulysses degree must divide the GPUs and the heads, as for training
        let bad = LaunchRequest(stage: .sample, gpusPerNode: 4, ulysses: 3, configPath: job, python: python)
        #expect(throws: LaunchError.self) { try Launcher.command(for: bad) }
    }

    @Test func maxRestartsRunsEvenOneGPUUnderTorchrunWithElasticRestarts() throws {
        let one = LaunchRequest(
            gpusPerNode: 1, configPath: config, python: python, shutdownTimeoutSeconds: 135, maxRestarts: 3)
        #expect(
            try Launcher.command(for: one).arguments == [
                python, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "1", "--standalone",
                "--max-restarts", "3", "--signals-to-handle", "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1",
                "--shutdown-timeout", "135",
                "-m", "wanlora_engine", "train", "--config", config,
            ])
        let negative = LaunchRequest(gpusPerNode: 2, configPath: config, maxRestarts: -1)
        #expect(throws: LaunchError.self) { try Launcher.command(for: negative) }
    }

    @Test func everyNodeOfAMultiNodeRunGetsTheSameCommandButItsRank() throws {
        let master = try MasterAddress(parsing: "10.0.0.1:29500")
        func node(_ rank: Int) throws -> [String] {
            try Launcher.command(
                for: LaunchRequest(
                    gpusPerNode: 8, nodes: 2, nodeRank: rank, master: master, ulysses: 4,
                    fsdp: true, configPath: config, python: python)
            ).arguments
        }
        #expect(
            try node(1) == [
                python, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "8", "--node-rank", "1",
                "--master-addr", "10.0.0.1", "--master-port", "29500", "--signals-to-handle",
                "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1",
                "-m", "wanlora_engine", "train", "--config", config, "--ulysses", "4", "--fsdp",
            ])
        var zero = try node(0)
        zero[8] = "1"
        #expect(zero == (try node(1)))
        let request = LaunchRequest(gpusPerNode: 8, nodes: 2, master: master, ulysses: 4, configPath: config)
        #expect(request.worldSize == 16 && request.dataParallelSize == 4)
    }

    @Test func impossibleLayoutsSayWhatWouldWork() {
        func problem(_ request: LaunchRequest) -> String {
            do {
                try request.validate()
                return "valid"
            } catch let error as LaunchError {
                return error.problem + " | " + error.remedy
            } catch { return "\(error)" }
        }
        let eight = LaunchRequest(gpusPerNode: 8, ulysses: 3, configPath: config)
        #expect(
            problem(eight) == "--ulysses 3 does not divide the 8 GPUs of the run (8 per node × 1 node). | "
                + "Use a Ulysses degree that divides 8 and the 40 heads: 1, 2, 4, 8.")
        let sixteen = LaunchRequest(
            gpusPerNode: 8, nodes: 2, master: MasterAddress(host: "a", port: 1), ulysses: 16,
            configPath: config)
        #expect(
            problem(sixteen) == "--ulysses 16 does not divide the model's 40 attention heads. | "
                + "Use a Ulysses degree that divides 40 and the 16 GPUs: 1, 2, 4, 8.")
        #expect(
            problem(LaunchRequest(gpusPerNode: 4, nodes: 2, configPath: config)).hasPrefix(
                "--nodes 2 needs the address"))
        #expect(
            problem(
                LaunchRequest(
                    gpusPerNode: 4, nodes: 2, nodeRank: 2, master: MasterAddress(host: "a", port: 1),
                    configPath: config)
            ).hasPrefix("--node-rank 2 is not one of the 2 nodes (0 to 1)."))
        #expect(problem(LaunchRequest(gpusPerNode: 0, configPath: config)).hasPrefix("--gpus 0"))
        #expect(problem(LaunchRequest(gpusPerNode: 2, ulysses: 0, configPath: config)).hasPrefix("--ulysses 0"))
        #expect(problem(LaunchRequest(gpusPerNode: 2, ulysses: 2, configPath: config)) == "valid")
        #expect(throws: LaunchError.self) { try Launcher.command(for: eight) }
    }

    @Test func masterAddresses() throws {
        #expect(try MasterAddress(parsing: "10.0.0.1:29500") == MasterAddress(host: "10.0.0.1", port: 29500))
        #expect(
            try MasterAddress(parsing: "node-0.cluster.local:80")
                == MasterAddress(host: "node-0.cluster.local", port: 80))
        let v6 = try MasterAddress(parsing: "[fd00::1]:29500")
        #expect(v6.host == "fd00::1" && v6.port == 29500 && v6.description == "[fd00::1]:29500")
        for bad in ["", "host", ":29500", "host:", "host:0", "host:65536", "host:2950x", "a b:1", "[]:5"] {
            #expect(throws: LaunchError.self, "\(bad)") { try MasterAddress(parsing: bad) }
        }
    }

    @Test func shellLinesQuoteWhatAShellWouldSplit() {
        #expect(ShellQuoting.quote("runs/a-b_c.json") == "runs/a-b_c.json")
        #expect(ShellQuoting.quote("my runs/x.json") == "'my runs/x.json'")
        #expect(ShellQuoting.quote("it's") == "'it'\\''s'")
        #expect(ShellQuoting.quote("$HOME") == "'$HOME'")
        #expect(ShellQuoting.quote("") == "''")
        #expect(ShellQuoting.quote("런/설정.json") == "'런/설정.json'")
        let command = LaunchCommand(["python3", "-m", "wanlora_engine", "train", "--config", "my runs/it's.json"])
        #expect(command.shellLine == "python3 -m wanlora_engine train --config 'my runs/it'\\''s.json'")
    }
}

@Suite struct ClusterScriptTests {
    @Test func multiNodeSlurmScriptRequeuesOnItsSignalAndFindsNodeZeroInSlurmsVariables() throws {
        // No master: the script takes node 0 from SLURM_JOB_NODELIST (the rendezvous gives the node ranks).
        let request = LaunchRequest(
            gpusPerNode: 8, nodes: 4, nodeRank: 0, master: nil,
            ulysses: 2, fsdp: true, configPath: "runs/a100/config.resolved.json",
            python: "engine/.venv/bin/python", shutdownTimeoutSeconds: 135, maxRestarts: 2)
        let settings = SlurmSettings(time: "2-00:00:00", partition: "gpu", account: "proj 7", signalLeadSeconds: 165)
        let script = try ClusterScript.slurm(request, jobName: "wanlora-a100", settings: settings)
        #expect(
            script == """
                #!/bin/bash
                #SBATCH --job-name=wanlora-a100
                #SBATCH --nodes=4
                #SBATCH --ntasks-per-node=1
                #SBATCH --gpus-per-node=8
                #SBATCH --export=ALL
                #SBATCH --requeue
                #SBATCH --open-mode=append
                #SBATCH --signal=B:USR1@165
                #SBATCH --time=2-00:00:00
                #SBATCH --partition=gpu
                #SBATCH --account='proj 7'
                set -euo pipefail
                export head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
                echo "wanlora: job $SLURM_JOB_ID, start ${SLURM_RESTART_COUNT:-0}, nodes $SLURM_JOB_NODELIST" >&2
                stop_and_requeue() {
                  echo "wanlora: SIGUSR1 (time limit or preemption): stopping after the step, then requeueing" >&2
                  kill -USR1 "$training" 2>/dev/null || true
                  wait "$training" || true
                  scontrol requeue "$SLURM_JOB_ID"
                  exit 0
                }
                trap stop_and_requeue USR1
                srun --export=ALL bash -c 'exec engine/.venv/bin/python -m torch.distributed.run --nnodes 4 \
                --nproc-per-node 8 --node-rank "$SLURM_NODEID" --master-addr "$head" --master-port 29500 \
                --max-restarts 2 --signals-to-handle SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 --shutdown-timeout \
                135 -m wanlora_engine train --config runs/a100/config.resolved.json --ulysses 2 --fsdp' &
                training=$!
                wait "$training"

                """)
        // The requeue comes after the ranks have stopped: `scontrol requeue` ends a job that still runs.
        let lines = script.split(separator: "\n").map(String.init)
        let trap = try #require(lines.firstIndex(of: "stop_and_requeue() {"))
        #expect(
            lines[trap + 2].contains("kill -USR1") && lines[trap + 3].contains("wait")
                && lines[trap + 4].contains("requeue"))
        // the USR1 lead covers torchrun's shutdown wait
        #expect(settings.signalLeadSeconds > request.shutdownTimeoutSeconds!)
    }

    @Test func singleNodeAndSingleGPUScripts() throws {
        let settings = SlurmSettings(signalLeadSeconds: 150)
        let two = try ClusterScript.slurm(
            LaunchRequest(gpusPerNode: 2, fsdp: true, configPath: "$HOME/c.json", python: "python3"),
            jobName: "my run", settings: settings)
        #expect(two.contains("#SBATCH --job-name='my run'\n"))
        #expect(
            two.contains(
                "srun --export=ALL python3 -m torch.distributed.run --nnodes 1 --nproc-per-node 2 --standalone "
                    + "--signals-to-handle SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 "
                    + "-m wanlora_engine train --config '$HOME/c.json' --fsdp &\n"))
        #expect(!two.contains("scontrol show hostnames") && !two.contains("--time") && !two.contains("--partition"))
        let one = try ClusterScript.slurm(
            LaunchRequest(gpusPerNode: 1, configPath: "c.json", python: "python3"), jobName: "j",
            settings: settings)
        #expect(one.contains("srun --export=ALL python3 -m wanlora_engine train --config c.json &\n"))
        #expect(one.contains("#SBATCH --requeue\n") && one.contains("#SBATCH --signal=B:USR1@150\n"))
    }
    /// `prepare --dry-run --slurm`: a job array of the shards, then the merge after all of them.
    @Test func shardArrayScriptSubmitsTheShardsAndAMergeThatWaitsForThem() {
        let task = ClusterScript.arrayTaskID
        let script = ClusterScript.shardArray(
            jobName: "wanlora-prepare", shards: 3, cpusPerTask: 16, workingDirectory: "/data/my run",
            shardCommand: [
                "wanlora", "prepare", "train.csv", "--shard", task + "/3", "--out", "out/shard-\(task)-of-3",
            ],
            mergeCommand: [
                "wanlora", "prepare", "--merge", "out/shard-1-of-3", "out/shard-2-of-3", "out/shard-3-of-3",
            ],
            settings: SlurmSettings(time: "12:00:00", account: "proj 7", signalLeadSeconds: 60),
            comments: ["3 shards"])
        #expect(
            script == """
                #!/bin/bash
                # 3 shards
                set -euo pipefail
                shards=$(sbatch --parsable <<'WANLORA_SHARDS'
                #!/bin/bash
                #SBATCH --job-name=wanlora-prepare
                #SBATCH --array=1-3
                #SBATCH --ntasks=1
                #SBATCH --cpus-per-task=16
                #SBATCH --chdir='/data/my run'
                #SBATCH --export=ALL
                #SBATCH --requeue
                #SBATCH --open-mode=append
                #SBATCH --signal=B:USR1@60
                #SBATCH --time=12:00:00
                #SBATCH --account='proj 7'
                set -euo pipefail
                echo "wanlora: shard $SLURM_ARRAY_TASK_ID of 3, job $SLURM_JOB_ID, start ${SLURM_RESTART_COUNT:-0}" >&2
                stop_and_requeue() {
                  echo "wanlora: SIGUSR1 (time limit or preemption): stopping the shard (finished work is kept), \
                then requeueing" >&2
                  kill -TERM "$preparing" 2>/dev/null || true
                  wait "$preparing" || true
                  scontrol requeue "$SLURM_JOB_ID"
                  exit 0
                }
                trap stop_and_requeue USR1
                wanlora prepare train.csv --shard "$SLURM_ARRAY_TASK_ID"/3 --out out/shard-"$SLURM_ARRAY_TASK_ID"-of-3 &
                preparing=$!
                wait "$preparing"
                WANLORA_SHARDS
                )
                shards=${shards%%;*}
                merge=$(sbatch --parsable --dependency=afterok:"$shards" <<'WANLORA_MERGE'
                #!/bin/bash
                #SBATCH --job-name=wanlora-prepare-merge
                #SBATCH --ntasks=1
                #SBATCH --cpus-per-task=1
                #SBATCH --chdir='/data/my run'
                #SBATCH --export=ALL
                #SBATCH --time=12:00:00
                #SBATCH --account='proj 7'
                set -euo pipefail
                exec wanlora prepare --merge out/shard-1-of-3 out/shard-2-of-3 out/shard-3-of-3
                WANLORA_MERGE
                )
                echo "wanlora: shards: job array $shards (3 tasks); merge: job ${merge%%;*}, when every shard has \
                succeeded" >&2

                """)
    }
}

@Suite struct LaunchEnvironmentTests {
    @Test func theCallersEnvironmentReachesTheEngineUnchanged() {
        let caller = [
            "NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1",
            "CUDA_VISIBLE_DEVICES": "2,3", "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
            "PATH": "/usr/bin", "EMPTY": "", "ODD": "a=b c\nd",
        ]
        #expect(LaunchEnvironment.forEngine(caller: caller) == caller)
        #expect(LaunchEnvironment.forEngine(caller: [:]) == [:])
    }
}

@Suite struct DryRunTests {
    @Test func perGPUPlanHalvesTheExpertWithFSDPOverTwoGPUs() throws {
        var config = WanLoRAConfig.preset(.h100)
        config.hardware.gpusPerNode = 2
        config.hardware.nodes = 1
        config.hardware.ulyssesDegree = 2
        config.hardware.fsdp = true
        config.training.frames = 49
        config.training.expert = .high
        let plan = try Planner.plan(config)
        let request = LaunchRequest(
            gpusPerNode: 2, ulysses: 2, fsdp: true, configPath: "runs/r/config.resolved.json",
            python: "python3")
        let text = DryRun.text(
            request: request, command: try Launcher.command(for: request),
            slurmScript: try ClusterScript.slurm(
                request, jobName: "r", settings: SlurmSettings(signalLeadSeconds: 150)),
            plan: plan)
        // A14B expert: 14,288,901,184 parameters × 2 B / 2 shards = 13.3 GiB on each GPU
        let expert = try #require(plan.memory.items.first { $0.name == "expert weights" })
        #expect(expert.bytes == plan.model.expertParameters)
        #expect(text.contains("  expert weights") && text.contains("13.3 GiB"))
        #expect(
            text.contains(
                "python3 -m torch.distributed.run --nnodes 1 --nproc-per-node 2 --standalone --signals-to-handle "
                    + "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 -m wanlora_engine "
                    + "train --config runs/r/config.resolved.json --ulysses 2 --fsdp"
            ))
        #expect(text.contains("Ulysses         2 (a 49-frame clip's 46,800 tokens: 23,400 per GPU)"))
        #expect(
            text.contains(
                "samples/step    1 micro-batch × \(plan.setup.gradAccumulation) "
                    + "accumulation × 1 = \(plan.setup.gradAccumulation)"))
        #expect(text.contains("#SBATCH --gpus-per-node=2"))
        let withoutPlan = DryRun.text(
            request: request, command: try Launcher.command(for: request), slurmScript: "", plan: nil)
        #expect(withoutPlan.contains("Per-GPU plan: not available"))
    }
}
