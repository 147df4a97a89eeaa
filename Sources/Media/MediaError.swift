import Foundation
import Support

/// Problems that stop a probe or prepare run as a whole (a single bad file never does: it is
/// quarantined and the run goes on).
public enum MediaError: ActionableError, Equatable {
    case cannotCreateFolder(path: String, reason: String)
    case journalUnavailable(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    case cannotMove(from: String, to: String, reason: String)
    case busy(folder: String)

    public var problem: String {
        switch self {
        case .cannotCreateFolder(let path, let reason): "cannot create folder \(path): \(reason)"
        case .journalUnavailable(let path, let reason): "cannot open the job journal \(path): \(reason)"
        case .cannotWrite(let path, let reason): "cannot write \(path): \(reason)"
        case .cannotMove(let from, let to, let reason): "cannot rename \(from) to \(to): \(reason)"
        case .busy(let folder): "another prepare is already writing into \(folder)"
        }
    }

    public var remedy: String {
        switch self {
        case .cannotCreateFolder, .cannotWrite, .cannotMove:
            "check that the output folder is writable and the disk is not full"
        case .busy:
            "wait for it to finish or stop it (Ctrl-C); two runs on one folder would encode the same clips twice"
        case .journalUnavailable:
            "check that the output folder is writable; if the journal is damaged, "
                + "delete it (finished clips are then encoded again)"
        }
    }
}

/// Creates `path` and its missing parents; a failure is `MediaError.cannotCreateFolder` naming it.
func createFolder(_ path: String) throws(MediaError) {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw .cannotCreateFolder(path: path, reason: error.localizedDescription)
    }
}
