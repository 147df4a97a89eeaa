import Foundation

/// 64-bit perceptual hashes of a grey frame, and the Hamming distance between them.
///
/// Frames arrive as `GreyFrame.side`² 8-bit luma samples (ffmpeg scales every image and video
/// frame to that square, ignoring the aspect ratio, as perceptual hashing usually does).
public enum PerceptualHash {
    /// Number of differing bits.
    @inline(__always)
    public static func distance(_ a: UInt64, _ b: UInt64) -> Int { (a ^ b).nonzeroBitCount }

    public static func hash(_ frame: GreyFrame, kind: PerceptualHashKind) -> UInt64 {
        switch kind {
        case .pHash: pHash(frame)
        case .dHash: dHash(frame)
        }
    }

    /// pHash: the frame box-averaged to 32×32, a 2-D DCT-II, the 8×8 lowest frequencies without
    /// the DC row and column (u, v in 1…8), one bit per coefficient: above their median or not.
    /// Bit 63 is (u, v) = (1, 1), row-major.
    public static func pHash(_ frame: GreyFrame) -> UInt64 {
        let small = frame.boxAverage(width: 32, height: 32)
        let basis = dctBasis
        // Rows first: R[y][u] = Σx f(x, y) C[u][x], for u in 1...8 only.
        var rows = [Double](repeating: 0, count: 32 * 8)
        for y in 0..<32 {
            for u in 1...8 {
                var sum = 0.0
                for x in 0..<32 { sum += small[y * 32 + x] * basis[u * 32 + x] }
                rows[y * 8 + (u - 1)] = sum
            }
        }
        var coefficients = [Double](repeating: 0, count: 64)
        for v in 1...8 {
            for u in 1...8 {
                var sum = 0.0
                for y in 0..<32 { sum += rows[y * 8 + (u - 1)] * basis[v * 32 + y] }
                coefficients[(v - 1) * 8 + (u - 1)] = sum
            }
        }
        let sorted = coefficients.sorted()
        let median = (sorted[31] + sorted[32]) / 2
        var hash: UInt64 = 0
        for (index, value) in coefficients.enumerated() where value > median {
            hash |= 1 << UInt64(63 - index)
        }
        return hash
    }

    /// dHash: the frame box-averaged to 9×8, one bit per horizontal neighbour pair: left brighter
    /// than right. Bit 63 is the top-left pair, row-major.
    public static func dHash(_ frame: GreyFrame) -> UInt64 {
        let small = frame.boxAverage(width: 9, height: 8)
        var hash: UInt64 = 0
        var bit: UInt64 = 63
        for y in 0..<8 {
            for x in 0..<8 {
                if small[y * 9 + x] > small[y * 9 + x + 1] { hash |= 1 << bit }
                bit &-= 1
            }
        }
        return hash
    }

    /// C[u][x] = cos((2x + 1) u π / 64) for u in 0…8, x in 0…31.
    static let dctBasis: [Double] = {
        var basis = [Double](repeating: 0, count: 9 * 32)
        for u in 0...8 {
            for x in 0..<32 {
                basis[u * 32 + x] = cos(Double(2 * x + 1) * Double(u) * Double.pi / 64)
            }
        }
        return basis
    }()
}

/// An 8-bit grey (luma) frame of `side` × `side` samples.
public struct GreyFrame: Sendable, Equatable {
    /// The side ffmpeg scales every frame to: large enough for a sharpness measure, small enough
    /// to decode and pipe cheaply (64 KiB a frame).
    public static let side = 256

    public var side: Int
    public var pixels: [UInt8]

    public init(side: Int = GreyFrame.side, pixels: [UInt8]) {
        precondition(pixels.count == side * side, "a grey frame needs side² samples")
        self.side = side
        self.pixels = pixels
    }

    /// Mean of each cell of a `width` × `height` grid (cell bounds rounded down, covering every pixel).
    func boxAverage(width: Int, height: Int) -> [Double] {
        var out = [Double](repeating: 0, count: width * height)
        pixels.withUnsafeBufferPointer { p in
            for cy in 0..<height {
                let y0 = cy * side / height
                let y1 = (cy + 1) * side / height
                for cx in 0..<width {
                    let x0 = cx * side / width
                    let x1 = (cx + 1) * side / width
                    var sum = 0
                    for y in y0..<y1 {
                        for x in x0..<x1 { sum += Int(p[y * side + x]) }
                    }
                    out[cy * width + cx] = Double(sum) / Double((y1 - y0) * (x1 - x0))
                }
            }
        }
        return out
    }

    /// Brightness, contrast and sharpness of this frame.
    public var measures: FrameMeasures {
        let n = Double(side * side)
        var sum = 0.0
        var squares = 0.0
        var lapSum = 0.0
        var lapSquares = 0.0
        pixels.withUnsafeBufferPointer { p in
            for value in p {
                let v = Double(value)
                sum += v
                squares += v * v
            }
            for y in 1..<(side - 1) {
                for x in 1..<(side - 1) {
                    let i = y * side + x
                    let laplacian = Double(
                        Int(p[i - 1]) + Int(p[i + 1]) + Int(p[i - side]) + Int(p[i + side]) - 4 * Int(p[i]))
                    lapSum += laplacian
                    lapSquares += laplacian * laplacian
                }
            }
        }
        let mean = sum / n
        let interior = Double((side - 2) * (side - 2))
        let lapMean = lapSum / interior
        return FrameMeasures(
            brightness: mean,
            contrast: max(0, squares / n - mean * mean).squareRoot(),
            sharpness: max(0, lapSquares / interior - lapMean * lapMean))
    }
}

/// What a frame looks like, measured on its 256×256 grey version.
public struct FrameMeasures: Sendable, Equatable {
    /// Mean luma, 0…255.
    public var brightness: Double
    /// Standard deviation of luma, 0…127.5.
    public var contrast: Double
    /// Variance of the 4-neighbour Laplacian (a standard focus measure; blurred frames score low).
    public var sharpness: Double

    public init(brightness: Double, contrast: Double, sharpness: Double) {
        self.brightness = brightness
        self.contrast = contrast
        self.sharpness = sharpness
    }

    /// The mean of several frames' measures.
    public static func mean(_ frames: [FrameMeasures]) -> FrameMeasures? {
        guard !frames.isEmpty else { return nil }
        let n = Double(frames.count)
        return FrameMeasures(
            brightness: frames.map(\.brightness).reduce(0, +) / n,
            contrast: frames.map(\.contrast).reduce(0, +) / n,
            sharpness: frames.map(\.sharpness).reduce(0, +) / n)
    }
}
