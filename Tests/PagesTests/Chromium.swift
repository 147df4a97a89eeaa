import Foundation
import Support
import Testing

/// Headless Chromium, driven through its command line: screenshots, and the layout of a page measured by a
/// script at a given viewport width.
enum Chromium {
    /// `$WANLORA_CHROMIUM`, else Debian's or Google's binary; nil where none is installed.
    static let executable: String? = {
        if let path = ProcessInfo.processInfo.environment["WANLORA_CHROMIUM"] { return path }
        return ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }()

    /// Whether fontconfig knows a font with Hangul (Debian: fonts-noto-cjk).
    static let hasKoreanFont: Bool = {
        guard let output = try? run("/usr/bin/fc-list", [":lang=ko", "family"], environment: [:]) else { return false }
        return !output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }()

    static let available = executable != nil && hasKoreanFont
    static let skipReason: Comment =
        "needs headless Chromium and a Korean font: apt-get install chromium fonts-noto-cjk (`make test` does)"

    /// A fontconfig file that is the system's minus every font with Hangul that Debian or a user may have:
    /// Chromium then renders Korean as on a stock machine without fonts-noto-cjk.
    static func configWithoutKoreanFonts(in folder: URL) throws -> URL {
        let url = folder.appendingPathComponent("fonts-without-korean.conf")
        let globs = ["*CJK*", "*Nanum*", "*NotoSansKR*", "*NotoSerifKR*", "*Baekmuk*", "*UnDotum*", "*UnBatang*"]
        let text = """
            <?xml version="1.0"?>
            <!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
            <fontconfig>
              <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
              <selectfont><rejectfont>\(globs.map { "<glob>\($0)</glob>" }.joined())</rejectfont></selectfont>
            </fontconfig>

            """
        try Data(text.utf8).write(to: url)
        return url
    }

    /// A screenshot of `page` in a `width` × `height` viewport.
    static func screenshot(_ page: URL, width: Int, height: Int, to png: URL, fontConfig: URL? = nil) throws {
        _ = try browse(page, width: width, height: height, fontConfig: fontConfig, ["--screenshot=\(png.path)"])
        guard FileManager.default.fileExists(atPath: png.path) else {
            throw ChromiumError(what: "no screenshot of \(page.path) at \(png.path)")
        }
    }

    struct Layout: Decodable {
        var viewport: Double
        /// The page's own width: more than the viewport means the page scrolls sideways (something is too wide).
        var scrollWidth: Double
        var height: Double
        var charts: Int
        /// Charts whose box reaches past the viewport's edge: "left..right" in pixels.
        var cutCharts: [String]
        /// The smallest chart text as shown, in pixels (the font size times the chart's scale).
        var smallestChartText: Double
    }

    /// The page's layout in a viewport `width` pixels wide. The page is shown in an iframe of that width
    /// (a headless window is at least 500 pixels wide), and a script in it writes its measurements into the
    /// host page, whose DOM Chromium prints.
    static func layout(_ page: URL, width: Int, in folder: URL) throws -> Layout {
        let measure = """
            <script>(() => {
              const vw = document.documentElement.clientWidth;
              let smallest = 1e9, cut = [], charts = 0;
              for (const svg of document.querySelectorAll('svg')) {
                charts++;
                const box = svg.getBoundingClientRect();
                if (box.right > vw + 0.5 || box.left < -0.5)
                  cut.push(Math.round(box.left) + '..' + Math.round(box.right));
                const scale = box.width / svg.viewBox.baseVal.width;
                for (const text of svg.querySelectorAll('text'))
                  smallest = Math.min(smallest, parseFloat(getComputedStyle(text).fontSize) * scale);
              }
              const out = parent.document.createElement('pre');
              out.id = 'layout';
              out.textContent = JSON.stringify({viewport: vw, scrollWidth: document.documentElement.scrollWidth,
                height: document.documentElement.scrollHeight, charts, cutCharts: cut, smallestChartText: smallest});
              parent.document.body.appendChild(out);
            })();</script>
            """
        let html = try String(contentsOf: page, encoding: .utf8).replacingOccurrences(
            of: "</body>", with: measure + "</body>")
        // The host sits beside the page, so the page's relative links (posters) resolve as they would.
        let host = page.deletingLastPathComponent().appendingPathComponent(".layout-\(width)-\(UUID().uuidString).html")
        try Data(
            ("<!DOCTYPE html><html><body style=\"margin:0\"><iframe style=\"border:0;width:\(width)px;height:900px\" "
                + "srcdoc=\"\(HTMLText.escape(html))\"></iframe></body></html>").utf8
        ).write(to: host)
        defer { try? FileManager.default.removeItem(at: host) }
        let dom = try browse(host, width: max(width, 500) + 20, height: 900, fontConfig: nil, ["--dump-dom"])
        guard let start = dom.range(of: "<pre id=\"layout\">"),
            let end = dom.range(of: "</pre>", range: start.upperBound..<dom.endIndex)
        else { throw ChromiumError(what: "the layout script of \(page.path) wrote nothing") }
        let json = String(dom[start.upperBound..<end.lowerBound]).replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&amp;", with: "&")
        return try JSONDecoder().decode(Layout.self, from: Data(json.utf8))
    }

    static func browse(_ page: URL, width: Int, height: Int, fontConfig: URL?, _ extra: [String]) throws -> String {
        guard let executable else { throw ChromiumError(what: "no chromium") }
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "wanlora-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        var environment = ProcessInfo.processInfo.environment
        if let fontConfig { environment["FONTCONFIG_FILE"] = fontConfig.path }
        return try run(
            executable,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                "--force-device-scale-factor=1", "--user-data-dir=\(profile.path)", "--window-size=\(width),\(height)",
            ] + extra + [page.absoluteString], environment: environment)
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = environment }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ChromiumError(
                what: "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

struct ChromiumError: Error, CustomStringConvertible {
    var what: String
    var description: String { what }
}
