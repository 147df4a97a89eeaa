import Foundation
import Support

/// A JSON value of an engine event, decoded without a schema (events may carry more fields than a reader
/// knows; docs/engine-contract.md).
public enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    public var string: String? { if case .string(let value) = self { return value }; return nil }
    public var double: Double? { if case .number(let value) = self { return value }; return nil }
    public var int: Int? { double.map { Int($0) } }
}

/// One JSON-lines event of the engine: `event` is its type, `fields` the whole object.
public struct EngineEvent: Sendable, Equatable {
    public let name: String
    public let fields: JSONValue

    /// nil for a line that is not an event object (a torn line of a killed process).
    public init?(line: Data) {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: line), let name = value["event"]?.string else { return nil }
        self.name = name
        fields = value
    }

    public subscript(key: String) -> JSONValue? { fields[key] }
}

/// How the engine is started: which Python, and the folder that holds the `wanlora_engine` package.
///
/// Note for the lead: a small self-contained launcher, written because the `Runs` library (engine launch,
/// event stream) was not on main when `wanlora evaluate` was built; fold it into `Runs` when that lands.
public struct EngineLocation: Sendable, Equatable {
    public var python: String
    public var engineDir: String

    /// `WANLORA_ENGINE_DIR`, else the first `engine/` folder with the package found going up from the working
    /// folder or from the binary's folder; the Python is `explicitPython`, `WANLORA_ENGINE_PYTHON`,
    /// `<engine>/.venv/bin/python` (what `make -C engine venv` creates) or `python3`, in that order.
    public static func locate(explicitPython: String?, workingDir: String, executable: String,
                              environment: [String: String] = ProcessInfo.processInfo.environment) throws -> EngineLocation {
        let manager = FileManager.default
        func hasPackage(_ folder: String) -> Bool {
            manager.fileExists(atPath: (folder as NSString).appendingPathComponent("wanlora_engine/__init__.py"))
        }
        var engineDir = environment["WANLORA_ENGINE_DIR"].flatMap { hasPackage($0) ? $0 : nil }
        if engineDir == nil {
            for start in [workingDir, (executable as NSString).deletingLastPathComponent] {
                var folder = (start as NSString).standardizingPath
                while true {
                    let candidate = (folder as NSString).appendingPathComponent("engine")
                    if hasPackage(candidate) { engineDir = candidate; break }
                    let parent = (folder as NSString).deletingLastPathComponent
                    if parent == folder || parent.isEmpty { break }
                    folder = parent
                }
                if engineDir != nil { break }
            }
        }
        guard let engineDir else {
            throw GeneralError("cannot find the wanlora engine (a folder engine/ with the wanlora_engine package) above \(workingDir) or the wanlora binary.",
                               remedy: "run wanlora inside the repository, or set WANLORA_ENGINE_DIR to the engine folder")
        }
        let venv = (engineDir as NSString).appendingPathComponent(".venv/bin/python")
        let python = explicitPython ?? environment["WANLORA_ENGINE_PYTHON"] ?? (manager.isExecutableFile(atPath: venv) ? venv : "python3")
        return EngineLocation(python: python, engineDir: engineDir)
    }
}

/// What a finished engine process left: its exit status, its last `run_finished` and `error` events, and
/// the last lines of its log (stderr) for the "engine crashed" message.
public struct EngineOutcome: Sendable {
    public var exitStatus: Int32
    public var finished: EngineEvent?
    public var errors: [EngineEvent]
    public var logTail: [String]
}

/// Runs one engine stage as a child process, decoding its stdout events as they arrive.
public enum EngineProcess {
    /// - Parameter onEvent: called for every event, on a background thread, in order.
    public static func run(_ location: EngineLocation, arguments: [String],
                           onEvent: @escaping @Sendable (EngineEvent) -> Void) throws -> EngineOutcome {
        let process = Process()
        if location.python.contains("/") {
            process.executableURL = URL(fileURLWithPath: location.python)
            process.arguments = ["-m", "wanlora_engine"] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [location.python, "-m", "wanlora_engine"] + arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = [location.engineDir, environment["PYTHONPATH"]].compactMap { $0 }.joined(separator: ":")
        environment["HF_HUB_OFFLINE"] = "1"
        environment["TRANSFORMERS_OFFLINE"] = "1"
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw GeneralError("cannot start the engine with \(location.python): \(error.localizedDescription)",
                               remedy: "create its environment with `make -C engine venv`, or pass --engine-python")
        }
        let collected = EventCollector()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            var buffer = Data()
            while true {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: 0x0A) {
                    let line = buffer[buffer.startIndex..<newline]
                    buffer.removeSubrange(buffer.startIndex...newline)
                    if let event = EngineEvent(line: Data(line)) {
                        collected.add(event)
                        onEvent(event)
                    }
                }
            }
            if let event = EngineEvent(line: buffer) { collected.add(event); onEvent(event) }
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            while true {
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                collected.log(chunk)
            }
            group.leave()
        }
        group.wait()
        process.waitUntilExit()
        return collected.outcome(status: process.terminationStatus)
    }
}

/// Events and log lines gathered by the reader threads.
private final class EventCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var finished: EngineEvent?
    private var errors: [EngineEvent] = []
    private var logBytes = Data()

    func add(_ event: EngineEvent) {
        lock.lock()
        defer { lock.unlock() }
        if event.name == "run_finished" { finished = event }
        if event.name == "error" { errors.append(event) }
    }

    func log(_ chunk: Data) {
        lock.lock()
        defer { lock.unlock() }
        logBytes.append(chunk)
        if logBytes.count > 65_536 { logBytes = logBytes.suffix(32_768) }
    }

    func outcome(status: Int32) -> EngineOutcome {
        lock.lock()
        defer { lock.unlock() }
        let lines = String(decoding: logBytes, as: UTF8.self).split(separator: "\n").suffix(20).map(String.init)
        return EngineOutcome(exitStatus: status, finished: finished, errors: errors, logTail: lines)
    }
}
