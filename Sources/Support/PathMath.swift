import Foundation

/// Path arithmetic on plain strings (no file system access), for writing manifests whose relative
/// paths stay valid from another folder.
public enum PathMath {
    /// `folder/path`, or `path` when it is absolute.
    public static func join(_ folder: String, _ path: String) -> String {
        if path.hasPrefix("/") || folder.isEmpty { return path }
        return folder.hasSuffix("/") ? folder + path : folder + "/" + path
    }

    /// Absolute, with `.` and `..` resolved against the current directory.
    public static func absolute(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : join(FileManager.default.currentDirectoryPath, path)
        var parts: [Substring] = []
        for part in full.split(separator: "/") {
            if part == "." || part.isEmpty { continue }
            if part == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
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
