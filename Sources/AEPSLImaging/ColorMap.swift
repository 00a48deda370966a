/// Maps scores in [0, 1] to colours, for CAM heatmaps.
public enum ColorMap: Sendable, CaseIterable {
  /// Matplotlib's "jet": dark blue (0, 0, 128) through cyan, yellow and red to dark red
  /// (128, 0, 0); what CAM papers draw (OpenCV's COLORMAP_JET is the same curve).
  case jet

  /// 256 entries, RGB interleaved; index round(value * 255).
  public var table: [UInt8] {
    switch self {
    case .jet: ColorMap.jetTable
    }
  }

  /// The colour of `value`; values outside [0, 1] are clamped and NaN counts as 0.
  public func color(_ value: Float) -> (red: UInt8, green: UInt8, blue: UInt8) {
    let i = ColorMap.index(value) * 3
    let table = self.table
    return (table[i], table[i + 1], table[i + 2])
  }

  /// Renders a `width` x `height` plane of scores (row-major) as an RGB image.
  public func image(values: [Float], width: Int, height: Int) -> Image {
    require(values.count == width * height,
            "ColorMap.image: \(values.count) values do not make a \(width)x\(height) plane")
    let table = self.table
    let count = width * height * 3
    let pixels = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
      values.withUnsafeBufferPointer { values in
        table.withUnsafeBufferPointer { table in
          for i in 0..<values.count {
            let t = ColorMap.index(values[i]) * 3
            out[3 * i] = table[t]
            out[3 * i + 1] = table[t + 1]
            out[3 * i + 2] = table[t + 2]
          }
        }
      }
      initialized = count
    }
    return Image(width: width, height: height, channels: 3, pixels: pixels)
  }

  @inline(__always)
  static func index(_ value: Float) -> Int {
    // `!(v > 0)` also catches NaN.
    if !(value > 0) { return 0 }
    if value >= 1 { return 255 }
    return Int(value * 255 + 0.5)
  }

  /// Piecewise-linear channels from matplotlib's _jet_data (x, value) breakpoints.
  static let jetTable: [UInt8] = {
    let red: [(Double, Double)] = [(0, 0), (0.35, 0), (0.66, 1), (0.89, 1), (1, 0.5)]
    let green: [(Double, Double)] = [(0, 0), (0.125, 0), (0.375, 1), (0.64, 1), (0.91, 0), (1, 0)]
    let blue: [(Double, Double)] = [(0, 0.5), (0.11, 1), (0.34, 1), (0.65, 0), (1, 0)]
    func sample(_ points: [(Double, Double)], _ x: Double) -> UInt8 {
      var value = points.last!.1
      for (a, b) in zip(points, points.dropFirst()) where x <= b.0 {
        value = a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)
        break
      }
      return UInt8((value * 255).rounded())
    }
    var table = [UInt8](repeating: 0, count: 768)
    for i in 0..<256 {
      let x = Double(i) / 255
      table[3 * i] = sample(red, x)
      table[3 * i + 1] = sample(green, x)
      table[3 * i + 2] = sample(blue, x)
    }
    return table
  }()
}
