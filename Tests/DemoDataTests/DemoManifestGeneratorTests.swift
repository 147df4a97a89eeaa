import Testing

@testable import DemoData
@testable import Manifest

@Suite struct DemoManifestGeneratorTests {
    @Test func sameSeedSameBytesOtherSeedOtherBytes() {
        let a = DemoManifestGenerator(rows: 300, seed: 42)
        let b = DemoManifestGenerator(rows: 300, seed: 42)
        let c = DemoManifestGenerator(rows: 300, seed: 43)
        #expect(a.csv(a.generate()) == b.csv(b.generate()))
        #expect(a.csv(a.generate()) != c.csv(c.generate()))
    }

    @Test func imageShareIsTheArchivesRounded() {
        let rows = DemoManifestGenerator(rows: 1_000, seed: 7).generate()
        let images = rows.filter { $0.mediaType == .image }.count
        // 1,000 × 99,994 / 199,994 = 499.985 → 500.
        #expect(images == 500)
        #expect(rows.allSatisfy { ($0.mediaType == .video) == ($0.duration != nil) })
    }
}
