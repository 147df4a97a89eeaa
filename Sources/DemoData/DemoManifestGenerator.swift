import Foundation
import Manifest
import Support

/// Writes a manifest shaped like the MBC archive (SPEC §2): the seed's shares of media types,
/// resolutions, categories and duration buckets, and realistic Korean-looking captions.
public struct DemoManifestGenerator: Sendable {
    public var rows: Int
    public var seed: UInt64
    /// Rows appended that break one validation rule each (to show the rejects file at work).
    public var brokenRows: Int

    public static let header = ["id", "path", "media_type", "width", "height", "duration", "category", "caption"]

    public init(rows: Int, seed: UInt64 = 42, brokenRows: Int = 0) {
        self.rows = rows
        self.seed = seed
        self.brokenRows = brokenRows
    }

    /// One generated row, before CSV encoding.
    public struct Row: Sendable {
        public var id: String
        public var path: String
        public var mediaType: MediaType
        public var width: Int
        public var height: Int
        public var duration: Double?
        public var category: String
        public var caption: String

        var fields: [String] {
            [
                id, path, mediaType.rawValue, String(width), String(height),
                duration.map { String(format: "%.2f", $0) } ?? "", category, caption,
            ]
        }
    }

    /// Generates the rows (deterministic for a seed).
    public func generate(progress: ProgressReporter = .silent) -> [Row] {
        var random = SeededRandom(seed: seed)
        let captions = CaptionGenerator()
        let resolutionWeights = ArchiveShape.resolutions.map(\.weight)
        let categoryWeights = ArchiveShape.categories.map(\.weight)
        let bucketWeights = ArchiveShape.durationBuckets.map(\.weight)
        var out: [Row] = []
        out.reserveCapacity(rows)
        // Exactly the seed's image share (rounded), shuffled into place.
        let imageCount = Int((Double(rows) * ArchiveShape.imageShare).rounded())
        var types =
            Array(repeating: MediaType.image, count: imageCount)
            + Array(repeating: MediaType.video, count: rows - imageCount)
        random.shuffle(&types)

        for index in 0..<rows {
            let type = types[index]
            let size = ArchiveShape.resolutions[random.pick(weights: resolutionWeights)]
            let category = ArchiveShape.categories[random.pick(weights: categoryWeights)].name
            var duration: Double?
            if type == .video {
                let bucket = ArchiveShape.durationBuckets[random.pick(weights: bucketWeights)]
                if bucket.lower >= 60 {
                    // Long tail: exponential above 60 s with a mean of about 100 s more, capped at the seed's max.
                    duration = min(bucket.upper, 60 + -log(1 - random.unit()) * 100)
                } else {
                    duration = random.uniform(bucket.lower, bucket.upper)
                }
            }
            // Words per caption: log-normal around 100 (mean ≈ 106), rare very long captions.
            var words = Int((exp(4.59 + 0.33 * random.normal())).rounded())
            if random.unit() < 0.0004 { words = 600 + random.below(1_900) }
            if let duration { words += Int(min(duration, 120) * 0.6) - 14 }
            words = max(25, words)
            let number = String(format: "%06d", index + 1)
            let path = type == .image ? "images/\(number).jpg" : "videos/\(number).mp4"
            out.append(
                Row(
                    id: "mbc-\(number)", path: path, mediaType: type, width: size.width, height: size.height,
                    duration: duration,
                    category: category, caption: captions.caption(words: words, random: &random)))
            if index % 10_000 == 9_999 {
                progress.report(ProgressEvent(stage: "generate", completed: index + 1, total: rows, unit: "rows"))
            }
        }
        return out
    }

    /// The rows as CSV bytes (header first; broken rows, if asked for, at the end).
    public func csv(_ rows: [Row]) -> [UInt8] {
        var writer = CSVWriter()
        writer.writeRow(Self.header)
        for row in rows { writer.writeRow(row.fields) }
        var bytes = writer.bytes
        if brokenRows > 0 {
            bytes += Self.brokenRowBytes(count: brokenRows, duplicateOf: rows.first?.path ?? "images/000001.jpg")
        }
        return bytes
    }

    /// Rows that each break one rule: rejected with a reason, never silently dropped.
    static func brokenRowBytes(count: Int, duplicateOf existingPath: String) -> [UInt8] {
        let samples: [[UInt8]] = [
            Array("broken-1,videos/broken1.mp4,video,1920,1080,,생활/문화,길이가 없는 비디오 행입니다.\n".utf8),
            Array("broken-2,images/broken2.jpg,image,19x0,1080,,축제,너비가 숫자가 아닌 행입니다.\n".utf8),
            Array("broken-3,audio/broken3.wav,audio,1920,1080,12.0,축제,알 수 없는 미디어 종류입니다.\n".utf8),
            Array("broken-4,images/broken4.jpg,image,1280,720,,자연/풍경,\"   \"\n".utf8),
            Array("broken-5,videos/broken5.mp4,video,1280,720,-3.5,사건/사고,길이가 음수인 비디오입니다.\n".utf8),
            Array("broken-6,images/broken6.jpg,image,1280,720,공간/건축\n".utf8),
            Array("broken-7,\(existingPath),image,1280,720,,공간/건축,이미 나온 경로를 다시 쓰는 행입니다.\n".utf8),
            Array("broken-8,videos/broken8.mp4,video,1920,1080,NaN,역사/사회,길이가 NaN인 비디오입니다.\n".utf8),
            Array("broken-9,images/broken9.jpg,image,1920,1080,,생활/문화,잘못된 바이트 ".utf8) + [0xC3, 0x28]
                + Array(" 가 들어 있는 캡션\n".utf8),
        ]
        var out: [UInt8] = []
        for index in 0..<count {
            var row = samples[index % samples.count]
            if index >= samples.count {
                // Keep paths unique across repetitions so each row fails for its own reason.
                row = Array(
                    String(decoding: row, as: UTF8.self).replacingOccurrences(of: "broken", with: "broken\(index)-")
                        .utf8)
            }
            out += row
        }
        return out
    }

    /// Splits shaped like the report's: train (85.1%) already converted to 1280×720, val (10%) at
    /// the source resolutions — the report's mistake, reproduced so that `analyze` can flag it.
    public static func reportSplits(_ rows: [Row], seed: UInt64) -> (train: [Row], val: [Row]) {
        var random = SeededRandom(seed: seed ^ 0x5EED)
        var order = Array(rows.indices)
        random.shuffle(&order)
        let trainCount = Int((Double(rows.count) * 170_180 / 199_994).rounded())
        let valCount = Int((Double(rows.count) * 20_000 / 199_994).rounded())
        var train = order.prefix(trainCount).map { rows[$0] }
        for index in train.indices {
            train[index].width = 1280
            train[index].height = 720
        }
        let val = order.dropFirst(trainCount).prefix(valCount).map { rows[$0] }
        return (train, val)
    }
}
