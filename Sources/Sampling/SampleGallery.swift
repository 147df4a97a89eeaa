import Foundation
import Support

/// What the gallery reads from a video's JSON sidecar (the engine writes more; see docs/engine-contract.md §7).
public struct SampleSidecar: Sendable, Equatable, Decodable {
    public struct VideoInfo: Sendable, Equatable, Decodable {
        public var file: String
        public var poster: String
        public var width: Int
        public var height: Int
        public var frames: Int
        public var fps: Int
        public var durationSeconds: Double
    }

    public struct SamplerInfo: Sendable, Equatable, Decodable {
        public var solver: String
        public var schedule: String
        public var steps: Int
        public var shift: Double
        public var guidanceHigh: Double
        public var guidanceLow: Double
        public var stepsHigh: Int
        public var stepsLow: Int
    }

    public struct LoRAInfo: Sendable, Equatable, Decodable {
        public var path: String
        public var scale: Double
    }

    public struct LoRAs: Sendable, Equatable, Decodable {
        public var high: LoRAInfo?
        public var low: LoRAInfo?
    }

    public struct Timing: Sendable, Equatable, Decodable {
        public var seconds: Double
    }

    public var id: String
    public var index: Int
    public var prompt: String
    public var category: String?
    public var seed: Int
    public var negativePrompt: String
    public var promptTruncated: Bool
    public var video: VideoInfo
    public var sampler: SamplerInfo
    public var loras: LoRAs
    public var timing: Timing
}

/// A sidecar that cannot be read.
public struct GalleryError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// The HTML page of a sample folder: the videos grouped by category, each with its prompt and settings.
public enum SampleGallery {
    /// The sidecars of `ids` in `folder/videos/` (all `*.json` when `ids` is nil), in prompt order.
    /// Missing ids are skipped (a stopped run); unreadable sidecars are returned as errors.
    public static func sidecars(folder: String, ids: [String]? = nil) -> (
        sidecars: [SampleSidecar], errors: [GalleryError]
    ) {
        let videos = (folder as NSString).appendingPathComponent("videos")
        let names: [String]
        if let ids {
            names = ids.map { $0 + ".json" }
        } else {
            names = ((try? FileManager.default.contentsOfDirectory(atPath: videos)) ?? []).filter {
                $0.hasSuffix(".json")
            }.sorted()
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var out: [SampleSidecar] = []
        var errors: [GalleryError] = []
        for name in names {
            let path = (videos as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            do {
                out.append(try decoder.decode(SampleSidecar.self, from: data))
            } catch {
                errors.append(GalleryError(path: path, reason: "not a sample sidecar (\(error))"))
            }
        }
        return (out.sorted { $0.index < $1.index }, errors)
    }

    /// Categories in order of their first video; videos without one come last under "(no category)".
    public static func groups(_ sidecars: [SampleSidecar]) -> [(category: String?, videos: [SampleSidecar])] {
        var order: [String?] = []
        var byCategory: [String?: [SampleSidecar]] = [:]
        for sidecar in sidecars {
            if byCategory[sidecar.category] == nil { order.append(sidecar.category) }
            byCategory[sidecar.category, default: []].append(sidecar)
        }
        let ordered = order.filter { $0 != nil } + order.filter { $0 == nil }
        return ordered.map { ($0, byCategory[$0]!) }
    }

    public static func html(_ sidecars: [SampleSidecar], title: String) -> String {
        let groups = groups(sidecars)
        var body = "<h1>\(HTMLText.escape(title))</h1>\n"
        if let first = sidecars.first {
            let s = first.sampler
            body +=
                "<p class=\"meta\">\(sidecars.count) videos · \(first.video.width)×\(first.video.height), "
                + "\(first.video.frames) frames at \(first.video.fps) fps · \(s.solver), \(s.steps) steps "
                + "(\(s.stepsHigh) high-noise, \(s.stepsLow) low-noise; "
                + "schedule \(HTMLText.escape(s.schedule)), shift \(number(s.shift))) · "
                + "guidance \(number(s.guidanceHigh)) / \(number(s.guidanceLow)) · \(loraText(first.loras))</p>\n"
            body +=
                "<details><summary>negative prompt</summary><p "
                + "lang=\"zh\">\(HTMLText.escape(first.negativePrompt))</p></details>\n"
        }
        body +=
            "<nav>"
            + groups.map { group in
                "<a href=\"#\(anchor(group.category))\">\(HTMLText.escape(group.category ?? "(no category)")) "
                    + "(\(group.videos.count))</a>"
            }.joined(separator: " ") + "</nav>\n"
        for group in groups {
            body +=
                "<section id=\"\(anchor(group.category))\"><h2>\(HTMLText.escape(group.category ?? "(no category)"))"
                + "</h2>\n<div class=\"grid\">\n"
            for video in group.videos {
                let file = "videos/" + video.video.file
                let poster = "videos/" + video.video.poster
                var notes =
                    "\(HTMLText.escape(video.id)) · seed \(video.seed) · "
                    + "\(number(video.video.durationSeconds)) s of video · made in \(number(video.timing.seconds)) s"
                if video.promptTruncated { notes += " · <b>prompt cut at the token limit</b>" }
                body += """
                    <figure><video src="\(HTMLText.escape(file))" poster="\(HTMLText.escape(poster))" \
                    controls loop muted playsinline preload="none" \
                    width="\(video.video.width)" height="\(video.video.height)"></video>
                    <figcaption><p lang="ko">\(HTMLText.escape(video.prompt))</p><p \
                    class="meta">\(notes)</p></figcaption></figure>\n
                    """
            }
            body += "</div></section>\n"
        }
        return """
            <!DOCTYPE html>
            <html lang="ko"><head><meta charset="utf-8"><meta \
            name="viewport" content="width=device-width, initial-scale=1">
            <title>\(HTMLText.escape(title))</title>
            <style>
            body{font-family:\(HTMLText.fontFamily);margin:2rem;max-width:1400px;color:#222}
            @media (max-width:600px){body{margin:.75rem}}
            .meta{color:#666;font-size:.9rem;overflow-wrap:anywhere}nav a{margin-right:1rem;white-space:nowrap}
            .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,360px),1fr));gap:1.5rem}
            figure{margin:0}video{width:100%;height:auto;background:#000;border-radius:4px}
            figcaption p{margin:.3rem 0}h2{border-bottom:1px solid #ddd;padding-bottom:.3rem;margin-top:2.5rem}
            </style></head><body>
            \(body)</body></html>

            """
    }

    static func loraText(_ loras: SampleSidecar.LoRAs) -> String {
        func one(_ name: String, _ lora: SampleSidecar.LoRAInfo?) -> String {
            guard let lora else { return "\(name): none" }
            return "\(name): \(HTMLText.escape((lora.path as NSString).lastPathComponent)) × \(number(lora.scale))"
        }
        return "LoRA " + one("high", loras.high) + ", " + one("low", loras.low)
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e9 ? String(Int(value)) : String(format: "%.2f", value)
    }

    static func anchor(_ category: String?) -> String {
        guard let category else { return "none" }
        return "c-" + category.unicodeScalars.map { String($0.value, radix: 16) }.joined(separator: "-")
    }

}
