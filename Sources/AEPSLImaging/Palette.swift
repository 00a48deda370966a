/// 256 RGB colours indexed by label, as stored in a palette PNG.
public struct Palette: Sendable, Equatable {
  /// 768 bytes: red, green, blue for index 0, then index 1, and so on.
  public let colors: [UInt8]

  public init(colors: [UInt8]) {
    require(colors.count == 768, "A palette has 256 RGB entries (768 bytes), got \(colors.count)")
    self.colors = colors
  }

  public subscript(index: UInt8) -> (red: UInt8, green: UInt8, blue: UInt8) {
    let i = Int(index) * 3
    return (colors[i], colors[i + 1], colors[i + 2])
  }

  /// The PASCAL VOC colour map: the bits of the index are dealt out to red, green and blue,
  /// most significant first, so 0 is black, 1 (aeroplane) is (128, 0, 0), and 255 (ignore)
  /// is (224, 224, 192). Matches the palette of VOC's SegmentationClass PNGs.
  public static let voc: Palette = {
    var colors = [UInt8](repeating: 0, count: 768)
    for index in 0..<256 {
      var red = 0, green = 0, blue = 0, bits = index
      for shift in (0..<8).reversed() {
        red |= (bits & 1) << shift
        green |= ((bits >> 1) & 1) << shift
        blue |= ((bits >> 2) & 1) << shift
        bits >>= 3
      }
      colors[3 * index] = UInt8(red)
      colors[3 * index + 1] = UInt8(green)
      colors[3 * index + 2] = UInt8(blue)
    }
    return Palette(colors: colors)
  }()
}
