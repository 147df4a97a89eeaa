import Foundation

/// Small, dependency-free SVG charts for the pages (report, evaluation, run page).
///
/// Every chart is drawn in a 420-unit wide viewBox and shown at the column's width (`width="100%"`) up to
/// 1.25 × that: on a 390-pixel phone the column is about 360 pixels, so the 13-unit labels stay at about
/// 11 pixels and the 12-unit numbers at 10, and no chart is wider than the page; on a desktop the labels are
/// 16 pixels. Text uses `HTMLText.fontFamily`, so Korean labels render where a Korean font is installed.
public enum SVGChart {
    public static let palette = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2"]
    /// The viewBox width of every chart.
    static let width = 420.0
    static let labelSize = 13.0
    static let numberSize = 12.0

    public struct Series: Sendable {
        public var name: String
        /// One value per label (shares 0…1 or counts); nil: no bar (a metric not computed).
        public var values: [Double?]
        public init(name: String, values: [Double?]) {
            self.name = name
            self.values = values
        }
    }

    /// Horizontal grouped bars: one group per label, one bar per series (none for a nil or non-finite value);
    /// `value` writes a bar's number.
    public static func groupedBars(labels: [String], series: [Series], value: (Double) -> String) -> String {
        let barHeight = 13.0
        let gap = 3.0
        let groupGap = 10.0
        let labelWidth = 112.0
        let valueWidth = 62.0
        let chartWidth = width - labelWidth - valueWidth
        let groupHeight = Double(series.count) * (barHeight + gap) + groupGap
        let legendRows = legendLayout(series.map(\.name), x: labelWidth).rows
        let height = Double(labels.count) * groupHeight + 8 + 18 * Double(legendRows)
        let maximum = max(series.flatMap(\.values).compactMap { $0 }.filter(\.isFinite).map(abs).max() ?? 1, 1e-12)
        var svg = header(height: height)
        for (labelIndex, label) in labels.enumerated() {
            let top = Double(labelIndex) * groupHeight
            svg += text(
                x: labelWidth - 6, y: top + (groupHeight - groupGap) / 2 + 4.5,
                fitted(label, width: labelWidth - 8, size: labelSize), anchor: "end", title: label)
            for (seriesIndex, entry) in series.enumerated() {
                guard labelIndex < entry.values.count, let number = entry.values[labelIndex], number.isFinite
                else { continue }
                let y = top + Double(seriesIndex) * (barHeight + gap)
                let barWidth = max(0.5, chartWidth * abs(number) / maximum)
                svg +=
                    "<rect x=\"\(fmt(labelWidth))\" y=\"\(fmt(y))\" width=\"\(fmt(barWidth))\" "
                    + "height=\"\(fmt(barHeight))\" fill=\"\(palette[seriesIndex % palette.count])\"><title>"
                    + "\(HTMLText.escape(entry.name)) · \(HTMLText.escape(label)): \(value(number))</title></rect>"
                svg += text(x: labelWidth + barWidth + 3, y: y + barHeight - 2.5, value(number), size: numberSize)
            }
        }
        svg += legend(series.map(\.name), top: Double(labels.count) * groupHeight + 8, x: labelWidth)
        return svg + "</svg>"
    }

