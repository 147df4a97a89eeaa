import Foundation
import Manifest
import Testing

private let header = "path,media_type,width,height,duration,category,caption\n"

private func read(_ text: String, name: String = "manifest.csv", mapping: ColumnMapping = ColumnMapping()) throws
    -> Manifest
{
    try ManifestReader(mapping: mapping).read(path: temporaryFile(text, name: name))
}

@Test(arguments: [
    ("a.jpg,image,,720,,c,t", RejectedRow.Kind.missingValue, "width"),
    ("a.jpg,image,1280,abc,,c,t", .notANumber, "height"),
    ("a.jpg,image,0,720,,c,t", .outOfRange, "width"),
    ("a.jpg,image,1280.5,720,,c,t", .notANumber, "width"),
    ("a.mp4,video,1280,720,,c,t", .missingValue, "duration"),
    ("a.mp4,video,1280,720,-1,c,t", .outOfRange, "duration"),
    ("a.mp4,video,1280,720,NaN,c,t", .outOfRange, "duration"),
    ("a.mp4,video,1280,720,inf,c,t", .outOfRange, "duration"),
    ("a.mp4,video,1280,720,twelve,c,t", .notANumber, "duration"),
    ("a.wav,audio,1280,720,1,c,t", .unknownMediaType, "media_type"),
    ("a.wav,,1280,720,1,c,t", .missingValue, "media_type"),
    ("a.jpg,image,1280,720,,c,\"  \t \"", .emptyCaption, "caption"),
    (",image,1280,720,,c,t", .missingValue, "path"),
])
func rejectsBadValues(row: String, kind: RejectedRow.Kind, column: String) throws {
    let manifest = try read(header + row + "\n")
    #expect(manifest.items.isEmpty)
    #expect(manifest.rejected.count == 1)
    #expect(manifest.rejected.first?.kind == kind)
    #expect(manifest.rejected.first?.column == column)
    #expect(manifest.rejected.first?.line == 2)
}

@Test func acceptsFriendlySpellings() throws {
    let manifest = try read(
        header
            + " ./a.mp4 , Video ,1920,1080, 00:01:02.5 ,축제,ok\n"
            + "b.jpg,IMAGE,1280.0,720,9,축제,images ignore duration\n"
            + "c.mp4,video,1280,720,12.25s,축제,seconds suffix\n")
    #expect(manifest.rejected.isEmpty)
    #expect(manifest.items.map(\.path) == ["a.mp4", "b.jpg", "c.mp4"])
    #expect(manifest.items[0].duration == 62.5)
    #expect(manifest.items[0].mediaType == .video)
    #expect(manifest.items[1].duration == nil)
    #expect(manifest.items[1].resolution == Resolution(width: 1280, height: 720))
    #expect(manifest.items[2].duration == 12.25)
}

@Test func resolutionColumnInBothSpellings() throws {
    let manifest = try read(
        "path,type,resolution,length_s,category,text\n"
            + "a.jpg,image,1920x1080,,축제,one\n"
            + "b.jpg,image,1920×1080,,축제,two\n"
            + "c.jpg,image,1280 X 720,,축제,three\n"
            + "d.jpg,image,1280-720,,축제,four\n")
    #expect(manifest.items.map(\.resolution.description) == ["1920×1080", "1920×1080", "1280×720"])
    #expect(manifest.rejected.map(\.line) == [5])
    #expect(manifest.rejected.first?.column == "resolution")
}

@Test func duplicatePathsKeepTheFirst() throws {
    let manifest = try read(
        header
            + "a.jpg,image,1280,720,,축제,first\n"
            + "b.jpg,image,1280,720,,축제,other\n"
            + "./a.jpg,image,1280,720,,축제,second\n")
    #expect(manifest.items.map(\.caption) == ["first", "other"])
    #expect(manifest.rejected.count == 1)
    #expect(manifest.rejected[0].kind == .duplicatePath)
    #expect(manifest.rejected[0].line == 4)
    #expect(manifest.rejected[0].detail == "path \"a.jpg\" already appeared at line 2")
    #expect(manifest.rejected[0].raw == "./a.jpg,image,1280,720,,축제,second")  // the row as written
}

@Test func explicitColumnMapping() throws {
    let mapping = try ColumnMapping(parsing: ["caption=설명", "path=파일", "media_type=종류", "category=분류"])
    let manifest = try read("파일,종류,width,height,duration,분류,설명\nx.jpg,image,1280,720,,축제,한국어 헤더\n", mapping: mapping)
    #expect(manifest.items.first?.caption == "한국어 헤더")
    #expect(manifest.items.first?.category == "축제")
    #expect(throws: ManifestError.self) { try ColumnMapping(parsing: ["subtitle=설명"]) }
    #expect(throws: ManifestError.self) { try ColumnMapping(parsing: ["caption"]) }
    #expect(throws: ManifestError.self) {
        try read("path,media_type,width,height,caption\n", mapping: try ColumnMapping(parsing: ["caption=설명"]))
    }
}

@Test func decomposedHangulAndEmojiAreKeptAsWritten() throws {
    let nfd = "\u{1112}\u{1161}\u{11AB}\u{1100}\u{116E}\u{11A8}"  // 한국 in NFD
    let manifest = try read(header + "a.jpg,image,1280,720,,축제,\(nfd) 🎉\n")
    #expect(manifest.items.first?.caption.unicodeScalars.count == 8)
}

@Test func rowsReadReconcileWithAcceptedAndRejected() throws {
    var text = header
    for index in 0..<50 {
        text += index % 7 == 3 ? "r\(index).mp4,video,1,1,,c,missing duration\n" : "r\(index).jpg,image,1,1,,c,ok\n"
    }
    let manifest = try read(text)
    #expect(manifest.rowsRead == 50)
    #expect(manifest.items.count == 43)
    #expect(manifest.rejected.count == 7)
}

@Test func rejectsFileListsEveryRejectedRow() throws {
    let manifest = try read(header + "a.jpg,image,x,720,,축제,\"따옴표 \"\"와\"\" 쉼표, 포함\"\n")
    let csv = String(decoding: RejectsWriter.csv(manifest.rejected).bytes, as: UTF8.self)
    #expect(
        csv == #"""
            line,column,reason,detail,raw
            2,width,not a number,"width ""x"" is not a whole number","a.jpg,image,x,720,,축제,""따옴표 """"와"""" 쉼표, 포함"""

            """#)
}

@Test func readsJSONLines() throws {
    let text = """
        {"path": "a.mp4", "media_type": "video", "width": 1920, "height": 1080, "duration": 23.17, \
        "category": "축제", "caption": "줄\\n바꿈"}

        {"path": "b.jpg", "media_type": "image", "resolution": "720×512", "category": "축제", "caption": "이미지"}
        not json
        [1, 2]
        {"path": "c.mp4", "media_type": "video", "width": 1280, "height": 720, \
        "category": "축제", "caption": "no duration"}
        """
    let manifest = try ManifestReader().read(path: temporaryFile(text, name: "m.jsonl"))
    #expect(manifest.format == .jsonLines)
    #expect(manifest.items.map(\.path) == ["a.mp4", "b.jpg"])
    #expect(manifest.items[0].duration == 23.17)
    #expect(manifest.items[0].caption == "줄\n바꿈")
    #expect(manifest.items[1].resolution == Resolution(width: 720, height: 512))
    #expect(manifest.rejected.map(\.line) == [4, 5, 6])
    #expect(manifest.rejected.map(\.kind) == [.invalidJSON, .invalidJSON, .missingValue])
    #expect(manifest.blankLines == 1)
}
