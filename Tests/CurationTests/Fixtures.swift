import DemoData
import Foundation
import Manifest

@testable import Curation

/// A temporary folder removed when the value goes away.
final class TemporaryFolder: Sendable {
    let path: String

    init(_ name: String = "curate") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

/// A plain RFC 4180 reader for checking outputs (small files only).
func parseCSV(_ bytes: [UInt8]) -> [[String]] {
    let text = String(decoding: bytes, as: UTF8.self)
    var rows: [[String]] = []
    var row: [String] = []
    var field = ""
    var quoted = false
    var iterator = text.unicodeScalars.makeIterator()
    var pending: Unicode.Scalar? = nil
    while let scalar = pending ?? iterator.next() {
        pending = nil
        if quoted {
            if scalar == "\"" {
                if let next = iterator.next() {
                    if next == "\"" {
                        field.unicodeScalars.append("\"")
                    } else {
                        quoted = false
                        pending = next
                    }
                } else {
                    quoted = false
                }
            } else {
                field.unicodeScalars.append(scalar)
            }
            continue
        }
        switch scalar {
        case "\"": quoted = true
        case ",":
            row.append(field)
            field = ""
        case "\n":
            row.append(field)
            rows.append(row)
            row = []
            field = ""
        default: field.unicodeScalars.append(scalar)
        }
    }
    if !field.isEmpty || !row.isEmpty {
        row.append(field)
        rows.append(row)
    }
    return rows
}

/// Rows of a CSV as dictionaries keyed by the header.
func records(_ bytes: [UInt8]) -> [[String: String]] {
    let rows = parseCSV(bytes)
    guard let header = rows.first else { return [] }
    return rows.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
}

enum MetadataFixture {
    /// A demo manifest (no media files) with broken rows, caption duplicates (the same words with
    /// other punctuation and spacing, in groups of two to four) and range outliers.
    static func manifest(rows: Int = 3_000, seed: UInt64 = 11, in folder: TemporaryFolder) throws -> Manifest {
        let generator = DemoManifestGenerator(rows: rows, seed: seed, brokenRows: 9)
        var generated = generator.generate()
        // Caption duplicates: rows 10k+1 … 10k+m copy row 10k's words (m = 1, 2, 3 in turn).
        for group in 0..<(rows / 40) {
            let source = group * 10
            for offset in 1...(1 + group % 3) {
                generated[source + offset].caption =
                    "  "
                    + generated[source].caption
                    .replacingOccurrences(of: ".", with: "!").replacingOccurrences(of: " ", with: "  ")
            }
        }
        // Range outliers: a one-second video and a 160×120 image.
        if let video = generated.indices.first(where: { generated[$0].mediaType == .video && $0 > 2_000 }) {
            generated[video].duration = 1.0
        }
        if let image = generated.indices.first(where: { generated[$0].mediaType == .image && $0 > 2_000 }) {
            generated[image].width = 160
            generated[image].height = 120
        }
        let path = folder.file("manifest.csv")
        try Data(generator.csv(generated)).write(to: URL(fileURLWithPath: path))
        return try ManifestReader().read(path: path)
    }

    static func options(_ change: (inout CurationOptions) -> Void = { _ in }) -> CurationOptions {
        var options = CurationOptions()
        options.workers = 2
        change(&options)
        return options
    }
}
