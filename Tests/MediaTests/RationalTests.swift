import Testing

@testable import Media

@Suite struct RationalTests {
    @Test func parsesRatesAndAspects() {
        #expect(Rational(parsing: "30000/1001") == Rational(30_000, 1_001))
        #expect(Rational(parsing: "16:9") == Rational(16, 9))
        #expect(Rational(parsing: "25") == Rational(25, 1))
        #expect(Rational(parsing: "1920:1080") == Rational(16, 9))
        #expect(Rational(parsing: "1920:1080")?.aspectDescription == "16:9")
        #expect(abs(Rational(30_000, 1_001).value - 29.970_029_97) < 1e-8)
    }

    @Test func unknownRatesAreNil() {
        // ffprobe writes 0/0 for "no rate" and 0:1 for "no aspect ratio".
        for text in ["0/0", "0:1", "", "N/A", "-25/1", "25/0", "x/y"] {
            #expect(Rational(parsing: text) == nil, "\(text)")
        }
    }

    @Test func keepsLowestTermsWithPositiveDenominator() {
        let ratio = Rational(6, -4)
        #expect(ratio.numerator == -3)
        #expect(ratio.denominator == 2)
        #expect(ratio.description == "-3/2")
    }
}
