import Foundation
import Support

/// Small, dependency-free SVG charts that scale to the page width (viewBox + width 100%).
enum SVGChart {
    static let palette = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2"]

    struct Series {
        var name: String
        /// One value per label (shares 0…1 or counts).
        var values: [Double]
    }

    /// Horizontal grouped bars: one group per label, one bar per series. Values are shares.
    static func groupedBars(labels: [String], series: [Series], percent: Bool = true) -> String {
        let barHeight = 12.0
        let gap = 3.0
        let groupGap = 10.0
        let labelWidth = 150.0
        let chartWidth = 440.0
        let valueWidth = 70.0
        let groupHeight = Double(series.count) * (barHeight + gap) + groupGap
        let height = Double(labels.count) * groupHeight + 30
        let maximum = max(series.flatMap(\.values).max() ?? 1, 1e-12)
        var svg = header(width: labelWidth + chartWidth + valueWidth, height: height)
        for (labelIndex, label) in labels.enumerated() {
            let top = Double(labelIndex) * groupHeight
            svg += text(x: labelWidth - 6, y: top + groupHeight / 2 - groupGap / 2 + 4, label, anchor: "end")
            for (seriesIndex, entry) in series.enumerated() {
                let value = labelIndex < entry.values.count ? entry.values[labelIndex] : 0
                let y = top + Double(seriesIndex) * (barHeight + gap)
                let width = max(0.5, chartWidth * value / maximum)
                svg +=
                    "<rect x=\"\(fmt(labelWidth))\" y=\"\(fmt(y))\" width=\"\(fmt(width))\" "
                    + "height=\"\(fmt(barHeight))\" "
                    + "fill=\"\(palette[seriesIndex % palette.count])\"><title>\(HTMLText.escape(entry.name)) "
                    + "· \(HTMLText.escape(label)): "
                    + "\(percent ? NumberFormat.percent(value) : NumberFormat.decimal(value, 0))</title></rect>"
                svg += text(
                    x: labelWidth + width + 4, y: y + barHeight - 2,
                    percent ? NumberFormat.percent(value, 1) : NumberFormat.grouped(Int(value)), size: 10)
            }
        }
        svg += legend(series.map(\.name), y: height - 12, x: labelWidth)
        return svg + "</svg>"
    }

    /// A histogram per series, drawn as overlaid step lines of shares per bin.
    static func histogram(binLabels: [String], series: [Series], xTitle: String) -> String {
        let width = 660.0
        let height = 240.0
        let left = 50.0
        let bottom = 40.0
        let top = 10.0
        let right = 10.0
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        let maximum = max(series.flatMap(\.values).max() ?? 1, 1e-12)
        let bins = max(binLabels.count, 1)
        let binWidth = plotWidth / Double(bins)
        var svg = header(width: width, height: height + 16)
        // Axes and gridlines at 0, ½ and full of the maximum.
        for fraction in [0.0, 0.5, 1.0] {
            let y = top + plotHeight * (1 - fraction)
            svg +=
                "<line x1=\"\(fmt(left))\" y1=\"\(fmt(y))\" "
                + "x2=\"\(fmt(width - right))\" y2=\"\(fmt(y))\" stroke=\"#ddd\"/>"
            svg += text(x: left - 4, y: y + 4, NumberFormat.percent(maximum * fraction, 1), anchor: "end", size: 10)
        }
        let step = max(1, bins / 8)
        for index in stride(from: 0, to: bins, by: step) {
            svg += text(
                x: left + binWidth * Double(index), y: top + plotHeight + 14, binLabels[index], anchor: "start",
                size: 10)
        }
        svg += text(x: left + plotWidth / 2, y: height - 6, xTitle, anchor: "middle", size: 11)
        for (seriesIndex, entry) in series.enumerated() {
            var points: [String] = []
            for (index, value) in entry.values.enumerated() {
                let y = top + plotHeight * (1 - value / maximum)
                points.append("\(fmt(left + binWidth * Double(index))),\(fmt(y))")
                points.append("\(fmt(left + binWidth * Double(index + 1))),\(fmt(y))")
            }
            svg +=
                "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"\(palette[seriesIndex % palette.count])\" "
                + "points=\"\(points.joined(separator: " "))\"/>"
        }
        svg += legend(series.map(\.name), y: height + 10, x: left)
        return svg + "</svg>"
    }

    static func header(width: Double, height: Double) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(fmt(width)) \(fmt(height))\" "
            + "width=\"100%\" role=\"img\" font-family=\"system-ui, sans-serif\" font-size=\"11\">"
    }

    static func legend(_ names: [String], y: Double, x: Double) -> String {
        var svg = ""
        var offset = x
        for (index, name) in names.enumerated() {
            svg +=
                "<rect x=\"\(fmt(offset))\" y=\"\(fmt(y - 9))\" width=\"10\" "
                + "height=\"10\" fill=\"\(palette[index % palette.count])\"/>"
            svg += text(x: offset + 14, y: y, name)
            offset += 24 + Double(name.count) * 7
        }
        return svg
    }

    static func text(x: Double, y: Double, _ content: String, anchor: String = "start", size: Int = 11) -> String {
        "<text x=\"\(fmt(x))\" y=\"\(fmt(y))\" text-anchor=\"\(anchor)\" "
            + "font-size=\"\(size)\">\(HTMLText.escape(content))</text>"
    }

    static func fmt(_ value: Double) -> String {
        String(format: "%.1f", value)
    }

}
