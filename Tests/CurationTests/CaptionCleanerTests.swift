import Testing

@testable import Curation

@Suite struct CaptionCleanerTests {
    let cleaner = CaptionCleaner()

    @Test func cleanCaptionsPassUnchanged() {
        let caption = "서울 광장에 사람들이 모였다. Seoul, 1988 🎉"
        let cleaned = cleaner.clean(caption)
        #expect(cleaned.text == caption)
        #expect(!cleaned.changed)
        #expect(cleaned.lengthBeforeTruncation == caption.unicodeScalars.count)
    }

    @Test func decomposedHangulBecomesComposed() {
        let nfd = "\u{1112}\u{1161}\u{11AB}\u{1100}\u{116E}\u{11A8}"  // 한국, decomposed
        let cleaned = cleaner.clean(nfd)
        #expect(cleaned.text == "한국")
        #expect(cleaned.text.unicodeScalars.count == 2)
        #expect(cleaned.changed)
    }

    @Test func controlsGoAndWhiteSpaceCollapses() {
        let cleaned = cleaner.clean("\u{FEFF}  첫째\t\t줄\r\n둘째\u{0007}  줄\u{200B}\u{3000}끝 \u{00A0}\n")
        #expect(cleaned.text == "첫째 줄 둘째 줄 끝")
        #expect(cleaned.changed)
    }

    @Test func emojiJoinersSurvive() {
        let family = "가족 👨‍👩‍👧 사진"
        #expect(cleaner.clean(family).text == family)
    }

    @Test func truncationCutsAtASpaceNearTheLimit() {
        let truncating = CaptionCleaner(truncateTo: 10)
        // "하나 둘 셋 넷 다섯" is 11 scalars; the last space at or before index 10, and not before
        // 8 (80% of the limit), is at 8.
        let cleaned = truncating.clean("하나 둘 셋 넷 다섯")
        #expect(cleaned.text == "하나 둘 셋 넷")
        #expect(cleaned.truncated)
        #expect(cleaned.untruncated == "하나 둘 셋 넷 다섯")
        #expect(cleaned.lengthBeforeTruncation == 11)
    }

    @Test func truncationWithoutSpacesKeepsGraphemesWhole() {
        let truncating = CaptionCleaner(truncateTo: 4)
        // 가나다 then a 5-scalar family emoji: cutting at 4 scalars would split it.
        let cleaned = truncating.clean("가나다👨‍👩‍👧")
        #expect(cleaned.text == "가나다")
        #expect(truncating.clean("가나다라").truncated == false)
    }
}

@Suite struct CurationWriterTests {
    @Test func addedColumnsReplaceSameNamedInputColumns() {
        let (header, positions) = CurationWriter.splitHeader(["path", "Weight", "caption"])
        #expect(header == ["path", "Weight", "caption", "quality", "group"])
        #expect(positions == [1, 3, 4])
    }

    @Test func fixedDecimalsAreLocaleFreeAndRounded() {
        #expect(fixed(1.23456789, 6) == "1.234568")
        #expect(fixed(0.5, 4) == "0.5000")
        #expect(fixed(46, 1) == "46.0")
        #expect(fixed(-0.00001, 2) == "0.00")
        #expect(fixed(-2.5, 1) == "-2.5")
    }
}
