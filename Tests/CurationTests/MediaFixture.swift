import Foundation
import Manifest
import Support

@testable import Curation

/// Real media made with ffmpeg for the near-duplicate and end-to-end tests: families of an
/// original and its resized, re-encoded and slightly cropped copies, and unrelated items.
enum MediaFixture {
    struct Item {
        var path: String
        var type: MediaType
        var width: Int
        var height: Int
        var duration: Double?
        /// Items of one family are copies of one original; unrelated items have families of their own.
        var family: Int
        var variant: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func ffmpeg() throws -> String {
        guard let path = FrameExtractor.locate() else {
            throw Failure(description: "ffmpeg is not installed: run `make deps-media` (or apt-get install ffmpeg)")
        }
        return path
    }

    static func run(_ ffmpeg: String, _ arguments: [String]) async throws {
        let result = try await ChildProcess(
            ffmpeg, arguments: ["-nostdin", "-hide_banner", "-v", "error", "-y"] + arguments
        ).run()
        guard result.exit.succeeded else {
            throw Failure(description: "ffmpeg \(arguments.joined(separator: " ")): \(result.standardErrorTail)")
        }
    }

    /// A 320×240 picture: a two-colour gradient, eight random rectangles and ellipses, light noise. PPM (P6) bytes.
    static func picture(seed: UInt64, width: Int = 320, height: Int = 240) -> [UInt8] {
        var random = SeededRandomStream(seed: seed &* 0x9E37_79B9 &+ 1)
        func byte() -> Double { Double(random.next() % 256) }
        let from = (byte(), byte(), byte())
        let to = (byte(), byte(), byte())
        let vertical = random.next() % 2 == 0
        struct Shape {
            var x0, y0, x1, y1: Int
            var ellipse: Bool
            var colour: (Double, Double, Double)
        }
        var shapes: [Shape] = []
        for _ in 0..<8 {
            let w = 24 + Int(random.next() % 130)
            let h = 24 + Int(random.next() % 110)
            let x = Int(random.next() % UInt64(width - 20)) - 10
            let y = Int(random.next() % UInt64(height - 20)) - 10
            shapes.append(
                Shape(
                    x0: x, y0: y, x1: x + w, y1: y + h, ellipse: random.next() % 2 == 0,
                    colour: (byte(), byte(), byte())))
        }
        var out = Array("P6\n\(width) \(height)\n255\n".utf8)
        out.reserveCapacity(out.count + width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let t = vertical ? Double(y) / Double(height) : Double(x) / Double(width)
                var pixel = (from.0 + (to.0 - from.0) * t, from.1 + (to.1 - from.1) * t, from.2 + (to.2 - from.2) * t)
                for shape in shapes where x >= shape.x0 && x < shape.x1 && y >= shape.y0 && y < shape.y1 {
                    if shape.ellipse {
                        let cx = Double(shape.x0 + shape.x1) / 2
                        let cy = Double(shape.y0 + shape.y1) / 2
                        let rx = Double(shape.x1 - shape.x0) / 2
                        let ry = Double(shape.y1 - shape.y0) / 2
                        let dx = (Double(x) - cx) / rx
                        let dy = (Double(y) - cy) / ry
                        if dx * dx + dy * dy > 1 { continue }
                    }
                    pixel = shape.colour
                }
                let noise = Double(Int((UInt64(x &* 73_856_093) ^ UInt64(y &* 19_349_663) ^ seed) % 17) - 8)
                out.append(UInt8(max(0, min(255, pixel.0 + noise))))
                out.append(UInt8(max(0, min(255, pixel.1 + noise))))
                out.append(UInt8(max(0, min(255, pixel.2 + noise))))
            }
        }
        return out
    }

    /// Builds the items in `folder` (paths relative to it), in parallel.
    static func build(
        in folder: String, imageFamilies: Int, unrelatedImages: Int, videoFamilies: Int, unrelatedVideos: Int,
        seed: UInt64 = 1
    ) async throws -> [Item] {
        let ffmpeg = try ffmpeg()
        try FileManager.default.createDirectory(atPath: folder + "/media", withIntermediateDirectories: true)
        enum Job: Sendable {
            case imageFamily(Int, copies: Bool)
            case videoFamily(Int, copies: Bool)
        }
        let jobs: [Job] =
            (0..<(imageFamilies + unrelatedImages)).map { .imageFamily($0, copies: $0 < imageFamilies) }
            + (0..<(videoFamilies + unrelatedVideos)).map { .videoFamily($0, copies: $0 < videoFamilies) }
        let families = try await withThrowingTaskGroup(of: (Int, [Item]).self) { group in
            for (number, job) in jobs.enumerated() {
                group.addTask {
                    switch job {
                    case .imageFamily(let index, let copies):
                        (
                            number,
                            try await imageFamily(index, copies: copies, folder: folder, ffmpeg: ffmpeg, seed: seed)
                        )
                    case .videoFamily(let index, let copies):
                        (
                            number,
                            try await videoFamily(index, copies: copies, folder: folder, ffmpeg: ffmpeg, seed: seed)
                        )
                    }
                }
            }
            var families = [[Item]](repeating: [], count: jobs.count)
            for try await (number, items) in group { families[number] = items }
            return families
        }
        return families.flatMap { $0 }
    }

