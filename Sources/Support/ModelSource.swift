import Foundation

/// What `model.checkpoint` (and `sample --model`) names: a local folder, or a Hugging Face repo id
/// (`Org/Name`) that the engine finds in the local hub cache without downloading
/// (engine/wanlora_engine/model_source.py resolves it and says where it looked).
///
/// A value is a path when it is absolute, starts with `~`, exists relative to the configuration's
/// folder, or does not have the form of a repo id; otherwise it is a repo id. A folder that exists
/// wins, as in diffusers' `from_pretrained`. The engine applies the same rule to the value it receives.
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

    /// The value as config.resolved.json and sample-job.json hold it: a path made absolute against
    /// `base`, a repo id unchanged.
    public static func anchored(_ value: String, base: String) -> String {
        isRepoID(value, base: base) ? value : PathMath.absolute(value, base: base)
    }

    /// True when `value` names a repo in the hub cache rather than a local path (see the type's rule).
    public static func isRepoID(_ value: String, base: String) -> Bool {
        if value.hasPrefix("/") || value.hasPrefix("~") || !looksLikeRepoID(value) { return false }
        return !FileManager.default.fileExists(atPath: PathMath.absolute(value, base: base))
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar))
    }
}
