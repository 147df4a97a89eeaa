import Foundation
import Manifest
import Testing

@testable import Sampling

@Suite struct PromptSourceTests {
    func write(_ text: String, _ name: String) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "wanlora-prompts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    @Test func linesSkipBlanksAndNormaliseHangul() throws {
        // BOM, CRLF, blank lines, decomposed (NFD) Hangul as the archive has it, surrounding spaces.
        let nfd = "한옥".decomposedStringWithCanonicalMapping
        #expect(nfd.unicodeScalars.count == 6)
        let path = try write("\u{FEFF}첫 번째 프롬프트\r\n\r\n  \(nfd) 마을  \r\na man walks\n\n", "prompts.txt")
        let prompts = try PromptSource.file(path)
        #expect(prompts.map(\.text) == ["첫 번째 프롬프트", "한옥 마을", "a man walks"])
        #expect(prompts[1].text.unicodeScalars.count == 5)  // NFC: 2 syllables + space + 2
        #expect(prompts.map(\.origin) == ["prompts.txt:1", "prompts.txt:3", "prompts.txt:4"])
        #expect(prompts.allSatisfy { $0.category == nil && $0.seed == nil && $0.id == nil })
        let empty = try write("\n  \n", "empty.txt")
        #expect(throws: PromptError.self) { try PromptSource.file(empty) }
    }

    @Test func csvWithCategoryQuotesAndSeeds() throws {
        let csv =
            "id,category,prompt,seed\r\n"
            + "a1,축제,\"등불 축제, 밤거리의 \"\"사람들\"\"\",7\r\n"
            + ",공간/건축,\"여러 줄\n프롬프트\",\r\n"
            + "\r\n"
            + "c3,,무형문화유산 공연,\r\n"
        let prompts = try PromptSource.file(try write(csv, "p.csv"))
        #expect(prompts.map(\.text) == ["등불 축제, 밤거리의 \"사람들\"", "여러 줄\n프롬프트", "무형문화유산 공연"])
        #expect(prompts.map(\.category) == ["축제", "공간/건축", nil])
        #expect(prompts.map(\.id) == ["a1", nil, "c3"])
        #expect(prompts.map(\.seed) == [7, nil, nil])
        #expect(prompts.map(\.origin) == ["p.csv:2", "p.csv:3", "p.csv:6"])
        // `caption` works as the column name too.
        #expect(try PromptSource.file(try write("caption\n한 남자가 걷고 있다\n", "c.csv")).map(\.text) == ["한 남자가 걷고 있다"])
    }

    @Test func csvErrorsNameTheLine() throws {
        let noColumn = try #require(throws: PromptError.self) {
            try PromptSource.file(try write("text,category\nx,y\n", "a.csv"))
        }
        #expect(
            noColumn.problem.contains("no `prompt` or `caption` column") && noColumn.problem.contains("text, category"))
        let empty = try #require(throws: PromptError.self) {
            try PromptSource.file(try write("prompt,category\nok,a\n  ,b\n", "b.csv"))
        }
        #expect(empty.problem.contains("b.csv:3") && empty.problem.contains("empty prompt"))
        let seed = try #require(throws: PromptError.self) {
            try PromptSource.file(try write("prompt,seed\nx,-4\n", "c.csv"))
        }
        #expect(seed.problem.contains("c.csv:2") && seed.problem.contains("-4"))
        let fields = try #require(throws: PromptError.self) {
            try PromptSource.file(try write("prompt,category\na, b, c\n", "d.csv"))
        }
        #expect(fields.problem.contains("d.csv:2 has 3 fields") && fields.remedy.contains("Quote"))
        let quote = try #require(throws: PromptError.self) {
            try PromptSource.file(try write("prompt\n\"never closed\n", "e.csv"))
        }
        #expect(quote.problem.contains("e.csv:2") && quote.problem.contains("never closed"))
        #expect(throws: PromptError.self) { try PromptSource.file("/nonexistent/prompts.csv") }
        #expect(throws: PromptError.self) { try PromptSource.arguments(["ok", "   "]) }
    }

    @Test func validationCaptionsPerCategoryAreDrawnWithTheSeed() throws {
        var csv = "path,caption,category\n"
        for i in 0..<10 { csv += "v\(i).mp4,축제 캡션 \(i),축제\n" }
        for i in 0..<2 { csv += "h\(i).mp4,\"한옥, 캡션 \(i)\",공간/건축\n" }
        csv += "x.mp4,,축제\n"  // no caption: not a prompt
        let path = try write(csv, "val.csv")
        let first = try PromptSource.validation(manifest: path, perCategory: 3, seed: 42)
        #expect(
            first.choices == [
                PromptSource.CategoryChoice(category: "공간/건축", available: 2, chosen: 2),
                PromptSource.CategoryChoice(category: "축제", available: 10, chosen: 3),
            ])
        #expect(first.prompts.map(\.category) == ["공간/건축", "공간/건축", "축제", "축제", "축제"])
        #expect(first.prompts.prefix(2).map(\.text) == ["한옥, 캡션 0", "한옥, 캡션 1"])
        let lines = first.prompts.suffix(3).map { Int($0.origin.split(separator: ":")[1])! }
        #expect(lines == lines.sorted() && Set(lines).count == 3 && lines.allSatisfy { (2...11).contains($0) })
        // The same seed draws the same captions; another seed other ones (10 choose 3 = 120 sets).
        #expect(try PromptSource.validation(manifest: path, perCategory: 3, seed: 42).prompts == first.prompts)
        let others = try (0..<5).map {
            try PromptSource.validation(manifest: path, perCategory: 3, seed: UInt64(100 + $0)).prompts
        }
        #expect(others.contains { $0 != first.prompts })
        // JSON Lines works the same way.
        let jsonl = try write(
            "{\"caption\": \"밤 풍경\", \"category\": \"자연/풍경\"}\n\n{\"caption\": \"산\", \"category\": \"자연/풍경\"}\n",
            "val.jsonl")
        let fromJSON = try PromptSource.validation(manifest: jsonl, perCategory: 5, seed: 1)
        #expect(
            fromJSON.prompts.map(\.text) == ["밤 풍경", "산"]
                && fromJSON.prompts.map(\.origin) == ["val.jsonl:1", "val.jsonl:3"])
        let missing = try #require(throws: PromptError.self) {
            try PromptSource.validation(manifest: "/nope/val.csv", perCategory: 1, seed: 1)
        }
        #expect(missing.remedy.contains("data.val_manifest"))
    }

    @Test func csvTableKeepsLineNumbersAcrossQuotedNewlines() throws {
        let table = try CSVTable.parse(Array("a,b\n\"x\ny\",1\n\n2,3\n".utf8), source: "t.csv")
        #expect(table.header == ["a", "b"])
        #expect(table.records.map(\.line) == [2, 5] && table.blankLines == 1)
        #expect(table.records[0].fields == ["x\ny", "1"])
        #expect(table.column("B") == 1 && table.column("c") == nil)
        #expect(throws: ManifestError.self) { try CSVTable.parse(Array("\n\n".utf8), source: "e.csv") }
    }
}
