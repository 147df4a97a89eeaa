import Foundation

/// What `model.checkpoint` (and `sample --model`) names: a local folder, or a Hugging Face repo id
/// (`Org/Name`) in the local hub cache, which the engine resolves without downloading
/// (engine/wanlora_engine/model_source.py; docs/engine-contract.md §5).
///
/// A value is a repo id when it has the form `Org/Name`, no such path exists relative to the
/// configuration's folder (a folder that exists wins, as in diffusers' `from_pretrained`), and the hub
/// cache holds `models--Org--Name/`. Everything else is a path, made absolute. So a folder that is not
/// there yet stays a path (and is reported missing), while a downloaded repo is found by its id.
public enum ModelSource {
    /// huggingface_hub's repo id: `namespace/name` of letters, digits, `-`, `_`, `.` (each part
    /// starting with a letter or digit), no `--` or `..`, at most 96 characters.
    public static func looksLikeRepoID(_ value: String) -> Bool {
        guard value.count <= 96, !value.contains("--"), !value.contains(".."), !value.hasSuffix(".") else {
            return false
        }
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        return parts.allSatisfy { part in
            guard let first = part.unicodeScalars.first, isAlphanumeric(first) else { return false }
            return part.unicodeScalars.allSatisfy { isAlphanumeric($0) || "._-".unicodeScalars.contains($0) }
        }
    }

    /// The local Hugging Face hub cache as huggingface_hub chooses it: `$HF_HUB_CACHE`, else
    /// `$HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
    /// `~/.cache/huggingface/hub` (the engine's `model_source.hub_cache_dir` reads the same variables).
    public static func hubCache(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        func nonEmpty(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        if let dir = nonEmpty("HF_HUB_CACHE") ?? nonEmpty("HUGGINGFACE_HUB_CACHE") { return PathMath.absolute(dir) }
        if let home = nonEmpty("HF_HOME") { return PathMath.absolute(home + "/hub") }
        if let cache = nonEmpty("XDG_CACHE_HOME") { return PathMath.absolute(cache + "/huggingface/hub") }
        return PathMath.absolute("~/.cache/huggingface/hub")
    }

    /// The folder the hub cache keeps `repoID` in (it exists once the repo was downloaded).
    public static func cacheEntry(_ repoID: String, hubCache: String) -> String {
        hubCache + "/models--" + repoID.replacingOccurrences(of: "/", with: "--")
    }

    /// True when `value` names a repo in the hub cache rather than a local path (see the type's rule).
    public static func isRepoID(_ value: String, base: String, hubCache: String = hubCache()) -> Bool {
        guard looksLikeRepoID(value), !FileManager.default.fileExists(atPath: PathMath.absolute(value, base: base))
        else { return false }
        return FileManager.default.fileExists(atPath: cacheEntry(value, hubCache: hubCache))
    }

    /// The value as config.resolved.json and sample-job.json hold it: a repo id unchanged, a path
    /// made absolute against `base`.
    public static func anchored(_ value: String, base: String, hubCache: String = hubCache()) -> String {
        isRepoID(value, base: base, hubCache: hubCache) ? value : PathMath.absolute(value, base: base)
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && CharacterSet.alphanumerics.contains(scalar)
    }
}
