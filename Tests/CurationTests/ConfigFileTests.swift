import Manifest
import Testing

@testable import Curation

@Suite struct ConfigFileTests {
    @Test func readsTheCurateTableAndSkipsTheOthers() throws {
        let text = """
            preset = "h100"   # a top-level key of another part of wanlora.toml

            [lora]
            targets = ["to_q", "to_k"]

            [curate]
            seed = 7
            val_fraction = 0.2        # 20% val
            sample = "max"
            duplicates = "group"
            weighting = 'inverse'
            beta = 0.99
            caption_truncate = 1_000
            stratify_category = true
            target = "832x480"
            media_root = "/archive/미디어 \\"root\\""

            [training]
            frames = 49
            """
        var options = CurationOptions()
        for entry in try CurationConfigFile.parse(text, source: "w.toml") {
            try CurationConfigFile.apply(entry, to: &options, source: "w.toml")
        }
        #expect(options.seed == 7)
        #expect(options.valFraction == 0.2)
        #expect(options.sampleSize == Int.max)
        #expect(options.duplicatePolicy == .group)
        #expect(options.weighting == .inverse)
        #expect(options.beta == 0.99)
        #expect(options.captionTruncate == 1_000)
        #expect(options.stratifySampleByCategory)
        #expect(options.target.width == 832 && options.target.height == 480)
        #expect(options.mediaRoot == "/archive/미디어 \"root\"")
    }

    @Test func errorsNameTheLineAndWhatIsAllowed() throws {
        #expect(
            throws: CurationError.configUnknownKey(
                path: "c.toml", line: 2, key: "sed", known: CurationConfigFile.keys.map(\.name))
        ) {
            try CurationConfigFile.parse("[curate]\nsed = 1\n", source: "c.toml")
        }
        #expect(
            throws: CurationError.configSyntax(
                path: "c.toml", line: 3, text: "seed = [1, 2]",
                why: "the value is not a number, true/false or a one-line string")
        ) {
            try CurationConfigFile.parse("[curate]\n\nseed = [1, 2]\n", source: "c.toml")
        }
        var options = CurationOptions()
        let entries = try CurationConfigFile.parse("[curate]\nval_fraction = \"ten percent\"\n", source: "c.toml")
        #expect(
            throws: CurationError.configWrongType(
                path: "c.toml", line: 2, key: "val_fraction", expected: "a number in [0, 1)")
        ) {
            try CurationConfigFile.apply(entries[0], to: &options, source: "c.toml")
        }
        #expect(throws: CurationError.self) {
            try CurationConfigFile.parse("[curate]\nseed = 1\nseed = 2\n", source: "c.toml")
        }
    }

    @Test func invalidValuesAreCaughtByValidation() {
        var options = CurationOptions()
        options.clipFrames = 80
        #expect(
            throws: CurationError.invalidOption(
                name: "clip_frames", value: "80", allowed: "a frame count of the form 4n + 1, e.g. 81 or 49")
        ) {
            try options.validate()
        }
    }
}

@Suite struct QualityScoreTests {
    @Test func partsByHand() {
        let options = CurationOptions()
        // 720×512 image, 300-character caption, TTR 0.9, no media: the centre crop to 16:9 is
        // 720×405 (resolution 405/720 = 0.5625); the crop keeps (720/512)/(16/9) = 0.791 of the frame.
        let image = ManifestItemStub.item(.image, 720, 512, nil)
        let score = QualityScore(item: image, captionLength: 300, typeTokenRatio: 0.9, measures: nil, options: options)
        #expect(score.resolution == 0.5625)
        #expect(abs(score.aspect - (720.0 / 512.0) / (16.0 / 9.0)) < 1e-12)
        #expect(score.duration == nil && score.captionLength == 1 && score.captionVariety == 1)
        // Weighted mean over the parts that apply: (0.3·0.5625 + 0.15·0.7910 + 0.15 + 0.10) / 0.70.
        let expected = (0.3 * 0.5625 + 0.15 * score.aspect + 0.15 + 0.10) / 0.70
        #expect(abs(score.value - expected) < 1e-12)
        // The template-caption part applies only with `templateCaptions` on: 0 for a template caption, weight 0.10.
        let ignored = QualityScore(
            item: image, captionLength: 300, typeTokenRatio: 0.9, measures: nil,
            options: options, isTemplateCaption: true)
        #expect(ignored.templateCaption == nil && ignored.value == score.value)
        var templated = options
        templated.templateCaptions = true
        let template = QualityScore(
            item: image, captionLength: 300, typeTokenRatio: 0.9, measures: nil,
            options: templated, isTemplateCaption: true)
        let plain = QualityScore(
            item: image, captionLength: 300, typeTokenRatio: 0.9, measures: nil,
            options: templated, isTemplateCaption: false)
        #expect(template.templateCaption == 0 && plain.templateCaption == 1)
        #expect(abs(template.value - (0.3 * 0.5625 + 0.15 * score.aspect + 0.15 + 0.10) / 0.80) < 1e-12)
        #expect(abs(plain.value - (0.3 * 0.5625 + 0.15 * score.aspect + 0.15 + 0.10 + 0.10) / 0.80) < 1e-12)
        #expect(template.weakest.name == "template caption")

        // A 2.53-second 1080p video (half of one 81-frame clip at 16 fps), a 50-character caption
        // with TTR 0.3, dark (luma 16), flat (σ 8) and soft (Laplacian variance 25).
        let video = ManifestItemStub.item(.video, 1920, 1080, 81.0 / 32.0)
        let poor = QualityScore(
            item: video, captionLength: 50, typeTokenRatio: 0.3,
            measures: FrameMeasures(brightness: 16, contrast: 8, sharpness: 25), options: options)
        #expect(
            poor.parts.map { $0.map { fixed($0, 4) } } == [
                "1.0000", "1.0000", "0.5000", "0.5000", "0.5000", "0.5000", "0.2500", "0.2500", nil,
            ])
        #expect(
            abs(
                poor.value - (0.3 + 0.15 + 0.15 * 0.5 + 0.15 * 0.5 + 0.1 * 0.5 + 0.05 * 0.5 + 0.05 * 0.25 + 0.05 * 0.25)
            ) < 1e-12)
        #expect(poor.weakest.name == "contrast")
    }
}

enum ManifestItemStub {
    static func item(_ type: MediaType, _ width: Int, _ height: Int, _ duration: Double?) -> ManifestItem {
        ManifestItem(
            line: 2, path: "x", mediaType: type, resolution: Resolution(width: width, height: height),
            duration: duration,
            category: "축제", caption: "캡션")
    }
}
