import Foundation
import Manifest
import Statistics
import Testing

/// `analyze` measures captions while reading (`CaptionCollector`, no caption strings kept): the
/// report must equal the one measured from the items' caption strings, on nasty captions.
@Suite struct CaptionCollectorTests {
    static let header = "path,media_type,width,height,duration,category,caption\n"

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Captions with doubled quotes, line breaks, decomposed Hangul (not NFC), upper-case Latin,
    /// Han, emoji, leading/trailing spaces; blank and invalid ones (rejected); a duplicate path.
    static func nastyManifest(rows: Int) -> [UInt8] {
        var bytes = Array(header.utf8)
        let captions = [
            "말했다 \"안녕\", 그리고", "두 줄\n캡션 서울", "한국의 전통 축제 서울 부산", "  앞뒤 공백  ",
            "\u{1100}\u{1161}\u{11A8} 분해된 한글", "Seoul TOWER 서울 TOWER", "漢字 한자 혼용", "이모지 🎉 축제",
            "숫자 2024년 10월", "Ünïcödé ÉCOLE école",
        ]
        for row in 0..<rows {
            let path = "item\(row % 997 == 996 ? row - 1 : row).mp4"  // every 997th row repeats a path
            let fields = [
                path, "video", "1920", "1080", "\(Double(row % 50) + 0.5)", "cat\(row % 7)",
                captions[row % captions.count] + (row % 3 == 0 ? " \(row)" : ""),
            ]
            for (index, field) in fields.enumerated() {
                if index > 0 { bytes.append(0x2C) }
                CSVWriter.appendField(field, to: &bytes)
            }
            bytes.append(0x0A)
            if row % 500 == 250 { bytes += Array("blank\(row).mp4,video,1920,1080,3,cat0,   \n".utf8) }
            if row % 700 == 350 {
                bytes += Array("bad\(row).mp4,video,1920,1080,3,cat0,깨진 ".utf8) + [0xED, 0xA0, 0x80, 0x0A]
            }
        }
        return bytes
    }

    @Test func statisticsEqualThoseMeasuredFromStrings() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("collector-\(UUID().uuidString).csv")
            .path
        _ = FileManager.default.createFile(atPath: path, contents: Data(Self.nastyManifest(rows: 6000)))
        for chunk in [4096, 8 << 20] {
            let reader = ManifestReader(chunkSize: chunk)
            let plain = try reader.read(path: path)
            let collector = CaptionCollector(workers: 2)
            let measured = try reader.read(path: path, captions: collector)
            #expect(!plain.captionsSentToSink && measured.captionsSentToSink)
            #expect(measured.items.allSatisfy { $0.caption.isEmpty })
            #expect(measured.items.map(\.path) == plain.items.map(\.path))
            #expect(measured.rejected == plain.rejected)
            #expect(
                plain.rejected.map(\.kind).contains(.emptyCaption) && plain.rejected.map(\.kind).contains(.invalidUTF8))
            #expect(plain.rejected.map(\.kind).contains(.duplicatePath))

            let options = StatisticsOptions(workers: 2)
            let fromStrings = Analyzer.analyze(
                [NamedManifest(name: "all", role: .whole, manifest: plain)], options: options)
            let fromBytes = Analyzer.analyze(
                [NamedManifest(name: "all", role: .whole, manifest: measured, captions: collector.finish())],
                options: options)
            let a = try Self.json(fromStrings.datasets)
            let b = try Self.json(fromBytes.datasets)
            #expect(a == b, "chunk \(chunk)")
            #expect(fromBytes.datasets[0].captions.normalised > 0)  // the decomposed Hangul
        }
    }

    @Test func unionOfSplitsEqualsTheUnionMeasuredFromStrings() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("collector-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let all = Self.nastyManifest(rows: 3000)
        let headerLine = Array(Self.header.utf8)
        let path = folder.appendingPathComponent("all.csv").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(all))
        let reader = ManifestReader()
        let whole = try reader.read(path: path)
        let half = whole.items.count / 2
        func write(_ items: ArraySlice<ManifestItem>, _ name: String) -> String {
            var bytes = headerLine
            for item in items {
                for (index, field) in item.fields.enumerated() {
                    if index > 0 { bytes.append(0x2C) }
                    CSVWriter.appendField(field, to: &bytes)
                }
                bytes.append(0x0A)
            }
            let file = folder.appendingPathComponent(name).path
            _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
            return file
        }
        let trainPath = write(whole.items[..<half], "train.csv")
        let valPath = write(whole.items[half...], "val.csv")
        var viaStrings: [NamedManifest] = []
        var viaBytes: [NamedManifest] = []
        for (name, file) in [("train", trainPath), ("val", valPath)] {
            viaStrings.append(NamedManifest(name: name, role: .split, manifest: try reader.read(path: file)))
            let collector = CaptionCollector(workers: 2)
            let manifest = try reader.read(path: file, captions: collector)
            viaBytes.append(NamedManifest(name: name, role: .split, manifest: manifest, captions: collector.finish()))
        }
        let options = StatisticsOptions(workers: 2)
        let a = Analyzer.analyze(viaStrings, options: options)
        let b = Analyzer.analyze(viaBytes, options: options)
        #expect(a.datasets.map(\.name) == ["all splits", "train", "val"])
        #expect(try Self.json(a.datasets) == Self.json(b.datasets))
        #expect(b.datasets[0].words.totalWords == b.datasets[1].words.totalWords + b.datasets[2].words.totalWords)
    }
}

@Suite struct UTF8BytesTests {
    @Test func validityAgreesWithTheStandardLibrary() {
        var random = SystemRandomNumberGenerator()
        let interesting: [UInt8] = [
            0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
            0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
        ]
        for length in 0..<12 {
            for _ in 0..<4000 {
                let bytes = (0..<length).map { _ in interesting.randomElement(using: &random)! }
                let ours = bytes.withUnsafeBufferPointer { UTF8Bytes.isValid($0) }
                #expect(
                    ours == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes.map { String($0, radix: 16) })")
            }
        }
        for text in ["", "ascii only text!", "한국어 캡션", "🎉 e\u{301}", String(repeating: "가", count: 100)] {
            #expect(Array(text.utf8).withUnsafeBufferPointer { UTF8Bytes.isValid($0) })
        }
        for bad: [UInt8] in [
            [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xF4, 0x90, 0x80, 0x80], [0xEA, 0xB0],
        ] {
            #expect(!bad.withUnsafeBufferPointer { UTF8Bytes.isValid($0) })
        }
    }

    @Test func blanknessAgreesWithWhiteSpace() {
        let samples = [
            "", " ", "\t\r\n", "\u{3000}\u{A0}\u{2028}", " a ", "\u{200B}", "\u{85}", "\u{1680}x", "🎉", "\u{FEFF}",
        ]
        for text in samples {
            let ours = Array(text.utf8).withUnsafeBufferPointer { UTF8Bytes.isBlank($0) }
            #expect(
                ours == text.unicodeScalars.allSatisfy(\.properties.isWhitespace), "\(text.unicodeScalars.map(\.value))"
            )
        }
    }
}
