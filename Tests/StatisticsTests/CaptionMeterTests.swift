import Support
import Testing

@testable import Statistics

@Suite struct CaptionMeterTests {
    @Test func measuresLengthWordsAndTypeTokenRatio() {
        var meter = CaptionMeter()
        // 4 words, 3 distinct ("사람이" twice); 3 + 1 + 3 + 1 + 3 + 1 + 4 = 16 scalars after trimming.
        let metrics = meter.measure("  사람이 걷고, 사람이 웃는다.  ")
        #expect(metrics.length == 16)
        #expect(metrics.words == 4)
        #expect(metrics.uniqueWords == 3)
        #expect(metrics.typeTokenRatio == 0.75)
    }

    @Test func decomposedHangulMeasuresLikeComposed() {
        var meter = CaptionMeter()
        let composed = meter.measure("한국 문화")
        let decomposed = meter.measure(
            "\u{1112}\u{1161}\u{11AB}\u{1100}\u{116E}\u{11A8} \u{1106}\u{116E}\u{11AB}\u{1112}\u{116A}")
        #expect(composed == decomposed)
        #expect(composed.length == 5)
    }

    @Test func wordSequenceHashIgnoresPunctuationSpacingAndCase() {
        var meter = CaptionMeter()
        let a = meter.measure("Seoul, 1988: 사람들이 광장에 모였다.")
        let b = meter.measure("seoul 1988 사람들이   광장에 모였다")
        let reordered = meter.measure("1988 seoul 사람들이 광장에 모였다")
        let other = meter.measure("seoul 1988 사람들이 광장에 모였다 밤에")
        #expect(a.wordSequenceHash == b.wordSequenceHash)
        #expect(a.wordSequenceHash != reordered.wordSequenceHash)
        #expect(a.wordSequenceHash != other.wordSequenceHash)
        #expect(a.wordSequenceHash.description.count == 32)
    }

    @Test func uniqueWordsAreCountedPerCaption() {
        var meter = CaptionMeter()
        _ = meter.measure("a b c")
        // Words seen in an earlier caption are new again in this one.
        let second = meter.measure("a a b")
        #expect(second.words == 3)
        #expect(second.uniqueWords == 2)
    }
}

@Suite struct WordTableTests {
    /// Counts from the table against a dictionary of Strings, on words that differ only in one byte
    /// at every position of every length from 1 to 24 (the overlapping tail loads of the fingerprint).
    @Test func countsEqualADictionaryOnNearlyEqualWords() {
        var words: [[UInt8]] = []
        for length in 1...24 {
            let base = (0..<length).map { UInt8(0x61 + ($0 % 26)) }
            words.append(base)
            for position in 0..<length {
                var changed = base
                changed[position] = 0x5F
                words.append(changed)
            }
        }
        var table = WordTable(capacity: 16)  // grows several times
        defer { table.release() }
        var reference: [String: Int] = [:]
        var random = SeededRandom(seed: 7)
        var captionUniques: [Int] = []
        for caption in 0..<400 {
            var seen = Set<String>()
            var unique = 0
            for _ in 0..<25 {
                let word = words[random.below(words.count)]
                let text = String(decoding: word, as: UTF8.self)
                reference[text, default: 0] += 1
                let isNew = word.withUnsafeBufferPointer {
                    table.add($0.baseAddress!, $0.count, caption: Int32(caption))
                }
                #expect(isNew == seen.insert(text).inserted)
                if isNew { unique += 1 }
            }
            captionUniques.append(unique)
        }
        #expect(table.uniqueCount == reference.count)
        let top = table.top(reference.count)
        #expect(Dictionary(uniqueKeysWithValues: top.map { ($0.word, $0.count) }) == reference)
        // Ties by the words' bytes.
        let expected = reference.sorted {
            $0.value != $1.value
                ? $0.value > $1.value : Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8))
        }
        #expect(top.map(\.word) == expected.map(\.key))
        #expect(captionUniques.allSatisfy { $0 > 0 && $0 <= 25 })
    }

    @Test func mergeAddsCounts() {
        var a = WordTable(capacity: 16)
        var b = WordTable(capacity: 16)
        defer {
            a.release()
            b.release()
        }
        for (word, caption) in [("가나", 0), ("다", 0), ("가나", 1)] {
            _ = Array(word.utf8).withUnsafeBufferPointer { a.add($0.baseAddress!, $0.count, caption: Int32(caption)) }
        }
        for word in ["다", "라마바", "다"] {
            _ = Array(word.utf8).withUnsafeBufferPointer { b.add($0.baseAddress!, $0.count, caption: 0) }
        }
        a.merge(b)
        #expect(a.uniqueCount == 3)
        #expect(a.top(3).map { "\($0.word)=\($0.count)" } == ["다=3", "가나=2", "라마바=1"])
    }
}
