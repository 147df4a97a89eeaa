import Foundation
import Manifest
import Testing

private let header = "path,media_type,width,height,duration,category,caption\n"

private func read(_ text: String, chunkSize: Int = 8 << 20, mapping: ColumnMapping = ColumnMapping()) throws -> Manifest
{
    try ManifestReader(mapping: mapping, chunkSize: chunkSize).read(path: temporaryFile(text))
}

@Test func readsQuotedCommasQuotesAndNewlines() throws {
    let csv =
        header
        + "a.mp4,video,1920,1080,12.5,축제,\"쉼표, 그리고 \"\"따옴표\"\"\"\n"
        + "b.jpg,image,1280,720,,자연/풍경,\"첫 줄\n둘째 줄\"\n"
        + "c.jpg,image,1280,720,,자연/풍경,plain\n"
    let manifest = try read(csv)
    #expect(manifest.items.count == 3)
    #expect(manifest.rejected.isEmpty)
    #expect(manifest.items[0].caption == "쉼표, 그리고 \"따옴표\"")
    #expect(manifest.items[1].caption == "첫 줄\n둘째 줄")
    // Line numbers count physical lines: the record after a two-line caption starts on line 5.
    #expect(manifest.items.map(\.line) == [2, 3, 5])
}

@Test func handlesCRLFAndBOMAndMissingFinalNewline() throws {
    let csv =
        "\u{FEFF}" + header.replacingOccurrences(of: "\n", with: "\r\n")
        + "a.mp4,VIDEO,1920,1080,3.5,축제,\"두 줄\r\n캡션\"\r\n"
        + "b.jpg,Image,1280,720,,축제,마지막 행"
    let manifest = try read(csv)
    #expect(manifest.columns.first == "path")
    #expect(manifest.items.count == 2)
    #expect(manifest.items[0].mediaType == .video)
    #expect(manifest.items[0].caption == "두 줄\r\n캡션")
    #expect(manifest.items[1].mediaType == .image)
    #expect(manifest.items[1].caption == "마지막 행")
    #expect(manifest.items[1].line == 4)
}

@Test func everyChunkSizeGivesTheSameResult() throws {
    let csv =
        header
        + "a.mp4,video,1920,1080,12.5,축제,\"쉼표, \"\"따옴표\"\"\r\n줄바꿈\"\r\n"
        + "\n"
        + "b.jpg,image,1280,720,,자연/풍경,\"끝에 따옴표\"\"\"\n"
        + "c.jpg,image,x,720,,자연/풍경,bad width\n"
        + "d.jpg,image,1280,720,,자연/풍경,ok\r"
    let reference = try read(csv)
    for chunk in [1, 2, 3, 5, 7, 16, 64] {
        let manifest = try read(csv, chunkSize: chunk)
        #expect(manifest.items.map(\.caption) == reference.items.map(\.caption), "chunk size \(chunk)")
        #expect(manifest.items.map(\.line) == reference.items.map(\.line), "chunk size \(chunk)")
        #expect(manifest.rejected == reference.rejected, "chunk size \(chunk)")
        #expect(manifest.blankLines == reference.blankLines, "chunk size \(chunk)")
    }
    #expect(reference.items.map(\.path) == ["a.mp4", "b.jpg", "d.jpg"])
    #expect(reference.items[1].caption == "끝에 따옴표\"")
    #expect(reference.blankLines == 1)
    #expect(reference.rejected.map(\.line) == [6])
}

@Test func shortAndLongRowsAreRejectedWithTheirLine() throws {
    let csv =
        header
        + "a.jpg,image,1280,720,,축제\n"
        + "b.jpg,image,1280,720,,축제,caption,extra\n"
        + "c.jpg,image,1280,720,,축제,fine\n"
    let manifest = try read(csv)
    #expect(manifest.items.map(\.path) == ["c.jpg"])
    #expect(manifest.rejected.count == 2)
    #expect(manifest.rejected[0].line == 2)
    #expect(manifest.rejected[0].kind == .wrongFieldCount)
    #expect(manifest.rejected[0].detail == "short row: 6 fields, the header has 7")
    #expect(manifest.rejected[0].raw == "a.jpg,image,1280,720,,축제")
    #expect(manifest.rejected[1].detail == "long row: 8 fields, the header has 7")
    #expect(manifest.rowsRead == 3)
}

@Test func invalidUTF8IsRejectedNamingTheColumn() throws {
    let bytes =
        Array(header.utf8) + Array("a.jpg,image,1280,720,,축제,깨진 ".utf8) + [0xC3, 0x28]
        + Array("\nb.jpg,image,1280,720,,축제,ok\n".utf8)
    let manifest = try ManifestReader().read(path: temporaryFile(bytes))
    #expect(manifest.items.map(\.path) == ["b.jpg"])
    #expect(manifest.rejected.count == 1)
    #expect(manifest.rejected[0].kind == .invalidUTF8)
    #expect(manifest.rejected[0].column == "caption")
    #expect(manifest.rejected[0].line == 2)
    #expect(manifest.rejected[0].raw.contains("\u{FFFD}"))
}

