import Foundation

/// Settings of the morpheme-level statistics (`wanlora analyze --morphemes`, curate's template flag).
public struct MorphemeOptions: Sendable, Equatable {
    /// How many of the most frequent content words to list.
    public var topWords: Int
    /// A caption's template key is the set of its first `templateWords` distinct content words.
    public var templateWords: Int
    /// A caption is a template caption when more than `templateThreshold` captions of its dataset
    /// share its key.
    public var templateThreshold: Int

    /// No defaults here: they are the `[analyze]` keys' defaults in the configuration registry, written once.
    public init(topWords: Int, templateWords: Int, templateThreshold: Int) {
        self.topWords = topWords
        self.templateWords = max(1, templateWords)
        self.templateThreshold = max(1, templateThreshold)
    }
}

/// Morpheme-level figures of a group of captions (a dataset, or one category of it).
public struct MorphemeGroupStatistics: Codable, Sendable, Equatable {
    public var captions: Int
    /// Captions per script (`hangul`, `mixed`, `other`, `no_letters`; see `CaptionScript`).
    public var scripts: [String: Int]
    /// Morphemes (Kiwi tokens other than punctuation and symbols), counted with repeats.
    public var morphemes: Int
    /// Distinct morpheme types (`form/TAG`).
    public var morphemeTypes: Int
    /// morphemeTypes / morphemes.
    public var corpusTTR: Double?
    /// Per caption: its distinct morpheme types / its morphemes (captions without morphemes excluded).
    public var captionTTR: Summary
    public var captionsWithoutMorphemes: Int
    /// Content words (NNG/NNP nouns, VV/VA stems + 다), counted with repeats, and distinct.
    public var contentWords: Int
    public var uniqueContentWords: Int
    public var contentWordsPerCaption: Summary
    public var captionsWithoutContentWords: Int
    public var topContentWords: [WordCount]
    /// Captions whose template key is shared by more than the threshold's captions of the dataset.
    public var templateCaptions: CountShare
}

/// One category's morpheme-level figures.
public struct CategoryMorphemes: Codable, Sendable, Equatable {
    public var category: String
    public var statistics: MorphemeGroupStatistics
}

/// A template key shared by many captions: its content words and how many captions have it.
public struct CaptionTemplate: Codable, Sendable, Equatable {
    public var words: [String]
    public var captions: Int
}

/// The morpheme-level statistics of one dataset: all its captions, then each category.
public struct MorphemeStatistics: Codable, Sendable, Equatable {
    public var all: MorphemeGroupStatistics
    /// Categories by caption count (descending), then name.
    public var categories: [CategoryMorphemes]
    /// The most shared template keys above the threshold (at most 5), most captions first.
    public var topTemplates: [CaptionTemplate]
}

/// How the morpheme analysis was made (in the report beside its figures).
public struct MorphemeAnalysisInfo: Codable, Sendable, Equatable {
    /// The analyser, e.g. `Kiwi (kiwipiepy 0.24.1)`.
    public var analyser: String
    /// `word`: each distinct space-separated word analysed on its own; `caption`: each caption whole.
    public var unit: String
    public var distinctCaptions: Int
    public var templateWords: Int
    public var templateThreshold: Int

    public init(analyser: String, unit: String, distinctCaptions: Int, templateWords: Int, templateThreshold: Int) {
        self.analyser = analyser
        self.unit = unit
        self.distinctCaptions = distinctCaptions
        self.templateWords = templateWords
        self.templateThreshold = templateThreshold
    }

    /// What the unit means for the figures, said beside them: the word unit is the faster one, not the exact one.
    public var unitNote: String {
        unit == "word"
            ? "unit word: each distinct space-separated word analysed alone, without the context of its caption, "
                + "so the figures are approximate (unit caption analyses whole captions, exact, in about twice "
                + "the CPU time: docs/BENCHMARKS.md)"
            : "unit \(unit): each caption analysed whole, in context"
    }
}

/// Pure functions from the engine's analysis (`MorphemeTable`) and each item's caption number to
/// `MorphemeStatistics`, template flags and content-word distributions.
public enum MorphemeCalculator {
    /// Figures of a dataset whose item `i` has caption `captionNumbers[i]` and category `categories[i]`.
    public static func compute(
        captionNumbers: [Int32], categories: [String], table: MorphemeTable,
        options: MorphemeOptions
    ) -> MorphemeStatistics {
        precondition(captionNumbers.count == categories.count, "one category per caption")
        let templates = templateFlags(captionNumbers: captionNumbers, table: table, options: options)
        var members: [String: [Int]] = [:]
        for index in categories.indices { members[categories[index], default: []].append(index) }
        let order = members.keys.sorted { (members[$0]!.count, $1) > (members[$1]!.count, $0) }
        func figures(_ members: [Int]) -> MorphemeGroupStatistics {
            group(members, captionNumbers: captionNumbers, templates: templates.flags, table: table, options: options)
        }
        return MorphemeStatistics(
            all: figures(Array(captionNumbers.indices)),
            categories: order.map { CategoryMorphemes(category: $0, statistics: figures(members[$0]!)) },
            topTemplates: templates.top)
    }

