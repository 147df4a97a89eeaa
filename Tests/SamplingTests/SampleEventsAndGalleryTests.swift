import Foundation
import Testing

@testable import Sampling

/// The engine's shared test fixtures (the sample events decode in RunsTests.EventTests).
enum EngineFixtures {
    static let folder = SampleJobTests.repoRoot.appendingPathComponent("engine/tests/fixtures")
}

@Suite struct SampleGalleryTests {
    /// A sidecar as the engine writes it (the fixture is a real one from the tiny model), varied.
    func sidecar(id: String, index: Int, category: String?, prompt: String) throws -> Data {
        let url = EngineFixtures.folder.appendingPathComponent("sample-sidecar.json")
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        object["id"] = id
        object["index"] = index
        object["category"] = category ?? NSNull()
        object["prompt"] = prompt
        var video = try #require(object["video"] as? [String: Any])
        video["file"] = "\(id).mp4"
        video["poster"] = "\(id).jpg"
        object["video"] = video
        return try JSONSerialization.data(withJSONObject: object)
    }

    @Test func groupsByCategoryEscapesAndLinksRelativeFiles() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "wanlora-gallery-\(UUID().uuidString)")
        let videos = folder.appendingPathComponent("videos")
        try FileManager.default.createDirectory(at: videos, withIntermediateDirectories: true)
        let rows: [(String, Int, String?, String)] = [
            ("0001", 1, "축제", "등불 축제"), ("0002", 2, nil, "<script>alert(1)</script> & \"따옴표\""),
            ("0003", 3, "공간/건축", "한옥 마을"), ("0004", 4, "축제", "밤거리"),
        ]
        for (id, index, category, prompt) in rows {
            try sidecar(id: id, index: index, category: category, prompt: prompt).write(
                to: videos.appendingPathComponent("\(id).json"))
        }
        try Data("{not json".utf8).write(to: videos.appendingPathComponent("broken.json"))

        let all = SampleGallery.sidecars(folder: folder.path)
        #expect(all.sidecars.map(\.id) == ["0001", "0002", "0003", "0004"])
        #expect(all.errors.count == 1 && all.errors[0].path.hasSuffix("broken.json"))
        let some = SampleGallery.sidecars(folder: folder.path, ids: ["0004", "0001", "0009"])
        #expect(some.sidecars.map(\.id) == ["0001", "0004"] && some.errors.isEmpty)  // 0009 not made yet

        let groups = SampleGallery.groups(all.sidecars)
        #expect(groups.map(\.category) == ["축제", "공간/건축", nil])
        #expect(groups[0].videos.map(\.id) == ["0001", "0004"])

        let html = SampleGallery.html(all.sidecars, title: "samples <a>")
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("<title>samples &lt;a&gt;</title>"))
        #expect(
            !html.contains("<script>alert")
                && html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;따옴표&quot;"))
        #expect(html.contains("<video src=\"videos/0003.mp4\" poster=\"videos/0003.jpg\""))
        let order = ["<h2>축제</h2>", "<h2>공간/건축</h2>", "<h2>(no category)</h2>"].map { html.range(of: $0)!.lowerBound }
        #expect(order == order.sorted())
        #expect(html.contains("4 steps (3 high-noise, 1 low-noise; schedule wan, shift 12)"))
        #expect(html.contains("guidance 4 / 3") && html.contains("LoRA high: none, low: none"))
        #expect(html.contains("seed 7"))
    }
}
