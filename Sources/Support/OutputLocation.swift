import Foundation

/// Output folders and files, checked before a command spends time on its work, so that a read-only or
/// missing place fails at once with the path and the reason instead of a Foundation error code at the end.
public enum OutputLocation {
    /// Creates `folder` with its parents and proves that a file can be created in it.
    public static func prepareFolder(_ folder: String, option: String) throws(OutputError) {
        var path = ""
        for component in (folder as NSString).pathComponents {
            path = path.isEmpty ? component : (path as NSString).appendingPathComponent(component)
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
                guard isFolder.boolValue else {
                    throw OutputError(path: folder, option: option, reason: "\(path) is a file, not a folder")
                }
                continue
            }
            if mkdir(path, 0o777) != 0 && errno != EEXIST {
                throw OutputError(path: folder, option: option, reason: "cannot create \(path): \(lastReason())")
            }
        }
        let probe = (folder as NSString).appendingPathComponent(".wanlora-write-test-\(getpid())")
        let handle = open(probe, O_CREAT | O_EXCL | O_WRONLY, 0o644)
        guard handle >= 0 else {
            throw OutputError(path: folder, option: option, reason: "cannot create a file in it: \(lastReason())")
        }
        close(handle)
        unlink(probe)
    }

    /// Proves that `file` can be written: its folder exists (it is created) and takes new files, and
    /// `file` itself, when it exists, is writable.
    public static func checkFile(_ file: String, option: String) throws(OutputError) {
        let folder = (file as NSString).deletingLastPathComponent
        do {
            try prepareFolder(folder.isEmpty ? "." : folder, option: option)
        } catch {
            throw OutputError(path: file, option: option, reason: error.reason)
        }
        if FileManager.default.fileExists(atPath: file), access(file, W_OK) != 0 {
            throw OutputError(path: file, option: option, reason: lastReason())
        }
    }

    /// Why a Foundation write failed, in words (the POSIX reason where there is one).
    public static func reason(_ error: any Error) -> String {
        let error = error as NSError
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if error.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(error.code))) }
        switch error.code {
        case NSFileWriteNoPermissionError: return String(cString: strerror(EACCES))
        case NSFileWriteOutOfSpaceError: return String(cString: strerror(ENOSPC))
        case NSFileWriteVolumeReadOnlyError: return String(cString: strerror(EROFS))
        default: return error.localizedDescription
        }
    }

    private static func lastReason() -> String { String(cString: strerror(errno)) }
}

/// A place a command cannot write its output to.
public struct OutputError: ActionableError, Equatable {
    public var path: String
    /// The option that named it, e.g. `--out`.
    public var option: String
    public var reason: String

    public init(path: String, option: String, reason: String) {
        self.path = path
        self.option = option
        self.reason = reason
    }

    public var problem: String { "cannot write \(path) (\(option)): \(reason)" }
    public var remedy: String {
        "give \(option) a place you can write to, or make it writable (chmod u+w, or ask its owner); "
            + "if the disk is full, free space first"
    }
}
