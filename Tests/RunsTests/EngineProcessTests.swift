import Foundation
import Testing

@testable import Runs

/// Collects lines from reader threads.
final class LineBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ line: String) {
        lock.lock()
        items.append(line)
        lock.unlock()
    }
    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return items
    }
}

/// EngineProcess with small shell scripts standing in for the engine: what they print, how
/// they end and how they react to signals is exactly known.
@Suite(.serialized) struct EngineProcessTests {
    func process(_ script: String, in folder: String, interruptGrace: Double = 60, terminateGrace: Double = 30) throws
        -> EngineProcess
    {
        let path = folder + "/engine.sh"
        try writeScript(path, script)
        return EngineProcess(
            launch: EngineLaunch(executable: path, arguments: ["-m", "wanlora_engine", "train"], processes: 1),
            logPath: folder + "/train.log",
            grace: EngineProcess.Grace(afterInterrupt: { interruptGrace }, afterTerminate: terminateGrace),
            tailLines: 3)
    }

    @Test func linesLogTailAndExitStatus() throws {
        let folder = try scratchFolder("process")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let engine = try process(
            """
            echo "args: $*"
            echo first >&2
            printf 'one\\ntwo\\n'
            echo second >&2; echo third >&2; echo fourth >&2
            printf 'no newline at the end'
            exit 3
            """, in: folder)
        let out = LineBox()
        let err = LineBox()
        let end = try engine.run(onLine: out.append, onStderrLine: err.append)
        #expect(end == .exited(3))
        #expect(out.lines == ["args: -m wanlora_engine train", "one", "two", "no newline at the end"])
        #expect(err.lines == ["first", "second", "third", "fourth"])
        #expect(engine.logTail == ["second", "third", "fourth"])  // tailLines: 3
        #expect(try String(contentsOfFile: folder + "/train.log", encoding: .utf8) == "first\nsecond\nthird\nfourth\n")
    }

    /// Both pipes drained at once: 4 MiB on stderr while stdout is read line by line cannot block.
    @Test func bigOutputOnBothStreams() throws {
        let folder = try scratchFolder("process")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let engine = try process(
            """
            head -c 4194304 /dev/zero | tr '\\0' 'x' | fold -w 1023 >&2 &
            i=0; while [ $i -lt 2000 ]; do echo "{\\"n\\": $i}"; i=$((i+1)); done
            wait
            """, in: folder)
        let out = LineBox()
        #expect(try engine.run(onLine: out.append) == .exited(0))
        #expect(out.lines.count == 2000 && out.lines.last == "{\"n\": 1999}")
        let log = try FileManager.default.attributesOfItem(atPath: folder + "/train.log")[.size] as? Int
        #expect(log == 4_194_304 + 4_194_304 / 1023)  // fold adds a newline every 1023 characters
    }

    /// The environment reaches the engine unchanged (torchrun then passes it to every rank).
    @Test func environmentPassesThrough() throws {
        let folder = try scratchFolder("process")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        setenv("WANLORA_TEST_MARKER", "value with spaces = ok", 1)
        defer { unsetenv("WANLORA_TEST_MARKER") }
        let engine = try process("echo \"$WANLORA_TEST_MARKER|$PATH|$HOME\"\n", in: folder)
        let out = LineBox()
        #expect(try engine.run(onLine: out.append) == .exited(0))
        let env = ProcessInfo.processInfo.environment
        #expect(out.lines == ["value with spaces = ok|\(env["PATH"] ?? "")|\(env["HOME"] ?? "")"])
    }

    /// The first stop request is SIGINT; a process that ignores it gets SIGTERM after the grace period.
    @Test func interruptThenTerminateAfterGrace() throws {
        let folder = try scratchFolder("process")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let engine = try process(
            """
            trap 'echo got INT >&2' INT
            trap 'echo got TERM >&2; exit 7' TERM
            echo ready
            while :; do sleep 0.05; done
            """, in: folder, interruptGrace: 0.5)
        let escalations = LineBox()
        let end = try engine.run(
            onLine: { line in
                if line == "ready" { escalations.append("\(engine.requestStop())") }
            }, onEscalation: { escalations.append("\($0)") })
        #expect(end == .exited(7))
        #expect(engine.logTail == ["got INT", "got TERM"])
        #expect(escalations.lines == ["interrupt", "terminate"])
        #expect(engine.requestStop() == .none)  // it has ended
    }

    /// A process that ignores SIGINT and SIGTERM is killed, with what it started.
    @Test func killAsTheLastStep() throws {
        let folder = try scratchFolder("process")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let engine = try process(
            """
            trap '' INT TERM
            sleep 30 &
            echo ready
            while :; do sleep 0.05; done
            """, in: folder, interruptGrace: 0.2, terminateGrace: 0.2)
        let escalations = LineBox()
        let started = Date()
        let end = try engine.run(
            onLine: { line in
                if line == "ready" { engine.requestStop() }
            }, onEscalation: { escalations.append("\($0)") })
        #expect(end == .signaled(SIGKILL))
        #expect(escalations.lines == ["terminate", "kill"])
        // The background `sleep 30` was killed with the group: its open pipes did not hold us up.
        #expect(Date().timeIntervalSince(started) < 8)
    }

    /// Three requests in a row: SIGINT, SIGTERM, SIGKILL, without waiting for the grace periods.
    @Test func repeatedRequestsEscalateAtOnce() throws {
        let folder = try scratchFolder("process")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let engine = try process(
            """
            trap 'echo INT >&2' INT
            trap 'echo TERM >&2' TERM
            echo ready
            while :; do sleep 0.05; done
            """, in: folder)
        let actions = LineBox()
        let end = try engine.run(onLine: { line in
            guard line == "ready" else { return }
            actions.append("\(engine.requestStop())")
            usleep(300_000)
            actions.append("\(engine.requestStop())")
            usleep(300_000)
            actions.append("\(engine.requestStop())")
        })
        #expect(actions.lines == ["interrupt", "terminate", "kill"])
        #expect(end == .signaled(SIGKILL))
        #expect(engine.logTail == ["INT", "TERM"])
    }

    /// The engine starts with the default SIGINT action even when wanlora ignores SIGINT (as it
    /// does while forwarding): an inherited "ignore" would leave Python without KeyboardInterrupt.
    @Test func childGetsDefaultSignalDispositions() throws {
        let folder = try scratchFolder("process")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let previous = signal(SIGINT, SIG_IGN)
        defer { signal(SIGINT, previous) }
        let engine = try process("echo ready\nwhile :; do sleep 0.05; done\n", in: folder)
        let end = try engine.run(onLine: { line in
            if line == "ready" { engine.requestStop() }
        })
        #expect(end == .signaled(SIGINT))
    }

    @Test func missingExecutableSaysSo() throws {
        let engine = EngineProcess(
            launch: EngineLaunch(executable: "/nonexistent/python", arguments: [], processes: 1),
            logPath: FileManager.default.temporaryDirectory.path + "/wanlora-missing-\(UUID().uuidString).log",
            grace: EngineProcess.Grace(afterInterrupt: { 1 }, afterTerminate: 1))
        defer { try? FileManager.default.removeItem(atPath: engine.logPath) }
        let error = try #require(throws: RunError.self) { try engine.run(onLine: { _ in }) }
        #expect(error.problem.contains("/nonexistent/python") && error.remedy.contains("--engine-python"))
    }
}
