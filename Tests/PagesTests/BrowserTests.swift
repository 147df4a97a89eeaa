import Foundation
import Support
import Testing

/// The pages in headless Chromium, as a user on a stock machine sees them. With WANLORA_SCREENSHOTS=FOLDER
/// the screenshots are kept there (docs/screenshots/ holds the committed ones).
@Suite(.serialized, .enabled(if: Chromium.available, Chromium.skipReason))
struct BrowserTests {
    static let korean = "한국어 자막 생활/문화 무형문화유산"

    /// A line of text as the pages set it, 40 pixels high.
    func textPage(_ text: String, in folder: URL, name: String) throws -> URL {
        let url = folder.appendingPathComponent(name + ".html")
        let html =
            "<!DOCTYPE html><html lang=\"ko\"><head><meta charset=\"utf-8\"></head><body style=\"margin:0;"
            + "background:#fff\"><p style=\"margin:8px;font-size:40px;font-family:\(HTMLText.fontFamily)\">"
            + "\(HTMLText.escape(text))</p></body></html>"
        try Data(html.utf8).write(to: url)
        return url
    }

    @Test func koreanIsDrawnWithAFontNotAsBoxes() throws {
        let folder = try PageFixtures.writeAll().folder
        let noKorean = try Chromium.configWithoutKoreanFonts(in: folder)
        // The reference for tofu: as many unassigned code points (U+0378, no font has a glyph) as Hangul.
        let tofu =
            String(repeating: "\u{378}", count: 3) + " " + String(repeating: "\u{378}", count: 2) + " "
            + String(repeating: "\u{378}", count: 2) + "/" + String(repeating: "\u{378}", count: 2) + " "
            + String(repeating: "\u{378}", count: 6)
        func render(_ text: String, _ name: String, fonts: URL?) throws -> Data {
            let png = folder.appendingPathComponent(name + ".png")
            try Chromium.screenshot(
                try textPage(text, in: folder, name: name), width: 800, height: 80, to: png, fontConfig: fonts)
            return try Data(contentsOf: png)
        }
        let withFont = try render(Self.korean, "korean", fonts: nil)
        let withoutFont = try render(Self.korean, "korean-no-font", fonts: noKorean)
        let tofuWithFont = try render(tofu, "tofu", fonts: nil)
        let tofuWithoutFont = try render(tofu, "tofu-no-font", fonts: noKorean)
        #expect(withFont != withoutFont, "the Korean font changes nothing: is it used?")
        #expect(withFont != tofuWithFont, "Korean is drawn as boxes although fontconfig has a Korean font")
        // And without the font it is tofu indeed: the same picture as the unassigned code points.
        #expect(withoutFont == tofuWithoutFont)
    }

    @Test(arguments: [390, 1280])
    func noChartIsCutOffAndChartTextStaysReadable(width: Int) throws {
        let (folder, pages) = try PageFixtures.writeAll()
        for (name, page) in pages.sorted(by: { $0.key < $1.key }) {
            let layout = try Chromium.layout(page, width: width, in: folder)
            #expect(layout.viewport == Double(width), "\(name)")
            #expect(layout.scrollWidth <= layout.viewport, "\(name) at \(width) px scrolls sideways: \(layout)")
            #expect(layout.cutCharts.isEmpty, "\(name) at \(width) px: charts past the edge \(layout.cutCharts)")
            if layout.charts > 0 {
                #expect(layout.smallestChartText >= 10, "\(name) at \(width) px: chart text \(layout)")
            }
        }
    }

    /// Screenshots of the four pages at 1280 and 390 pixels, with and without the Korean fonts (a minute of
    /// Chromium, so only when asked: `WANLORA_SCREENSHOTS=docs/screenshots swift test --filter BrowserTests`).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["WANLORA_SCREENSHOTS"] != nil, "WANLORA_SCREENSHOTS unset"))
    func screenshots() throws {
        let (folder, pages) = try PageFixtures.writeAll()
        let keep = ProcessInfo.processInfo.environment["WANLORA_SCREENSHOTS"].map { URL(fileURLWithPath: $0) }
        if let keep { try FileManager.default.createDirectory(at: keep, withIntermediateDirectories: true) }
        let noKorean = try Chromium.configWithoutKoreanFonts(in: folder)
        for (name, page) in pages {
            for (width, height) in [(1280, 1100), (390, 1300)] {
                for fonts in [nil, noKorean] {
                    let file = "\(name)-\(width)\(fonts == nil ? "" : "-no-cjk-font").png"
                    let png = (keep ?? folder).appendingPathComponent(file)
                    try Chromium.screenshot(page, width: width, height: height, to: png, fontConfig: fonts)
                    #expect(try Data(contentsOf: png).count > 1000, "\(file)")
                }
            }
        }
    }
}
