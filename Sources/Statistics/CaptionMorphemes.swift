import Foundation
import Support

/// The distinct captions of one or more manifests, written for the engine's morphemes stage
/// (`python -m wanlora_engine morphemes`; formats in engine/wanlora_engine/morphemes.py) while the
/// manifests are read: every caption is looked up by its bytes, and only a caption not seen before is
/// appended to the file, so the whole dataset and its splits (the same captions again) cost one
/// analysis per distinct caption. Each caption gets the number of its distinct caption.
///
/// Captions are compared by their 128-bit `ByteFingerprint`: two different captions with the same
/// fingerprint (probability about n² / 2¹²⁹, 10⁻²⁸ for a million captions) would share an analysis.
public final class DistinctCaptions: @unchecked Sendable {
    /// The first bytes of the file the engine reads.
    public static let magic = Array("WLCAPS01".utf8)

    public let path: String
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var numbers: [ByteFingerprint: Int32] = [:]
    private let lock = NSLock()

    /// Creates (or truncates) the file at `path`.
    public init(path: String) throws(MorphemeError) {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: Data(Self.magic + [0, 0, 0, 0])),
            let handle = FileHandle(forWritingAtPath: path)
        else {
            throw MorphemeError(
                problem: "Cannot create the caption file \(path) for the morpheme analysis.",
                remedy: "Choose a writable --out folder.")
        }
        self.handle = handle
        handle.seekToEndOfFile()
    }

    /// Number of distinct captions so far.
    public var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return numbers.count
    }

    /// The number of the caption with these UTF-8 bytes (appended to the file when new).
    public func number(of bytes: UnsafeBufferPointer<UInt8>) -> Int32 {
        let key =
            bytes.isEmpty
            ? ByteFingerprint(primary: 0, secondary: 0) : ByteFingerprint(bytes.baseAddress!, bytes.count)
        lock.lock()
        defer { lock.unlock() }
        if let known = numbers[key] { return known }
        let number = Int32(numbers.count)
        numbers[key] = number
        var length = UInt32(bytes.count).littleEndian
        withUnsafeBytes(of: &length) { buffer.append(contentsOf: $0) }
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 22 { flushLocked() }
        return number
    }

    /// The number of a caption held as a string (JSON Lines manifests keep their captions).
    public func number(of caption: String) -> Int32 {
        var caption = caption
        return caption.withUTF8 { number(of: $0) }
    }

    /// Writes what is buffered and the caption count into the header; the file is complete afterwards.
    public func finish() throws(MorphemeError) {
        lock.lock()
        defer { lock.unlock() }
        flushLocked()
        var count = UInt32(numbers.count).littleEndian
        do {
            try handle.seek(toOffset: UInt64(Self.magic.count))
            try handle.write(contentsOf: withUnsafeBytes(of: &count) { Data($0) })
            try handle.close()
        } catch {
            throw MorphemeError(
                problem: "Cannot write the caption file \(path): \(error.localizedDescription).",
                remedy: "Check the free space and permissions of the --out folder.")
        }
    }

    private func flushLocked() {
        guard !buffer.isEmpty else { return }
        handle.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}

/// A caption's script as the engine classifies it (Hangul, Latin, other letters).
public enum CaptionScript: Int, Codable, Sendable, CaseIterable {
    /// Hangul and no Latin letter.
    case hangul
    /// Hangul and Latin letters.
    case mixed
    /// Letters but no Hangul (e.g. English).
    case other
    /// Numbers and symbols only.
    case noLetters

    /// The name in reports and JSON (the engine's): `hangul`, `mixed`, `other`, `no_letters`.
    public var label: String { self == .noLetters ? "no_letters" : "\(self)" }
}

/// The engine's analysis of the distinct captions (see `DistinctCaptions`): per caption its script,
/// its morpheme count, its distinct morpheme types (sorted) and its content words in caption order,
/// held in flat arrays (200,000 captions of 200 morphemes would be 200,000 small arrays otherwise).
/// Definitions of morpheme, type and content word: engine/wanlora_engine/morphemes.py.
public struct MorphemeTable: Sendable {
    public static let magic = Array("WLMORP01".utf8)

    /// Morpheme type of each id, `form/TAG` (e.g. `사람/NNG`).
    public var morphemeTypes: [String]
    /// Content word of each id (e.g. `사람`, `입다`).
    public var contentWords: [String]
    var scripts: [UInt8]
    var morphemeCounts: [Int32]
    /// Caption `i`'s distinct morpheme type ids: `typeIDs[typeStarts[i]..<typeStarts[i + 1]]`, sorted.
    var typeStarts: [Int]
    var typeIDs: [UInt32]
    /// Caption `i`'s content word ids, in order: `wordIDs[wordStarts[i]..<wordStarts[i + 1]]`.
    var wordStarts: [Int]
    var wordIDs: [UInt32]

    /// Number of captions.
    public var count: Int { scripts.count }

