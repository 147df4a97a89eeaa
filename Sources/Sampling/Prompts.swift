import Foundation
import Manifest
import Support

/// One prompt to sample, with where it came from (shown in errors and kept in the job).
public struct SamplePrompt: Sendable, Equatable {
    /// The text, NFC-normalised (archive captions arrive as decomposed Hangul) and trimmed.
    public var text: String
    public var category: String?
    /// An id the file gave (the `id` column); nil: numbered by position.
    public var id: String?
    /// A seed the file gave (the `seed` column); nil: the run's seed + position.
    public var seed: Int?
    /// "prompts.csv:12", "--prompt 2", "val.csv:1043".
    public var origin: String

    public init(text: String, category: String? = nil, id: String? = nil, seed: Int? = nil, origin: String) {
        self.text = text
        self.category = category
        self.id = id
        self.seed = seed
        self.origin = origin
    }
}

/// A prompt source that cannot be used, and why.
public struct PromptError: ActionableError, Equatable {
    public let problem: String
    public let remedy: String
}

/// Prompts from the command line, a file (one a line, or CSV with a category), or the captions of
/// the validation manifest.
public enum PromptSource {
    static func clean(_ text: String) -> String {
        text.precomposedStringWithCanonicalMapping.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `--prompt TEXT`, repeatable.
    public static func arguments(_ texts: [String]) throws(PromptError) -> [SamplePrompt] {
        var prompts: [SamplePrompt] = []
        for (index, raw) in texts.enumerated() {
            let text = clean(raw)
            guard !text.isEmpty else {
                throw PromptError(
                    problem: "--prompt number \(index + 1) is empty.", remedy: "Write the prompt's text after --prompt."
                )
            }
            prompts.append(SamplePrompt(text: text, origin: "--prompt \(index + 1)"))
        }
        return prompts
    }

    /// `--prompts FILE`: a `.csv` file with a header (a `prompt` or `caption` column, optional
    /// `category`, `id` and `seed`), anything else one prompt a line (blank lines separate).
    public static func file(_ path: String) throws(PromptError) -> [SamplePrompt] {
        let name = (path as NSString).lastPathComponent
        if path.lowercased().hasSuffix(".csv") {
            let table: CSVTable
            do {
                table = try CSVTable.read(path: path)
            } catch {
                throw PromptError(problem: "cannot read the prompt file: \(error.problem)", remedy: error.remedy)
            }
            return try csv(table, name: name)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PromptError(
                problem: "cannot read the prompt file \(path).", remedy: "Check the path and its permissions.")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PromptError(
                problem: "\(path) is not UTF-8 text.",
                remedy: "Save it as UTF-8 (e.g. iconv -f CP949 -t UTF-8 \(name) > prompts.txt).")
        }
        return try lines(text, name: name)
    }

    /// One prompt per non-blank line.
    public static func lines(_ text: String, name: String) throws(PromptError) -> [SamplePrompt] {
        var prompts: [SamplePrompt] = []
        var body = Substring(text)
        if body.hasPrefix("\u{FEFF}") { body = body.dropFirst() }
        var number = 0
        for line in body.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            number += 1
            let cleaned = clean(String(line))
            if !cleaned.isEmpty { prompts.append(SamplePrompt(text: cleaned, origin: "\(name):\(number)")) }
        }
        guard !prompts.isEmpty else {
            throw PromptError(
                problem: "\(name) holds no prompt (every line is blank).", remedy: "Write one prompt a line.")
        }
        return prompts
    }

    /// CSV rows with a prompt (or caption) column.
    public static func csv(_ table: CSVTable, name: String) throws(PromptError) -> [SamplePrompt] {
        guard let textColumn = table.column("prompt") ?? table.column("caption") else {
            throw PromptError(
                problem: "\(name) has no `prompt` or `caption` column; "
                    + "its header is: \(table.header.joined(separator: ", ")).",
                remedy: "Name the column of the prompts `prompt` (optional columns: category, "
                    + "id, seed), or save the file as .txt with one prompt a line.")
        }
        let categoryColumn = table.column("category")
        let idColumn = table.column("id")
        let seedColumn = table.column("seed")
        var prompts: [SamplePrompt] = []
        for record in table.records {
            let origin = "\(name):\(record.line)"
            if let problem = record.problem {
                throw PromptError(
                    problem: "\(origin): \(problem).",
                    remedy: "Fix the quoting of that row (a quote inside a field is written \"\").")
            }
            guard record.fields.count == table.header.count else {
                throw PromptError(
                    problem: "\(origin) has \(record.fields.count) fields, the header has \(table.header.count).",
                    remedy: "Quote fields that contain commas: \"a, b\".")
            }
            let text = clean(record.fields[textColumn])
            guard !text.isEmpty else {
                throw PromptError(
                    problem: "\(origin) has an empty \(table.header[textColumn]).",
                    remedy: "Write the prompt or delete the row.")
            }
            let category = categoryColumn.map { clean(record.fields[$0]) }.flatMap { $0.isEmpty ? nil : $0 }
            let id = idColumn.map { clean(record.fields[$0]) }.flatMap { $0.isEmpty ? nil : $0 }
            var seed: Int?
            if let seedColumn {
                let raw = clean(record.fields[seedColumn])
                if !raw.isEmpty {
                    guard let value = Int(raw), value >= 0 else {
                        throw PromptError(
                            problem: "\(origin): seed \"\(raw)\" is not a whole number ≥ 0.",
                            remedy: "Write the seed as digits, or leave it empty to use the run's seed.")
                    }
                    seed = value
                }
            }
            prompts.append(SamplePrompt(text: text, category: category, id: id, seed: seed, origin: origin))
        }
        guard !prompts.isEmpty else {
            throw PromptError(problem: "\(name) has a header but no rows.", remedy: "Add one row per prompt.")
        }
        return prompts
    }

