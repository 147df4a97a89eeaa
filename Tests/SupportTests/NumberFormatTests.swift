import Support
import Testing

@Test func groupsThousands() {
    #expect(NumberFormat.grouped(0) == "0")
    #expect(NumberFormat.grouped(999) == "999")
    #expect(NumberFormat.grouped(1000) == "1,000")
    #expect(NumberFormat.grouped(199_994) == "199,994")
    #expect(NumberFormat.grouped(-18_108_519) == "-18,108,519")
}

@Test func fixedDecimalsAndPercent() {
    #expect(NumberFormat.decimal(2383.654, 2) == "2,383.65")
    #expect(NumberFormat.decimal(0.39535, 4) == "0.3954")
    #expect(NumberFormat.decimal(-0.5, 1) == "-0.5")
    #expect(NumberFormat.decimal(-0.001, 2) == "0.00")
    #expect(NumberFormat.decimal(1.0 / 0.0, 2) == "∞")
    #expect(NumberFormat.percent(0.938051) == "93.81%")
    #expect(NumberFormat.percent(1) == "100.00%")
    #expect(NumberFormat.decimal(nil as Double?) == "—")
}
