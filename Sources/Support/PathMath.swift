import Foundation

/// Path arithmetic on plain strings (no file system access, no symlinks followed): the one place
/// where a path is made absolute, for configurations, command-line paths, manifests and the
/// manifests written for another folder.
public enum PathMath {
    /// `path` made absolute against `base` (itself made absolute against the working folder when it
    /// is relative), `~` and `~/…` read as the home folder, and `normalise`d. An empty path is `base`.
    public static func absolute(_ path: String, base: String) -> String {
        let expanded = expandingHome(path)
        if expanded.hasPrefix("/") { return normalise(expanded) }
        let folder = expandingHome(base)
        let anchor = folder.hasPrefix("/") ? folder : join(FileManager.default.currentDirectoryPath, folder)
        return normalise(join(anchor, expanded))
    }

    /// `path` made absolute against the working folder (see `absolute(_:base:)`).
    public static func absolute(_ path: String) -> String {
        absolute(path, base: FileManager.default.currentDirectoryPath)
    }

    /// Removes `.` components and repeated or trailing slashes and resolves `..` lexically; a
    /// relative path stays relative (leading `..` kept), `..` above the root is the root.
    public static func normalise(_ path: String) -> String {
        let rooted = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." {
                parts.removeLast()
                continue
            }
            if part == ".." && rooted { continue }
            parts.append(part)
        }
        let joined = parts.joined(separator: "/")
        return rooted ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    /// `~` and `~/…` with the home folder in place of `~` (other paths, `~user` included, unchanged).
    static func expandingHome(_ path: String) -> String {
        guard path == "~" || path.hasPrefix("~/") else { return path }
        let home = NSHomeDirectory()
        return path == "~" ? home : join(home, String(path.dropFirst(2)))
    }

    /// `folder/path`, or `path` when it is absolute.
    public static func join(_ folder: String, _ path: String) -> String {
        if path.hasPrefix("/") || folder.isEmpty { return path }
        return folder.hasSuffix("/") ? folder + path : folder + "/" + path
    }

    /// The path of `target` relative to `folder` (e.g. `../media/a.mp4`).
    public static func relative(_ target: String, from folder: String) -> String {
        let to = absolute(target).split(separator: "/")
        let from = absolute(folder).split(separator: "/")
        var common = 0
        while common < to.count, common < from.count, to[common] == from[common] { common += 1 }
        let ups = Array(repeating: "..", count: from.count - common)
        let rest = to[common...].map(String.init)
        let joined = (ups + rest).joined(separator: "/")
        return joined.isEmpty ? "." : joined
    }
}