    /// What `validation` chose from each category.
    public struct CategoryChoice: Sendable, Equatable {
        public var category: String
        /// Rows of the category with a non-empty caption.
        public var available: Int
        public var chosen: Int
    }

    /// `perCategory` captions of each category of the validation manifest, drawn with `seed`
    /// (the same seed draws the same captions), categories in name order, rows in file order.
    public static func validation(
        manifest path: String, perCategory: Int, seed: UInt64, categoryColumn: String = "category",
        captionColumn: String = "caption"
    ) throws(PromptError) -> (prompts: [SamplePrompt], choices: [CategoryChoice]) {
        let name = (path as NSString).lastPathComponent
        var rows: [(line: Int, caption: String, category: String)] = []
        if path.lowercased().hasSuffix(".jsonl") || path.lowercased().hasSuffix(".ndjson") {
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
            else {
                throw PromptError(
                    problem: "cannot read the validation manifest \(path).",
                    remedy: "Check data.val_manifest in the configuration (wanlora prepare writes it).")
            }
            for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated()
            where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    throw PromptError(
                        problem: "\(name):\(index + 1) is not a JSON object.", remedy: "Write one JSON object a line.")
                }
                rows.append(
                    (
                        index + 1, clean(object[captionColumn] as? String ?? ""),
                        clean(object[categoryColumn] as? String ?? "")
                    ))
            }
        } else {
            let table: CSVTable
            do {
                table = try CSVTable.read(path: path)
            } catch {
                throw PromptError(
                    problem: "cannot read the validation manifest: \(error.problem)",
                    remedy: "Check data.val_manifest in the configuration (wanlora prepare writes it).")
            }
            guard let captionIndex = table.column(captionColumn) else {
                throw PromptError(
                    problem: "\(name) has no `\(captionColumn)` column; "
                        + "its header is: \(table.header.joined(separator: ", ")).",
                    remedy: "Point data.val_manifest at a prepared manifest (columns path, caption, category, …).")
            }
            let categoryIndex = table.column(categoryColumn)
            for record in table.records where record.problem == nil && record.fields.count == table.header.count {
                rows.append(
                    (
                        record.line, clean(record.fields[captionIndex]),
                        categoryIndex.map { clean(record.fields[$0]) } ?? ""
                    ))
            }
        }
        var byCategory: [String: [(line: Int, caption: String)]] = [:]
        for row in rows where !row.caption.isEmpty {
            byCategory[row.category, default: []].append((row.line, row.caption))
        }
        guard !byCategory.isEmpty else {
            throw PromptError(
                problem: "\(name) has no row with a caption.",
                remedy: "Use the prepared validation manifest (data.val_manifest).")
        }
        var prompts: [SamplePrompt] = []
        var choices: [CategoryChoice] = []
        for category in byCategory.keys.sorted(by: { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }) {
            var candidates = byCategory[category]!
            var random = SeededRandom(seed: seed &+ UInt64(truncatingIfNeeded: category.hashValueStable))
            random.shuffle(&candidates)
            let chosen = candidates.prefix(perCategory).sorted { $0.line < $1.line }
            for row in chosen {
                prompts.append(
                    SamplePrompt(
                        text: row.caption, category: category.isEmpty ? nil : category, origin: "\(name):\(row.line)"))
            }
            choices.append(CategoryChoice(category: category, available: candidates.count, chosen: chosen.count))
        }
        return (prompts, choices)
    }
}

extension String {
    /// FNV-1a over the UTF-8 bytes: the same on every run and platform (`hashValue` is seeded per process).
    var hashValueStable: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
