/// The scheduler settings of a Slurm job that are not part of the launch: its limits and whose
/// allocation it draws on. nil leaves the cluster's default.
public struct SlurmSettings: Sendable, Equatable {
    /// Wall-clock limit in Slurm's form (`2-00:00:00`, `48:00:00`, minutes).
    public var time: String?
    public var partition: String?
    public var account: String?
    /// Seconds before the time limit (or a preemption) at which Slurm sends SIGUSR1: the engine's stop
    /// grace plus torchrun's exit margin, so that the stopped step's checkpoint is written in time.
    public var signalLeadSeconds: Int

    public init(time: String? = nil, partition: String? = nil, account: String? = nil, signalLeadSeconds: Int) {
        self.time = time
        self.partition = partition
        self.account = account
        self.signalLeadSeconds = signalLeadSeconds
    }
}

/// The same launch written for a cluster scheduler.
public enum ClusterScript {
    /// An sbatch script for Slurm: one task per node, each running torchrun for that node's GPUs.
    ///
    /// Node 0 is the first host of SLURM_JOB_NODELIST and each node's rank is its SLURM_NODEID (the
    /// task's own, so the command runs through `bash -c` on each node), so no --master or --node-rank is
    /// needed. The rendezvous is torchrun's static one, as `wanlora train --nodes` makes it: after a
    /// rank dies every node's agent restarts its ranks with the same restart count (torchrun's c10d
    /// rendezvous restarts the surviving nodes as a membership change, without counting it, so their
    /// ranks would read the previous attempt's addresses). Slurm passes
    /// the submitting shell's environment to every task (`--export=ALL`, its default, said
    /// explicitly), as `wanlora train` does: NCCL settings and CUDA_VISIBLE_DEVICES set before
    /// `sbatch` reach every process.
    ///
    /// Preemption and the time limit: `--signal=B:USR1@lead` has Slurm send SIGUSR1 to the batch
    /// shell `lead` seconds before; its trap passes the signal to srun (which gives it to torchrun on
    /// every node, which gives it to every rank), waits until the ranks have stopped after their step
    /// and written the checkpoint, and requeues the job (`--requeue`). The requeued job runs the same
    /// script; the engine sees SLURM_RESTART_COUNT > 0 and continues from the last whole checkpoint.
    /// torchrun's own restarts (`--max-restarts`) cover a rank that dies within an allocation.
    public static func slurm(
        _ request: LaunchRequest, jobName: String, settings: SlurmSettings,
        port: Int = 29500
    ) throws -> String {
        try request.validate(needsMaster: false)
        var words: [String] = [request.python]
        if request.usesTorchrun {
            words += [
                "-m", "torch.distributed.run", "--nnodes", String(request.nodes),
                "--nproc-per-node", String(request.gpusPerNode),
            ]
            if request.nodes == 1 {
                words.append("--standalone")
            } else {
                words += ["--node-rank", "$SLURM_NODEID", "--master-addr", "$head", "--master-port", String(port)]
            }
            words += Launcher.lifecycleOptions(for: request)
        }
        words += Launcher.engineArguments(for: request)
        // $SLURM_NODEID and $head are for each node's shell to expand: double quotes, not single.
        let expanded: Set<String> = ["$SLURM_NODEID", "$head"]
        let command = words.map { expanded.contains($0) ? "\"\($0)\"" : ShellQuoting.quote($0) }.joined(separator: " ")
        let line = request.nodes > 1 ? "bash -c " + ShellQuoting.quote("exec " + command) : command
        var lines = directives(
            jobName: jobName,
            resources: [
                "--nodes=\(request.nodes)", "--ntasks-per-node=1", "--gpus-per-node=\(request.gpusPerNode)",
            ],
            settings: settings, requeue: true)
        lines.append("set -euo pipefail")
        if request.nodes > 1 {
            lines.append("export head=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)")
        }
        lines.append(
            "echo \"wanlora: job $SLURM_JOB_ID, start ${SLURM_RESTART_COUNT:-0}, nodes $SLURM_JOB_NODELIST\" >&2")
        lines += requeueTrap(forwarding: "USR1", to: "training", saying: "stopping after the step, then requeueing")
        lines += [
            "srun --export=ALL \(line) &",
            "training=$!",
            "wait \"$training\"",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The shell word that Slurm's array task id takes in `shardArray`'s shard command.
    public static let arrayTaskID = "$SLURM_ARRAY_TASK_ID"

    /// A bash script that submits `shards` tasks of a job array (`--array=1-N`), each running
    /// `shardCommand` with `arrayTaskID` in its words replaced by the task's id, and a job running
    /// `mergeCommand` that Slurm starts only when every task has succeeded (`--dependency=afterok` on
    /// the array's id, which covers all its tasks). Both run in `workingDirectory`, so relative paths
    /// mean what they meant where the script was made.
    ///
    /// A task that reaches its time limit or is preempted gets SIGUSR1 `signalLeadSeconds` before,
    /// passes SIGTERM to its command (which stops cleanly) and is requeued; the requeued task resumes.
    /// A task that fails leaves the merge pending (DependencyNeverSatisfied): run the failed shard
    /// again by hand, then the merge.
    public static func shardArray(
        jobName: String, shards: Int, cpusPerTask: Int, workingDirectory: String, shardCommand: [String],
        mergeCommand: [String], settings: SlurmSettings, comments: [String] = []
    ) -> String {
        let shardLine = shardCommand.map(quoteExpandingTaskID).joined(separator: " ")
        let mergeLine = mergeCommand.map(ShellQuoting.quote).joined(separator: " ")
        let place = "--chdir=" + ShellQuoting.quote(workingDirectory)
        var shardJob = directives(
            jobName: jobName,
            resources: ["--array=1-\(shards)", "--ntasks=1", "--cpus-per-task=\(cpusPerTask)", place],
            settings: settings, requeue: true)
        shardJob.append("set -euo pipefail")
        shardJob.append(
            "echo \"wanlora: shard $SLURM_ARRAY_TASK_ID of \(shards), job $SLURM_JOB_ID, "
                + "start ${SLURM_RESTART_COUNT:-0}\" >&2")
        shardJob += requeueTrap(
            forwarding: "TERM", to: "preparing", saying: "stopping the shard (finished work is kept), then requeueing")
        shardJob += [shardLine + " &", "preparing=$!", "wait \"$preparing\""]
        var mergeJob = directives(
            jobName: jobName + "-merge", resources: ["--ntasks=1", "--cpus-per-task=1", place], settings: settings,
            requeue: false)
        mergeJob += ["set -euo pipefail", "exec " + mergeLine]

        var lines = ["#!/bin/bash"] + comments.map { "# " + $0 } + ["set -euo pipefail"]
        lines.append("shards=$(sbatch --parsable <<'WANLORA_SHARDS'")
        lines += shardJob
        lines += ["WANLORA_SHARDS", ")", "shards=${shards%%;*}"]
        lines.append("merge=$(sbatch --parsable --dependency=afterok:\"$shards\" <<'WANLORA_MERGE'")
        lines += mergeJob
        lines += ["WANLORA_MERGE", ")"]
        lines.append(
            "echo \"wanlora: shards: job array $shards (\(shards) tasks); merge: job ${merge%%;*}, "
                + "when every shard has succeeded\" >&2")
        return lines.joined(separator: "\n") + "\n"
    }

    /// A word with `arrayTaskID` left for the shell to expand: the rest quoted, the id in double quotes.
    static func quoteExpandingTaskID(_ word: String) -> String {
        guard word.contains(arrayTaskID) else { return ShellQuoting.quote(word) }
        return word.components(separatedBy: arrayTaskID).map { $0.isEmpty ? "" : ShellQuoting.quote($0) }
            .joined(separator: "\"" + arrayTaskID + "\"")
    }

    /// The `#SBATCH` lines every wanlora job has: its name, its resources, the caller's environment,
    /// the scheduler settings and, for a job that requeues itself, SIGUSR1 before the time limit.
    static func directives(jobName: String, resources: [String], settings: SlurmSettings, requeue: Bool) -> [String] {
        var lines = ["#!/bin/bash", "#SBATCH --job-name=\(ShellQuoting.quote(jobName))"]
        lines += resources.map { "#SBATCH " + $0 }
        lines.append("#SBATCH --export=ALL")
        if requeue {
            lines += [
                "#SBATCH --requeue", "#SBATCH --open-mode=append",
                "#SBATCH --signal=B:USR1@\(settings.signalLeadSeconds)",
            ]
        }
        if let time = settings.time { lines.append("#SBATCH --time=\(ShellQuoting.quote(time))") }
        if let partition = settings.partition { lines.append("#SBATCH --partition=\(ShellQuoting.quote(partition))") }
        if let account = settings.account { lines.append("#SBATCH --account=\(ShellQuoting.quote(account))") }
        return lines
    }

    /// The batch shell's SIGUSR1 trap: pass `signal` to the job's command (its pid in `variable`),
    /// wait for it to stop, and requeue the job.
    static func requeueTrap(forwarding signal: String, to variable: String, saying action: String) -> [String] {
        [
            "stop_and_requeue() {",
            "  echo \"wanlora: SIGUSR1 (time limit or preemption): \(action)\" >&2",
            "  kill -\(signal) \"$\(variable)\" 2>/dev/null || true",
            "  wait \"$\(variable)\" || true",
            "  scontrol requeue \"$SLURM_JOB_ID\"",
            "  exit 0",
            "}",
            "trap stop_and_requeue USR1",
        ]
    }
}
