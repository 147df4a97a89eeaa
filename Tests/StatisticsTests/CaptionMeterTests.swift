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
        let decomposed = meter.measure("\u{1112}\u{1161}\u{11AB}\u{1100}\u{116E}\u{11A8} \u{1106}\u{116E}\u{11AB}\u{1112}\u{116A}")
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