    /// A histogram per series, drawn as overlaid step lines of shares per bin.
    public static func histogram(binLabels: [String], series: [Series], xTitle: String) -> String {
        let bins = max(binLabels.count, 1)
        let maximum = max(series.flatMap(\.values).compactMap { $0 }.max() ?? 1, 1e-12)
        let frame = Frame(left: 50, legendNames: series.map(\.name))
        var svg = header(height: frame.height)
        svg += frame.axes(
            yLabels: [0.0, 0.5, 1.0].map { ($0, NumberFormat.percent(maximum * $0, 1)) }, xTitle: xTitle)
        let binWidth = frame.plotWidth / Double(bins)
        // One label per ~52 units: 8 over the plot's width.
        let step = max(1, Int((Double(bins) * 52 / frame.plotWidth).rounded(.up)))
        for index in stride(from: 0, to: bins, by: step) where index < binLabels.count {
            svg += text(
                x: frame.left + binWidth * Double(index), y: frame.plotBottom + 15, binLabels[index], size: numberSize)
        }
        for (seriesIndex, entry) in series.enumerated() {
            var points: [String] = []
            for (index, value) in entry.values.enumerated() {
                let y = frame.y((value ?? 0) / maximum)
                points.append("\(fmt(frame.left + binWidth * Double(index))),\(fmt(y))")
                points.append("\(fmt(frame.left + binWidth * Double(index + 1))),\(fmt(y))")
            }
            svg += polyline(points, colour: palette[seriesIndex % palette.count])
        }
        return svg + frame.legendSVG + "</svg>"
    }

    /// One line per series over a numeric x axis (a run's steps): `yText` writes the y axis' numbers.
    /// A series without points is left out; nil when no series has one.
    public static func lines(
        _ series: [(name: String, points: [(x: Double, y: Double)])], xTitle: String, yText: (Double) -> String
    ) -> String? {
        let drawn = series.enumerated().filter { !$0.element.points.isEmpty }
        let all = drawn.flatMap(\.element.points)
        guard let xMin = all.map(\.x).min(), let xMax = all.map(\.x).max(), let yMin = all.map(\.y).min(),
            let yMax = all.map(\.y).max()
        else { return nil }
        let xSpan = xMax > xMin ? xMax - xMin : 1
        // A flat series is drawn in the middle of a ±5% (or ±1) band around its value.
        let (low, high) =
            yMax > yMin ? (yMin, yMax) : (yMin - max(abs(yMin) * 0.05, 1), yMax + max(abs(yMax) * 0.05, 1))
        let frame = Frame(left: 72, legendNames: drawn.map(\.element.name))
        var svg = header(height: frame.height)
        svg += frame.axes(
            yLabels: [0.0, 0.5, 1.0].map { ($0, yText(low + (high - low) * $0)) }, xTitle: xTitle)
        for (fraction, anchor) in xMax > xMin ? [(0.0, "start"), (1.0, "end")] : [(0.0, "start")] {
            svg += text(
                x: frame.left + frame.plotWidth * fraction, y: frame.plotBottom + 15,
                NumberFormat.grouped(Int((xMin + xSpan * fraction).rounded())), anchor: anchor, size: numberSize)
        }
        for (index, entry) in drawn {
            let points = entry.points.map { point in
                let x = frame.left + frame.plotWidth * (point.x - xMin) / xSpan
                return "\(fmt(x)),\(fmt(frame.y((point.y - low) / (high - low))))"
            }
            let colour = palette[index % palette.count]
            svg +=
                points.count == 1
                ? "<circle cx=\"\(points[0].split(separator: ",")[0])\" cy=\"\(points[0].split(separator: ",")[1])\" "
                    + "r=\"3\" fill=\"\(colour)\"/>"
                : polyline(points, colour: colour)
        }
        return svg + frame.legendSVG + "</svg>"
    }

    /// The plot area of the histogram and line charts: 420 × 150 units inside axes, the x title and a legend.
    struct Frame {
        let left: Double
        let top = 8.0
        let right = 12.0
        let plotHeight = 150.0
        let legendNames: [String]
        var plotWidth: Double { SVGChart.width - left - right }
        var plotBottom: Double { top + plotHeight }
        var legendTop: Double { plotBottom + 42 }
        var height: Double { legendTop + 18 * Double(SVGChart.legendLayout(legendNames, x: left).rows) }
        func y(_ fraction: Double) -> Double { top + plotHeight * (1 - fraction) }

