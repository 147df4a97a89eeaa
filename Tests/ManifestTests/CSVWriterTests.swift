import Foundation
import Testing

@testable import Manifest

@Suite struct CSVWriterTests {
    @Test func quotesOnlyFieldsThatNeedIt() {
        var writer = CSVWriter()
        writer.writeRow(["plain", "a,b", "say \"hi\"", "two\nlines", " padded", "한국"])
        let text = String(decoding: writer.bytes, as: UTF8.self)
        #expect(text == "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\" padded\",한국\n")
    }

    @Test func writtenRowsReadBackUnchanged() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("csvwriter-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var writer = CSVWriter()
        writer.writeRow(["path", "media_type", "width", "height", "duration", "category", "caption"])
        writer.writeRow(["a.jpg", "image", "1920", "1080", "", "축제", "쉼표, \"따옴표\"\n그리고 줄바꿈"])
        writer.writeRow(["b.mp4", "video", "1280", "720", "12.5", "자연/풍경", "짧은 캡션"])
        let path = folder.appendingPathComponent("m.csv").path
        try writer.write(to: path)
        let manifest = try ManifestReader().read(path: path)
        #expect(manifest.rejected.isEmpty)
        #expect(manifest.items.count == 2)
        #expect(manifest.items[0].caption == "쉼표, \"따옴표\"\n그리고 줄바꿈")
        #expect(manifest.items[1].line == 4)
        #expect(manifest.items[1].duration == 12.5)
    }
}
