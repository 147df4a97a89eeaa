import Foundation
import Testing
@testable import Evaluation

/// A stand-in engine: a shell script named python that prints events and exits as told.
private func fakeEngine(_ script: String) throws -> (EngineLocation, URL) {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("fake-engine-\(UUID().uuidString)")
    let engine = folder.appendingPathComponent("engine")
    try FileManager.default.createDirectory(at: engine.appendingPathComponent("wanlora_engine"), withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: engine.appendingPathComponent("wanlora_engine/__init__.py").path, contents: Data())
    let python = folder.appendingPathComponent("python")
    try Data(("#!/bin/sh\n" + script).utf8).write(to: python)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: python.path)
    return (EngineLocation(python: python.path, engineDir: engine.path), folder)
}

private final class Received: @unchecked Sendable {
    private let lock = NSLock()
    private var names: [String] = []
    func add(_ name: String) { lock.lock(); names.append(name); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return names }
}

@Suite struct EngineProcessTests {
    @Test func eventsArriveInOrderAndTheOutcomeKeepsTheLastOnes() throws {
        let (location, folder) = try fakeEngine("""
        echo "args: $*" >&2
        echo "PYTHONPATH=$PYTHONPATH" >&2
        printf '{"event":"run_started","stage":"evaluate"}\\n'
        printf 'not json\\n'
        printf '{"event":"evaluate_progress","done":1,"total":2}\\n{"event":"evaluate_progress","done":2,"total":2}\\n'
        printf '{"event":"run_finished","status":"completed","outputs":{"metrics_json":"/x/metrics.json"}}'
        """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let received = Received()
        let outcome = try EngineProcess.run(location, arguments: ["evaluate", "--config", "/x/evaluate.json"]) { received.add($0.name) }
        #expect(received.all == ["run_started", "evaluate_progress", "evaluate_progress", "run_finished"])
        #expect(outcome.exitStatus == 0)
        #expect(outcome.finished?["outputs"]?["metrics_json"]?.string == "/x/metrics.json")
        #expect(outcome.logTail.first == "args: -m wanlora_engine evaluate --config /x/evaluate.json")
        #expect(outcome.logTail.contains { $0.hasPrefix("PYTHONPATH=\(location.engineDir)") })
    }

    @Test func aFailingEngineLeavesItsErrorAndLog() throws {
        let (location, folder) = try fakeEngine("""
        printf '{"event":"error","code":"model_load_failed","problem":"weights/i3d_pretrained_400.pt does not exist","remedy":"put it there"}\\n'
        printf '{"event":"run_finished","status":"failed"}\\n'
        echo "Traceback: boom" >&2
        exit 1
        """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outcome = try EngineProcess.run(location, arguments: ["evaluate"]) { _ in }
        #expect(outcome.exitStatus == 1 && outcome.finished?["status"]?.string == "failed")
        #expect(outcome.errors.first?["problem"]?.string == "weights/i3d_pretrained_400.pt does not exist")
        #expect(outcome.logTail == ["Traceback: boom"])
    }

    @Test func theEngineIsFoundAboveTheWorkingFolderAndItsVenvPythonPreferred() throws {
        let (location, folder) = try fakeEngine("exit 0")
        defer { try? FileManager.default.removeItem(at: folder) }
        let deep = folder.appendingPathComponent("a/b")
        try FileManager.default.createDirectory(at: deep, withIntermediateDirectories: true)
        let found = try EngineLocation.locate(explicitPython: nil, workingDir: deep.path, executable: "/nowhere/wanlora", environment: [:])
        #expect(found.engineDir == location.engineDir && found.python == "python3")
        let venv = URL(fileURLWithPath: location.engineDir).appendingPathComponent(".venv/bin")
        try FileManager.default.createDirectory(at: venv, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: location.python, toPath: venv.appendingPathComponent("python").path)
        #expect(try EngineLocation.locate(explicitPython: nil, workingDir: deep.path, executable: "/x", environment: [:]).python
                == venv.appendingPathComponent("python").path)
        #expect(try EngineLocation.locate(explicitPython: "/my/python", workingDir: deep.path, executable: "/x", environment: [:]).python == "/my/python")
        #expect(throws: (any Error).self) {
            try EngineLocation.locate(explicitPython: nil, workingDir: "/", executable: "/bin/true", environment: [:])
        }
    }
}
