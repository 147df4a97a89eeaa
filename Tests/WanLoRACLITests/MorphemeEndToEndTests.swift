import Foundation
import Testing

/// `analyze --morphemes` and `curate --template-captions` with the real engine and Kiwi, the way a
/// user runs them. `make test` creates engine/.venv (with kiwipiepy), so CI runs these.
struct MorphemeEndToEndTests {
    static let enginePython = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("engine/.venv/bin/python").path
    static let missing = "engine/.venv is missing: `make -C engine venv` (make test does it) enables this test"
    static var haveEngine: Bool { FileManager.default.isExecutableFile(atPath: enginePython) }

    static let crowd = "사람들이 광화문 앞에서 한복을 입고 걸어가는 모습이 보인다."
    static let sea = "아름다운 바다와 푸른 하늘을 바라보고 있다."

    /// Six rows: the crowd sentence three times, the sea sentence, English, numbers only.
    func manifest(in folder: URL) throws -> (all: String, train: String, val: String) {
        let header = "path,media_type,width,height,duration,category,caption\n"
        let rows = [
            "a.jpg,image,1280,720,,축제,\(Self.crowd)", "b.jpg,image,1280,720,,축제,\(Self.crowd)",
            "c.jpg,image,1280,720,,축제,\(Self.crowd)", "d.jpg,image,1280,720,,자연/풍경,\(Self.sea)",
            "e.jpg,image,1280,720,,자연/풍경,Tourists walk in Seoul at night.", "f.jpg,image,1280,720,,자연/풍경,12345 !!!",
        ]
        let all = folder.appendingPathComponent("all.csv").path
        let train = folder.appendingPathComponent("train.csv").path
        let val = folder.appendingPathComponent("val.csv").path
        func write(_ lines: [String], to path: String) throws {
            try Data((header + lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        }
        try write(rows, to: all)
        try write([rows[0], rows[1], rows[3], rows[4]], to: train)
        try write([rows[2], rows[5]], to: val)
        return (all, train, val)
    }

    @Test(.enabled(if: haveEngine, Comment(rawValue: missing)))
    func analyzeWithMorphemesReportsContentWordsBesideWords() throws {
        let folder = BinaryRunner.temporaryFolder()
        let (all, train, val) = try manifest(in: folder)
        let out = folder.appendingPathComponent("report").path
        let result = try BinaryRunner.run([
            "analyze", all, "--split", "train=\(train)", "--split", "val=\(val)", "--out", out, "--quiet",
            "--morphemes", "--engine-python", Self.enginePython, "--template-words", "5", "--template-threshold", "2",
            "--morpheme-workers", "1",
        ])
        #expect(result.status == 0, "\(result.stderr)")

        let data = try Data(contentsOf: URL(fileURLWithPath: "\(out)/report.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let info = json["morpheme_analysis"] as! [String: Any]
        #expect(info["distinct_captions"] as? Int == 4 && info["unit"] as? String == "word")
        #expect((info["analyser"] as? String)?.hasPrefix("Kiwi ") == true)
        let datasets = json["datasets"] as! [[String: Any]]
        let whole = (datasets[0]["morphemes"] as! [String: Any])["all"] as! [String: Any]
        #expect(whole["captions"] as? Int == 6)
        #expect(whole["scripts"] as? [String: Int] == ["hangul": 4, "mixed": 0, "other": 1, "no_letters": 1])
        // Crowd: 16 morphemes, 8 content words; sea: 12 and 5; English: 6 and 0; numbers: 1 and 0.
        #expect(whole["morphemes"] as? Int == 3 * 16 + 12 + 6 + 1)
        #expect(whole["content_words"] as? Int == 3 * 8 + 5)
        let top = (whole["top_content_words"] as! [[String: Any]]).prefix(2).map { "\($0["word"]!) \($0["count"]!)" }
        #expect(top == ["걸어가다 3", "광화문 3"])  // eight words three times each; ties by code point
        // The crowd sentence's key (its first five content words) is shared by 3 > 2 captions.
        #expect((whole["template_captions"] as! [String: Any])["count"] as? Int == 3)
        let comparison = (json["comparisons"] as! [[String: Any]])
            .first { $0["a"] as? String == "train" && $0["b"] as? String == "val" }!
        #expect((comparison["content_word_jsd"] as? Double).map { $0 > 0 && $0 < 1 } == true)

        let html = try String(contentsOfFile: "\(out)/report.html", encoding: .utf8)
        #expect(html.contains("<html lang=\"ko\">") && html.contains("'Noto Sans CJK KR'"))
        #expect(html.contains("Top words") && html.contains("Top content words") && html.contains("보이다"))
        let markdown = try String(contentsOfFile: "\(out)/report.md", encoding: .utf8)
        #expect(markdown.contains("| template captions | 3 (50.00%) | 0 (0.00%) | 0 (0.00%) |"), "\(markdown)")
        #expect(!FileManager.default.fileExists(atPath: "\(out)/morphemes/captions.bin"))
    }

    /// `[analyze]` of --config sets what the flags do not; --set and the flags win; the word unit is labelled.
    @Test(.enabled(if: haveEngine, Comment(rawValue: missing)))
    func analyzeReadsItsSettingsFromTheConfigFile() throws {
        let folder = BinaryRunner.temporaryFolder()
        let (all, _, _) = try manifest(in: folder)
        let config = folder.appendingPathComponent("wanlora.toml")
        try Data(
            """
            [analyze]
            morphemes = true
            morpheme_unit = "caption"
            template_threshold = 2
            top_words = 3

            """.utf8
        ).write(to: config)
        func analyze(_ extra: [String]) throws -> (json: [String: Any], markdown: String) {
            let out = folder.appendingPathComponent("report-\(UUID().uuidString)").path
            let result = try BinaryRunner.run(
                [
                    "analyze", all, "--out", out, "--quiet", "--config", config.path, "--engine-python",
                    Self.enginePython,
                    "--morpheme-workers", "1",
                ] + extra)
            #expect(result.status == 0, "\(result.stderr)")
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(out)/report.json"))
            return (
                try JSONSerialization.jsonObject(with: data) as! [String: Any],
                try String(contentsOfFile: "\(out)/report.md", encoding: .utf8)
            )
        }
        func morphemes(_ json: [String: Any]) -> (info: [String: Any], templates: Int?, top: Int)? {
            guard let info = json["morpheme_analysis"] as? [String: Any] else { return nil }
            let datasets = json["datasets"] as! [[String: Any]]
            let whole = (datasets[0]["morphemes"] as! [String: Any])["all"] as! [String: Any]
            return (
                info, (whole["template_captions"] as! [String: Any])["count"] as? Int,
                (whole["top_content_words"] as! [[String: Any]]).count
            )
        }
        let fromFile = try #require(morphemes(try analyze([]).json))
        #expect(fromFile.info["unit"] as? String == "caption" && fromFile.info["template_threshold"] as? Int == 2)
        #expect(fromFile.templates == 3 && fromFile.top == 3)  // the crowd sentence: 3 > 2 captions
        let overridden = try analyze(["--morpheme-unit", "word", "--set", "analyze.template_threshold=3"])
        let flags = try #require(morphemes(overridden.json))
        #expect(flags.info["unit"] as? String == "word" && flags.info["template_threshold"] as? Int == 3)
        #expect(flags.templates == 0)  // 3 captions are not more than 3
        #expect(overridden.markdown.contains("unit word: each distinct space-separated word analysed alone"))
        #expect(overridden.markdown.contains("so the figures are approximate"))
        #expect(morphemes(try analyze(["--no-morphemes"]).json) == nil)
    }

    @Test(.enabled(if: haveEngine, Comment(rawValue: missing)))
    func curateScoresTemplateCaptionsOnlyWhenAsked() throws {
        let folder = BinaryRunner.temporaryFolder()
        let (all, _, _) = try manifest(in: folder)
        func quality(_ extra: [String]) throws -> [String: String] {
            let out = folder.appendingPathComponent("curated-\(extra.count)").path
            let result = try BinaryRunner.run(
                [
                    "curate", all, "--out", out, "--quiet", "--min-quality", "0", "--no-content-hash",
                    "--no-perceptual-hash",
                    "--no-caption-duplicates", "--engine-python", Self.enginePython,
                ] + extra)
            #expect(result.status == 0, "\(result.stderr)")
            let log = try String(contentsOfFile: "\(out)/curation-log.csv", encoding: .utf8)
            var byPath: [String: String] = [:]
            // path is the third column, quality the last (the detail before it may hold quoted commas).
            for line in log.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                byPath[fields[2]] = fields.last!
            }
            return byPath
        }
        let off = try quality([])
        let on = try quality(["--template-captions", "--template-threshold", "2"])
        // Images without media measures: parts of weight 0.70 apply; on, the template part (0.10) joins them,
        // 1 for the sea, English and numbers captions, 0 for the crowd captions (a, b, c: a key of 3 > 2).
        for path in ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg"] {
            let before = try #require(Double(off[path] ?? ""))
            let after = try #require(Double(on[path] ?? ""))
            let part = ["a.jpg", "b.jpg", "c.jpg"].contains(path) ? 0.0 : 1.0
            #expect(abs(after - (before * 0.70 + 0.10 * part) / 0.80) < 2e-4, "\(path): \(before) → \(after)")
        }
    }
}