@Test func malformedQuotingIsReportedNotLost() throws {
    let textAfterQuote = header + "a.jpg,image,1280,720,,축제,\"quoted\"tail\nb.jpg,image,1280,720,,축제,ok\n"
    let first = try read(textAfterQuote)
    #expect(first.items.map(\.path) == ["b.jpg"])
    #expect(first.rejected.first?.kind == .malformedQuoting)
    #expect(first.rejected.first?.column == "caption")

    let unterminated =
        header
        + "a.jpg,image,1280,720,,축제,ok\nb.jpg,image,1280,720,,축제,\"never closed\nc.jpg,image,1280,720,,축제,swallowed\n"
    let second = try read(unterminated)
    #expect(second.items.map(\.path) == ["a.jpg"])
    #expect(second.rejected.count == 1)
    #expect(second.rejected[0].line == 3)
    #expect(second.rejected[0].kind == .malformedQuoting)
    #expect(second.rowsRead == 2)
}

@Test func blankLinesAreCountedNotRows() throws {
    let manifest = try read(header + "\n\na.jpg,image,1280,720,,축제,ok\n\n")
    #expect(manifest.items.count == 1)
    #expect(manifest.items[0].line == 4)
    #expect(manifest.blankLines == 3)
    #expect(manifest.rowsRead == 1)
}

@Test func fatalProblemsAreActionableErrors() throws {
    #expect(throws: ManifestError.self) { try ManifestReader().read(path: "/nonexistent/manifest.csv") }
    let empty = temporaryFile("\u{FEFF}")
    #expect(throws: ManifestError.empty(path: empty)) { try ManifestReader().read(path: empty) }
    do {
        _ = try read("file,kind\na,image\n")
        Issue.record("expected an error")
    } catch let error as ManifestError {
        guard case .requiredColumnsMissing(let missing, _, _) = error else {
            Issue.record("wrong error \(error)")
            return
        }
        #expect(missing == ["caption", "width and height (or resolution)"])
        #expect(error.remedy.contains("--column caption=설명"))
    }
}

@Test func readsAPipeAsItReadsAFile() throws {
    // A FIFO cannot be mapped: the reader falls back to reading it in chunks.
    let csv = header + "a.mp4,video,1920,1080,12.5,축제,\"두 줄\n캡션\"\n" + "b.jpg,image,1280,720,,축제,끝\n"
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("fifo-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let fifo = folder.appendingPathComponent("manifest.csv").path
    #expect(mkfifo(fifo, 0o600) == 0)
    let writer = Thread {
        let handle = FileHandle(forWritingAtPath: fifo)!
        handle.write(Data(csv.utf8))
        try? handle.close()
    }
    writer.start()
    let piped = try ManifestReader(chunkSize: 5).read(path: fifo)
    let file = try read(csv)
    #expect(piped.items.map(\.caption) == ["두 줄\n캡션", "끝"])
    #expect(piped.items.map(\.caption) == file.items.map(\.caption))
    #expect(piped.items.map(\.line) == file.items.map(\.line))
}

@Test func aFolderOrAByteOrderMarkAloneIsAClearError() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("folder-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    #expect(throws: ManifestError.cannotOpen(path: folder.path, reason: "it is a folder, not a file")) {
        try ManifestReader().read(path: folder.path)
    }
    let bomOnly = temporaryFile([0xEF, 0xBB, 0xBF])
    #expect(throws: ManifestError.empty(path: bomOnly)) { try ManifestReader().read(path: bomOnly) }
    let missing = folder.appendingPathComponent("nope.csv").path
    #expect(throws: ManifestError.cannotOpen(path: missing, reason: "No such file or directory")) {
        try ManifestReader().read(path: missing)
    }
}

@Test func duplicatesAndRejectsOfManyBlocksStayInFileOrder() throws {
    // 5,000 rows: several parallel blocks of 1,024 records. Every 700th row repeats an earlier path,
    // every 900th has a bad width; rejects must come back in line order, the first path kept.
    var csv = header
    var expectedRejects: [(line: Int, kind: RejectedRow.Kind)] = []
    for row in 0..<5000 {
        let line = row + 2
        if row > 0 && row % 700 == 0 {
            csv += "item\(row - 1).jpg,image,1280,720,,축제,again\n"
            expectedRejects.append((line, .duplicatePath))
        } else if row % 900 == 899 {
            csv += "item\(row).jpg,image,wide,720,,축제,bad\n"
            expectedRejects.append((line, .notANumber))
        } else {
            csv += "item\(row).jpg,image,1280,720,,축제,캡션 \(row)\n"
        }
    }
    for chunk in [1 << 10, 8 << 20] {
        let manifest = try read(csv, chunkSize: chunk)
        #expect(manifest.rejected.map(\.line) == expectedRejects.map(\.line), "chunk \(chunk)")
        #expect(manifest.rejected.map(\.kind) == expectedRejects.map(\.kind), "chunk \(chunk)")
        #expect(manifest.items.count + manifest.rejected.count == 5000)
        #expect(manifest.items.map(\.line) == manifest.items.map(\.line).sorted())
        let duplicate = manifest.rejected.first { $0.kind == .duplicatePath }!
        #expect(duplicate.line == 702 && duplicate.detail == "path \"item699.jpg\" already appeared at line 701")
    }
}
