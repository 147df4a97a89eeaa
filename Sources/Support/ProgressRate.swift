/// Rate and time left of a long job, from how much is done after how long.
public struct ProgressRate: Sendable, Equatable {
    /// Units per second; nil before the first unit is done or before any time has passed.
    public var perSecond: Double?
    /// Seconds left at that rate; nil without a total or a rate.
    public var secondsLeft: Double?

    public init(completed: Int, total: Int?, elapsed: Double) {
        guard completed > 0, elapsed > 0 else {
            perSecond = nil
            secondsLeft = nil
            return
        }
        let rate = Double(completed) / elapsed
        perSecond = rate
        secondsLeft = total.map { Double(max(0, $0 - completed)) / rate }
    }
}

extension NumberFormat {
    /// A duration for people: `0.4 s`, `42 s`, `3 min 05 s`, `2 h 07 min`, `3 d 04 h`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "—" }
        if seconds < 10 { return decimal(seconds, 1) + " s" }
        let whole = Int(seconds.rounded())
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }
        if whole < 60 { return "\(whole) s" }
        if whole < 3_600 { return "\(whole / 60) min \(two(whole % 60)) s" }
        if whole < 86_400 { return "\(whole / 3_600) h \(two(whole % 3_600 / 60)) min" }
        return "\(whole / 86_400) d \(two(whole % 86_400 / 3_600)) h"
    }
}
