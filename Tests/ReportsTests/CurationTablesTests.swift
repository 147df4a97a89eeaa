import Curation
import Testing

@testable import Reports

@Suite struct CurationTablesTests {
    func summary() -> CurationSummary {
        var summary = CurationSummary(options: CurationOptions())
        summary.rowsRead = 10
        summary.train = 6
        summary.val = 1
        summary.dropped = 2
        summary.rejected = 1
        summary.reasons = [
            .init(outcome: .train, reason: "kept", count: 6), .init(outcome: .val, reason: "kept", count: 1),
            .init(outcome: .dropped, reason: "near duplicate", count: 2),
            .init(outcome: .rejected, reason: "empty caption", count: 1),
        ]
        summary.classWeights = [
            .init(category: "생활/문화", trainItems: 46, inverse: 0.5, sqrt: 0.8, effective: 0.6, chosen: 0.6),
            .init(category: "무형문화유산", trainItems: 1, inverse: 23, sqrt: 5.4, effective: 12, chosen: 12),
        ]
        return summary
    }

    @Test func reasonsTableCountsEveryRowOnce() {
        let table = CurationTables.reasons(summary())
        #expect(table.rows.count == 5)
        #expect(table.rows[2] == ["dropped", "near duplicate", "2", "20.00%"])
        #expect(table.rows.last == ["all", "", "10", "100.00%"])
        #expect(
            table.note
                == "rows read 10 = train 6 + val 1 + dropped 2 + rejected 1; curation-log.csv has one line per row")
    }

    @Test func weightsTableStatesTheInverseRatio() {
        let table = CurationTables.weights(summary())
        #expect(table.rows[1] == ["무형문화유산", "1", "23.000", "5.400", "12.000"])
        #expect(table.note?.contains("inverse frequency gives 무형문화유산 46.0× the weight of 생활/문화") == true)
    }

    @Test func markdownHasNoTimings() {
        var s = summary()
        s.media.bytesHashed = 5_000_000
        s.media.hashSeconds = 0.01
        #expect(!CurationTables.markdown(s, source: "m.csv").contains("MB/s"))
        #expect(CurationTables.facts(s, timings: true).rows.contains { $0[1].contains("500 MB/s per worker") })
    }
}
