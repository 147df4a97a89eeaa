import Foundation
import Testing

/// `wanlora train` as a user runs it: the launch command, the dry run, the environment every engine
/// process gets. A stand-in "python" (a shell script) records what it was started with.
@Suite struct TrainEndToEndTests {
    static let binary = BinaryRunner.binary

    func run(_ arguments: [String], in folder: URL, environment: [String: String]) throws -> BinaryRunner.Result {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        process.currentDirectoryURL = folder
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data(), errData = Data()
        group.enter()
        DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.wait()
        process.waitUntilExit()
        return BinaryRunner.Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                                   stderr: String(decoding: errData, as: UTF8.self))
    }

    /// A stand-in for the engine's Python: writes its arguments and environment, exits 7.
    func fakePython(in folder: URL) throws -> URL {
        let script = folder.appendingPathComponent("fake-python")
        try """
        #!/bin/sh
        printf '%s\\n' "$@" > "$(dirname "$0")/args.txt"
        env > "$(dirname "$0")/env.txt"
        exit 7
        """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        return script
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path)))
    func launchPassesTheCallersEnvironmentToTheEngineAndReturnsItsStatus() throws {
        let folder = BinaryRunner.temporaryFolder()
        let python = try fakePython(in: folder)
        let runFolder = folder.appendingPathComponent("runs/r")
        try FileManager.default.createDirectory(at: runFolder, withIntermediateDirectories: true)
        try "{}".write(to: runFolder.appendingPathComponent("config.resolved.json"), atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["NCCL_NVLS_ENABLE"] = "0"
        environment["TORCH_SYMM_MEM_DISABLE_MULTICAST"] = "1"
        environment["NVSHMEM_DISABLE_NVLS"] = "1"
        environment["WANLORA_TEST_MARK"] = "한글 and spaces"
        let result = try run(["train", "--config", "runs/r/config.resolved.json", "--gpus", "2", "--ulysses", "2",
                              "--python", python.path, "--shutdown-timeout", "120"], in: folder, environment: environment)
        #expect(result.status == 7, "\(result.stderr)")
        let arguments = try String(contentsOf: folder.appendingPathComponent("args.txt"), encoding: .utf8)
        #expect(arguments == """
        -m
        torch.distributed.run
        --nnodes
        1
        --nproc-per-node
        2
        --standalone
        --shutdown-timeout
        120
        -m
        wanlora_engine
        train
        --config
        runs/r/config.resolved.json
        --ulysses
        2
        --fsdp

        """)
        let seen = try String(contentsOf: folder.appendingPathComponent("env.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        for line in ["NCCL_NVLS_ENABLE=0", "TORCH_SYMM_MEM_DISABLE_MULTICAST=1", "NVSHMEM_DISABLE_NVLS=1",
                     "WANLORA_TEST_MARK=한글 and spaces"] {
            #expect(seen.contains(line), "\(line)")
        }
        if let path = environment["PATH"] { #expect(seen.contains("PATH=\(path)")) }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path)))
    func dryRunPrintsTheCommandTheSlurmScriptAndThePerGPUPlan() throws {
        let folder = BinaryRunner.temporaryFolder()
        let environment = ProcessInfo.processInfo.environment
        #expect(try run(["config", "init", "--preset", "h100", "--out", "run.toml"], in: folder, environment: environment).status == 0)
        let result = try run(["train", "--config", "run.toml", "--gpus", "2", "--ulysses", "2", "--python", "python3", "--dry-run"],
                             in: folder, environment: environment)
        #expect(result.stdout.contains("python3 -m torch.distributed.run --nnodes 1 --nproc-per-node 2 --standalone "
                                       + "-m wanlora_engine train --config \(folder.path)/runs/run/config.resolved.json --ulysses 2 --fsdp"),
                "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("srun --export=ALL python3 -m torch.distributed.run"))
        #expect(result.stdout.contains("Per-GPU plan (H100"))
        #expect(result.stdout.contains("Ulysses         2 (a 81-frame clip's 75,600 tokens: 37,800 per GPU)"))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("runs").path))  // nothing started
        // without --dry-run the run folder's resolved config must exist
        let real = try run(["train", "--config", "run.toml", "--gpus", "2"], in: folder, environment: environment)
        #expect(real.status == 1 && real.stderr.contains("config.resolved.json does not exist"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path)))
    func impossibleLayoutsStopBeforeAnythingStarts() throws {
        let folder = BinaryRunner.temporaryFolder()
        let environment = ProcessInfo.processInfo.environment
        _ = try run(["config", "init", "--preset", "h100", "--out", "run.toml"], in: folder, environment: environment)
        let odd = try run(["train", "--config", "run.toml", "--gpus", "6", "--ulysses", "4", "--dry-run"], in: folder, environment: environment)
        #expect(odd.status == 1)
        #expect(odd.stderr == "error: --ulysses 4 does not divide the 6 GPUs of the run (6 per node × 1 node).\n"
                + "how to fix: Use a Ulysses degree that divides 6 and the 40 heads: 1, 2.\n")
        let nodes = try run(["train", "--config", "run.toml", "--gpus", "8", "--nodes", "2", "--dry-run"], in: folder, environment: environment)
        #expect(nodes.status == 1 && nodes.stderr.contains("--nodes 2 needs the address where node 0 waits"))
        let master = try run(["train", "--config", "run.toml", "--master", "node0", "--dry-run"], in: folder, environment: environment)
        #expect(master.status != 0 && master.stderr.contains("--master node0 is not ADDR:PORT."))
    }
}