        /// Gridlines at the given fractions of the height with their labels, and the x axis' title.
        func axes(yLabels: [(Double, String)], xTitle: String) -> String {
            var svg = ""
            for (fraction, label) in yLabels {
                svg +=
                    "<line x1=\"\(fmt(left))\" y1=\"\(fmt(y(fraction)))\" x2=\"\(fmt(left + plotWidth))\" "
                    + "y2=\"\(fmt(y(fraction)))\" stroke=\"#ddd\"/>"
                svg += SVGChart.text(x: left - 4, y: y(fraction) + 4, label, anchor: "end", size: numberSize)
            }
            return svg + SVGChart.text(x: left + plotWidth / 2, y: plotBottom + 32, xTitle, anchor: "middle")
        }

        var legendSVG: String { SVGChart.legend(legendNames, top: legendTop, x: left) }
    }

    static func header(height: Double) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(fmt(width)) \(fmt(height))\" width=\"100%\" "
            + "style=\"max-width:\(fmt(width * 1.25))px;height:auto;display:block\" role=\"img\" "
            + "font-family=\"\(HTMLText.fontFamily)\" font-size=\"\(fmt(labelSize))\">"
    }

    static func polyline(_ points: [String], colour: String) -> String {
        "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"\(colour)\" points=\"\(points.joined(separator: " "))\"/>"
    }

    /// Where each legend entry goes: a new row when the next name would pass the right edge.
    static func legendLayout(_ names: [String], x: Double) -> (positions: [(x: Double, row: Int)], rows: Int) {
        var positions: [(x: Double, row: Int)] = []
        var offset = x
        var row = 0
        for name in names {
            let needed = 20 + textWidth(name, size: labelSize)
            if offset > x && offset + needed > width {
                row += 1
                offset = x
            }
            positions.append((offset, row))
            offset += needed
        }
        return (positions, names.isEmpty ? 0 : row + 1)
    }

    static func legend(_ names: [String], top: Double, x: Double) -> String {
        var svg = ""
        for (index, position) in legendLayout(names, x: x).positions.enumerated() {
            let y = top + 18 * Double(position.row) + 10
            svg +=
                "<rect x=\"\(fmt(position.x))\" y=\"\(fmt(y - 10))\" width=\"11\" "
                + "height=\"11\" fill=\"\(palette[index % palette.count])\"/>"
            svg += text(x: position.x + 15, y: y, names[index])
        }
        return svg
    }

    /// Approximate width of `text` at `size`: Hangul, CJK and full-width characters one em, others 0.6 em.
    static func textWidth(_ text: String, size: Double) -> Double {
        text.unicodeScalars.reduce(0) { total, scalar in
            let wide =
                (0x1100...0x11FF).contains(scalar.value) || (0x2E80...0xA4CF).contains(scalar.value)
                || (0xAC00...0xD7A3).contains(scalar.value) || (0xF900...0xFAFF).contains(scalar.value)
                || (0xFF00...0xFF60).contains(scalar.value)
            return total + (wide ? size : size * 0.6)
        }
    }

    /// `label`, cut with an ellipsis where it would be wider than `width` (the whole label is the title).
    static func fitted(_ label: String, width: Double, size: Double) -> String {
        guard textWidth(label, size: size) > width else { return label }
        var out = ""
        for character in label {
            if textWidth(out + String(character) + "…", size: size) > width { break }
            out.append(character)
        }
        return out + "…"
    }

    static func text(
        x: Double, y: Double, _ content: String, anchor: String = "start", size: Double = labelSize,
        title: String? = nil
    ) -> String {
        let titled = title.flatMap { $0 == content ? nil : "<title>\(HTMLText.escape($0))</title>" } ?? ""
        return "<text x=\"\(fmt(x))\" y=\"\(fmt(y))\" text-anchor=\"\(anchor)\" "
            + "font-size=\"\(fmt(size))\">\(titled)\(HTMLText.escape(content))</text>"
    }

    static func fmt(_ value: Double) -> String {
        String(format: "%.1f", value)
    }
}
