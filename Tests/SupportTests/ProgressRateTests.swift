import Testing

@testable import Support

@Suite struct ProgressRateTests {
    @Test func rateAndTimeLeft() {
        let rate = ProgressRate(completed: 30, total: 120, elapsed: 20)
        #expect(rate.perSecond == 1.5)
        #expect(rate.secondsLeft == 60)
        #expect(ProgressRate(completed: 120, total: 120, elapsed: 20).secondsLeft == 0)
        #expect(ProgressRate(completed: 5, total: nil, elapsed: 2).secondsLeft == nil)
        #expect(ProgressRate(completed: 0, total: 10, elapsed: 5).perSecond == nil)
        #expect(ProgressRate(completed: 3, total: 10, elapsed: 0).perSecond == nil)
    }

    @Test func durationsForPeople() {
        #expect(NumberFormat.duration(0.42) == "0.4 s")
        #expect(NumberFormat.duration(42) == "42 s")
        #expect(NumberFormat.duration(185) == "3 min 05 s")
        #expect(NumberFormat.duration(7_620) == "2 h 07 min")
        #expect(NumberFormat.duration(3 * 86_400 + 4 * 3_600 + 59) == "3 d 04 h")
        #expect(NumberFormat.duration(-1) == "—")
        #expect(NumberFormat.duration(.infinity) == "—")
    }
}
