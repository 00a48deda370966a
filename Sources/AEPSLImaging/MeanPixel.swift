/// The per-channel mean pixel of a set of images, accumulated one image at a time so a
/// dataset never has to be in memory at once.
///
/// Sums are exact integers (UInt64 overflows only after about 4e11 VOC-sized images) and
/// the mean is a Double, so the result does not depend on the order images arrive in.
public struct MeanPixelAccumulator: Sendable {
  public let channels: Int
  private var sums: [UInt64]
  public private(set) var pixelCount = 0

  public init(channels: Int) {
    require(channels == 1 || channels == 3, "Mean pixel channels must be 1 or 3, got \(channels)")
    self.channels = channels
    sums = [UInt64](repeating: 0, count: channels)
  }

  public mutating func add(_ image: Image) {
    require(image.channels == channels,
            "Mean pixel over \(channels)-channel images got a \(image.channels)-channel one; "
              + "decode with colorMode: .rgb")
    let pixels = image.width * image.height
    image.pixels.withUnsafeBufferPointer { source in
      if channels == 1 {
        var sum: UInt64 = 0
        for value in source { sum &+= UInt64(value) }
        sums[0] += sum
      } else {
        var red: UInt64 = 0, green: UInt64 = 0, blue: UInt64 = 0
        for i in 0..<pixels {
          red &+= UInt64(source[3 * i])
          green &+= UInt64(source[3 * i + 1])
          blue &+= UInt64(source[3 * i + 2])
        }
        sums[0] += red
        sums[1] += green
        sums[2] += blue
      }
    }
    pixelCount += pixels
  }

  /// Mean value per channel (0...255), or nil before any image was added.
  public var mean: [Double]? {
    pixelCount == 0 ? nil : sums.map { Double($0) / Double(pixelCount) }
  }
}

extension Image {
  /// The per-channel mean pixel of `images`, which must all have the same channel count;
  /// nil when there are none.
  public static func meanPixel<S: Sequence<Image>>(of images: S) -> [Double]? {
    var iterator = images.makeIterator()
    guard let first = iterator.next() else { return nil }
    var accumulator = MeanPixelAccumulator(channels: first.channels)
    accumulator.add(first)
    while let image = iterator.next() { accumulator.add(image) }
    return accumulator.mean
  }
}
