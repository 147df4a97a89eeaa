/// The same launch written for a cluster scheduler.
public enum ClusterScript {
    /// An sbatch script for Slurm: one task per node, each running torchrun for that node's GPUs.
    ///
    /// torchrun's c10d rendezvous on the first node of the allocation replaces --node-rank and
    /// --master (Slurm knows the nodes only once the job runs). Slurm passes the submitting shell's
    /// environment to every task (`--export=ALL`, its default, said explicitly), as `wanlora train`
    /// does: NCCL settings and CUDA_VISIBLE_DEVICES set before `sbatch` reach every process.
    public static func slurm(_ request: LaunchRequest, jobName: String, port: Int = 29500) throws -> String {
        try request.validate()
        var words: [String] = [request.python]
        if request.worldSize > 1 {
            words += ["-m", "torch.distributed.run", "--nnodes", String(request.nodes),
                      "--nproc-per-node", String(request.gpusPerNode)]
            if request.nodes == 1 {
                words.append("--standalone")
            } else {
                words += ["--rdzv-backend", "c10d", "--rdzv-endpoint", "$head:\(port)", "--rdzv-id", "$SLURM_JOB_ID"]
            }
            if let seconds = request.shutdownTimeoutSeconds { words += ["--shutdown-timeout", String(seconds)] }
        }
        words += Launcher.engineArguments(for: request)
        // $head and $SLURM_JOB_ID are for the job's shell to expand: double quotes, not single.
        let expanded: Set<String> = ["$head:\(port)", "$SLURM_JOB_ID"]
        let line = words.map { expanded.contains($0) ? "\"\($0)\"" : ShellQuoting.quote($0) }.joined(separator: " ")
        var lines = [
            "#!/bin/bash",
            "#SBATCH --job-name=\(ShellQuoting.quote(jobName))",
            "#SBATCH --nodes=\(request.nodes)",
            "#SBATCH --ntasks-per-node=1",
            "#SBATCH --gpus-per-node=\(request.gpusPerNode)",
            "#SBATCH --export=ALL",
            "set -euo pipefail",
        ]
        if request.nodes > 1 {
            lines.append("head=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)")
        }
        lines.append("srun --export=ALL \(line)")
        return lines.joined(separator: "\n") + "\n"
    }
}
