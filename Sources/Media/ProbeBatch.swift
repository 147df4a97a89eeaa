import Foundation
import Support

/// Probes many files in parallel, optionally through the journal's cache.
public enum ProbeBatch {
    /// Probes each distinct path once, `width` at a time. With a journal, a file whose size and
    /// modification time are unchanged since it was last probed is not probed again.
    public static func probe(
        paths: [String], tools: MediaTools, width: Int, journal: PrepareJournal? = nil,
        progress: ProgressReporter = .silent
    ) async throws -> [String: Result<MediaProbe, ProbeFailure>] {
        var unique: [String] = []
        var seen: Set<String> = []
        for path in paths where seen.insert(path).inserted { unique.append(path) }
        let prober = Prober(tools: tools)
        let total = unique.count
        progress.report(ProgressEvent(stage: "probe", completed: 0, total: total, unit: "files"))
        let reportFinished: @Sendable (Int) -> Void = { done in
            progress.report(ProgressEvent(stage: "probe", completed: done, total: total, unit: "files"))
        }
        let results = try await Parallel.map(unique, width: width, finished: reportFinished) {
            path -> Result<MediaProbe, ProbeFailure> in
            let identity = fileIdentity(path)
            if let journal, let identity,
                let cached = try journal.cachedProbe(source: path, size: identity.size, modified: identity.modified)
            {
                return cached
            }
            let result = try await prober.probe(path: path)
            if let journal, let identity {
                try journal.storeProbe(source: path, size: identity.size, modified: identity.modified, result: result)
            }
            return result
        }
        return Dictionary(uniqueKeysWithValues: zip(unique, results))
    }

    static func fileIdentity(_ path: String) -> (size: Int, modified: Double)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
        return (Int(info.st_size), modified)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