    public func script(_ caption: Int) -> CaptionScript { CaptionScript(rawValue: Int(scripts[caption]))! }
    public func morphemeCount(_ caption: Int) -> Int { Int(morphemeCounts[caption]) }
    public func distinctTypes(_ caption: Int) -> ArraySlice<UInt32> {
        typeIDs[typeStarts[caption]..<typeStarts[caption + 1]]
    }
    public func contentWordIDs(_ caption: Int) -> ArraySlice<UInt32> {
        wordIDs[wordStarts[caption]..<wordStarts[caption + 1]]
    }

    /// A table from captions given directly (tests): each as script, morpheme types and content words.
    public init(captions: [(script: CaptionScript, morphemes: [String], contentWords: [String])]) {
        var typeNumbers: [String: UInt32] = [:]
        var wordNumbers: [String: UInt32] = [:]
        var types: [String] = []
        var words: [String] = []
        self.init(morphemeTypes: [], contentWords: [])
        for caption in captions {
            let morphemes = caption.morphemes.map { type -> UInt32 in
                if let known = typeNumbers[type] { return known }
                typeNumbers[type] = UInt32(types.count)
                types.append(type)
                return UInt32(types.count - 1)
            }
            let content = caption.contentWords.map { word -> UInt32 in
                if let known = wordNumbers[word] { return known }
                wordNumbers[word] = UInt32(words.count)
                words.append(word)
                return UInt32(words.count - 1)
            }
            append(script: UInt8(caption.script.rawValue), morphemes: morphemes, content: content)
        }
        morphemeTypes = types
        contentWords = words
    }

    private init(morphemeTypes: [String], contentWords: [String]) {
        self.morphemeTypes = morphemeTypes
        self.contentWords = contentWords
        scripts = []
        morphemeCounts = []
        typeStarts = [0]
        typeIDs = []
        wordStarts = [0]
        wordIDs = []
    }

    private mutating func append<Morphemes: Collection<UInt32>, Content: Collection<UInt32>>(
        script: UInt8, morphemes: Morphemes, content: Content
    ) {
        scripts.append(script)
        morphemeCounts.append(Int32(morphemes.count))
        typeIDs.append(contentsOf: Set(morphemes).sorted())
        typeStarts.append(typeIDs.count)
        wordIDs.append(contentsOf: content)
        wordStarts.append(wordIDs.count)
    }

    private struct Vocabulary: Decodable {
        var morphemes: [String]
        var content_words: [String]
    }

    /// Reads the engine's result file and vocabulary (engine/wanlora_engine/morphemes.py).
    public static func read(resultPath: String, vocabularyPath: String) throws(MorphemeError) -> MorphemeTable {
        func unreadable(_ what: String) -> MorphemeError {
            MorphemeError(
                problem: "The morpheme analysis \(resultPath) is unreadable: \(what).",
                remedy: "Run the analysis again; if it recurs, the engine and wanlora are of different "
                    + "versions (`make -C engine venv`).")
        }
        let vocabulary: Vocabulary
        let data: Data
        do {
            let vocabularyData = try Data(contentsOf: URL(fileURLWithPath: vocabularyPath))
            vocabulary = try JSONDecoder().decode(Vocabulary.self, from: vocabularyData)
            data = try Data(contentsOf: URL(fileURLWithPath: resultPath), options: .alwaysMapped)
        } catch {
            throw unreadable("\(error.localizedDescription)")
        }
        var table = MorphemeTable(morphemeTypes: vocabulary.morphemes, contentWords: vocabulary.content_words)
        let typeCount = UInt32(vocabulary.morphemes.count)
        let wordCount = UInt32(vocabulary.content_words.count)
        let failure: String? = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> String? in
            var offset = 0
            func u32() -> UInt32? {
                guard offset + 4 <= raw.count else { return nil }
                defer { offset += 4 }
                return UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            }
            func ids(_ count: Int, below limit: UInt32) -> [UInt32]? {
                guard offset + 4 * count <= raw.count else { return nil }
                var result = [UInt32](repeating: 0, count: count)
                for index in 0..<count {
                    result[index] = UInt32(
                        littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4 * index, as: UInt32.self))
                    if result[index] >= limit { return nil }
                }
                offset += 4 * count
                return result
            }
            guard raw.count >= 12, Array(raw[0..<8]) == magic else { return "it does not start with WLMORP01" }
            offset = 8
            let captions = Int(u32()!)
            table.scripts.reserveCapacity(captions)
            for caption in 0..<captions {
                guard offset < raw.count, raw[offset] < CaptionScript.allCases.count else {
                    return "caption \(caption) is cut or invalid"
                }
                let script = raw[offset]
                offset += 1
                guard let morphemeCount = u32(), let morphemes = ids(Int(morphemeCount), below: typeCount),
                    let wordCount32 = u32(), let words = ids(Int(wordCount32), below: wordCount)
                else {
                    return "caption \(caption) is cut or names an unknown id"
                }
                table.append(script: script, morphemes: morphemes, content: words)
            }
            return offset == raw.count ? nil : "\(raw.count - offset) bytes follow the last caption"
        }
        if let failure { throw unreadable(failure) }
        return table
    }
}

/// The morpheme analysis failed or its files are unusable.
public struct MorphemeError: ActionableError, Equatable {
    public let problem: String
    public let remedy: String
    public init(problem: String, remedy: String) {
        self.problem = problem
        self.remedy = remedy
    }
}