    static func imageFamily(_ index: Int, copies: Bool, folder: String, ffmpeg: String, seed: UInt64) async throws
        -> [Item]
    {
        let family = 1_000 + index
        let base = "\(folder)/media/base-i\(index).ppm"
        try Data(picture(seed: seed &* 7_919 &+ UInt64(family))).write(to: URL(fileURLWithPath: base))
        defer { try? FileManager.default.removeItem(atPath: base) }
        var items = [
            Item(
                path: "media/i\(index)-original.png", type: .image, width: 320, height: 240, duration: nil,
                family: family, variant: "original")
        ]
        try await run(ffmpeg, ["-i", base, "\(folder)/\(items[0].path)"])
        guard copies else { return items }
        let variants: [(name: String, file: String, arguments: [String], width: Int, height: Int)] = [
            ("resized", "i\(index)-resized.jpg", ["-vf", "scale=160:120", "-q:v", "3"], 160, 120),
            ("re-encoded", "i\(index)-reencoded.jpg", ["-q:v", "24"], 320, 240),
            ("cropped", "i\(index)-cropped.png", ["-vf", "crop=310:232:6:5"], 310, 232),
        ]
        for variant in variants {
            try await run(ffmpeg, ["-i", base] + variant.arguments + ["\(folder)/media/\(variant.file)"])
            items.append(
                Item(
                    path: "media/\(variant.file)", type: .image, width: variant.width, height: variant.height,
                    duration: nil, family: family, variant: variant.name))
        }
        return items
    }

    static func videoFamily(_ index: Int, copies: Bool, folder: String, ffmpeg: String, seed: UInt64) async throws
        -> [Item]
    {
        let family = 2_000 + index
        let base = "\(folder)/media/base-v\(index).ppm"
        try Data(picture(seed: seed &* 104_729 &+ UInt64(family))).write(to: URL(fileURLWithPath: base))
        defer { try? FileManager.default.removeItem(atPath: base) }
        let original = "\(folder)/media/v\(index)-original.mp4"
        // A 3-second pan over the picture, so the sampled frames differ in time.
        try await run(
            ffmpeg,
            [
                "-loop", "1", "-framerate", "10", "-i", base, "-t", "3",
                "-vf", "crop=200:150:'t*30':'t*25',format=yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-crf",
                "23", original,
            ])
        var items = [
            Item(
                path: "media/v\(index)-original.mp4", type: .video, width: 200, height: 150, duration: 3,
                family: family, variant: "original")
        ]
        guard copies else { return items }
        let variants: [(name: String, file: String, arguments: [String], width: Int, height: Int)] = [
            (
                "resized", "v\(index)-resized.mp4",
                ["-vf", "scale=100:76", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "28"], 100, 76
            ),
            ("re-encoded", "v\(index)-reencoded.mp4", ["-c:v", "mpeg4", "-q:v", "12"], 200, 150),
            (
                "cropped", "v\(index)-cropped.mp4",
                ["-vf", "crop=194:146:4:3", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23"], 194, 146
            ),
        ]
        for variant in variants {
            try await run(ffmpeg, ["-i", original] + variant.arguments + ["\(folder)/media/\(variant.file)"])
            items.append(
                Item(
                    path: "media/\(variant.file)", type: .video, width: variant.width, height: variant.height,
                    duration: 3, family: family, variant: variant.name))
        }
        return items
    }

    /// A manifest of the items with distinct captions (so only media can link them).
    static func writeManifest(_ items: [Item], extraRows: [String] = [], to path: String) throws {
        var writer = CSVWriter()
        writer.writeRow(["id", "path", "media_type", "width", "height", "duration", "category", "caption"])
        let words = ["바다", "산", "도시", "시장", "축제", "사람들", "거리", "하늘", "강", "다리", "건물", "나무", "공연", "전통", "기록", "풍경"]
        for (index, item) in items.enumerated() {
            var caption = "자료 \(index)번:"
            for k in 0..<24 {
                caption += " " + words[(index * 7 + k * k + k * index) % words.count] + String(k % 3 == 0 ? "의" : "")
            }
            writer.writeRow([
                "item-\(index)", item.path, item.type.rawValue, String(item.width), String(item.height),
                item.duration.map { String($0) } ?? "", index % 2 == 0 ? "자연/풍경" : "축제", caption + ".",
            ])
        }
        var bytes = writer.bytes
        for row in extraRows { bytes += Array((row + "\n").utf8) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Options that keep small test media in (no quality or range drops) and group rather than drop.
    static func keepEverything(_ options: inout CurationOptions) {
        options.minQuality = 0
        options.minShortSide = 0
        options.durationMin = 0
        options.captionDuplicates = false
        options.duplicatePolicy = .group
        options.workers = 2
    }
}