    /// The template key of a caption: its first `words` distinct content words, as sorted ids
    /// (nil when it has fewer).
    static func templateKey(_ caption: Int, table: MorphemeTable, words: Int) -> [UInt32]? {
        var key: [UInt32] = []
        for id in table.contentWordIDs(caption) where !key.contains(id) {
            key.append(id)
            if key.count == words { return key.sorted() }
        }
        return nil
    }

    /// Whether each item is a template caption: its key (`templateKey`) is shared by more than
    /// `options.templateThreshold` items of the list; and the most shared keys above it (at most 5).
    public static func templateFlags(captionNumbers: [Int32], table: MorphemeTable, options: MorphemeOptions)
        -> (flags: [Bool], top: [CaptionTemplate])
    {
        var keyOfCaption: [Int32: [UInt32]] = [:]
        var captionsPerKey: [[UInt32]: Int] = [:]
        for number in captionNumbers {
            let key: [UInt32]?
            if let known = keyOfCaption[number] {
                key = known
            } else {
                key = templateKey(Int(number), table: table, words: options.templateWords)
                if let key { keyOfCaption[number] = key }
            }
            if let key { captionsPerKey[key, default: 0] += 1 }
        }
        let flags = captionNumbers.map { number in
            keyOfCaption[number].map { captionsPerKey[$0]! > options.templateThreshold } ?? false
        }
        let top = captionsPerKey.filter { $0.value > options.templateThreshold }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.lexicographicallyPrecedes($1.key) }
            .prefix(5)
            .map { CaptionTemplate(words: $0.key.map { table.contentWords[Int($0)] }, captions: $0.value) }
        return (flags, Array(top))
    }

    /// Content word id → occurrences over the items (all of them, or those of one category).
    public static func contentWordCounts(captionNumbers: [Int32], table: MorphemeTable) -> [UInt32: Int] {
        var counts: [UInt32: Int] = [:]
        for number in captionNumbers {
            for id in table.contentWordIDs(Int(number)) { counts[id, default: 0] += 1 }
        }
        return counts
    }

    static func group(
        _ members: [Int], captionNumbers: [Int32], templates: [Bool], table: MorphemeTable,
        options: MorphemeOptions
    ) -> MorphemeGroupStatistics {
        var scripts = [Int](repeating: 0, count: CaptionScript.allCases.count)
        var seenTypes = [UInt64](repeating: 0, count: (table.morphemeTypes.count + 63) / 64)
        var distinctTypes = 0
        var morphemes = 0
        var contentWords = 0
        var withoutMorphemes = 0
        var withoutContent = 0
        var templated = 0
        var ttr: [Double] = []
        var perCaption: [Double] = []
        ttr.reserveCapacity(members.count)
        perCaption.reserveCapacity(members.count)
        var wordCounts: [UInt32: Int] = [:]
        for member in members {
            let caption = Int(captionNumbers[member])
            scripts[table.script(caption).rawValue] += 1
            let count = table.morphemeCount(caption)
            morphemes += count
            let types = table.distinctTypes(caption)
            if count > 0 { ttr.append(Double(types.count) / Double(count)) } else { withoutMorphemes += 1 }
            for type in types {
                let word = Int(type >> 6)
                let bit = UInt64(1) << (type & 63)
                if seenTypes[word] & bit == 0 {
                    seenTypes[word] |= bit
                    distinctTypes += 1
                }
            }
            let words = table.contentWordIDs(caption)
            contentWords += words.count
            perCaption.append(Double(words.count))
            if words.isEmpty { withoutContent += 1 }
            for id in words { wordCounts[id, default: 0] += 1 }
            if templates[member] { templated += 1 }
        }
        let top =
            wordCounts
            .sorted { ($0.value, table.contentWords[Int($1.key)]) > ($1.value, table.contentWords[Int($0.key)]) }
            .prefix(options.topWords)
            .map { WordCount(word: table.contentWords[Int($0.key)], count: $0.value) }
        return MorphemeGroupStatistics(
            captions: members.count,
            scripts: Dictionary(uniqueKeysWithValues: CaptionScript.allCases.map { ($0.label, scripts[$0.rawValue]) }),
            morphemes: morphemes, morphemeTypes: distinctTypes,
            corpusTTR: morphemes > 0 ? Double(distinctTypes) / Double(morphemes) : nil,
            captionTTR: Descriptive.summary(ttr), captionsWithoutMorphemes: withoutMorphemes,
            contentWords: contentWords, uniqueContentWords: wordCounts.count,
            contentWordsPerCaption: Descriptive.summary(perCaption), captionsWithoutContentWords: withoutContent,
            topContentWords: Array(top), templateCaptions: CountShare(count: templated, of: members.count))
    }
}
