/// An 8-bit image, row-major with channels interleaved (HWC): 1 channel (gray) or 3 (RGB).
public struct Image: Sendable, Equatable {
  public let width: Int
  public let height: Int
  public let channels: Int
  /// `width * height * channels` bytes; mutate through `withUnsafeMutablePixels`.
  public private(set) var pixels: [UInt8]

  public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
    require(width > 0 && height > 0, "Image size must be positive, got \(width)x\(height)")
    require(channels == 1 || channels == 3, "Image channels must be 1 or 3, got \(channels)")
    require(pixels.count == width * height * channels,
            "Image \(width)x\(height)x\(channels) needs \(width * height * channels) bytes, "
              + "got \(pixels.count)")
    self.width = width
    self.height = height
    self.channels = channels
    self.pixels = pixels
  }

  public init(width: Int, height: Int, channels: Int, repeating value: UInt8 = 0) {
    self.init(width: width, height: height, channels: channels,
              pixels: [UInt8](repeating: value, count: max(0, width * height * channels)))
  }

  /// Edits the pixels in place; the buffer's size is fixed.
  public mutating func withUnsafeMutablePixels<R>(
    _ body: (UnsafeMutableBufferPointer<UInt8>) throws -> R
  ) rethrows -> R {
    try pixels.withUnsafeMutableBufferPointer { try body($0) }
  }

  /// The image with 1 (gray, ITU-R 601 weights as libjpeg uses) or 3 (RGB) channels.
  public func converted(toChannels target: Int) -> Image {
    require(target == 1 || target == 3, "Image channels must be 1 or 3, got \(target)")
    if target == channels { return self }
    let count = width * height
    let converted = [UInt8](unsafeUninitializedCapacity: count * target) { out, initialized in
      pixels.withUnsafeBufferPointer { source in
        if target == 3 {
          for i in 0..<count {
            let gray = source[i]
            out[3 * i] = gray
            out[3 * i + 1] = gray
            out[3 * i + 2] = gray
          }
        } else {
          for i in 0..<count {
            let sum = 299 * UInt32(source[3 * i]) + 587 * UInt32(source[3 * i + 1])
              + 114 * UInt32(source[3 * i + 2])
            out[i] = UInt8((sum + 500) / 1000)
          }
        }
      }
      initialized = count * target
    }
    return Image(width: width, height: height, channels: target, pixels: converted)
  }
}

/// Per-pixel class indices, row-major: 0 background, 1...C classes, 255 ignore.
public struct LabelMap: Sendable, Equatable {
  /// The label that evaluation and losses skip (object boundaries in VOC).
  public static let ignore: UInt8 = 255

  public let width: Int
  public let height: Int
  /// `width * height` labels; mutate through `withUnsafeMutableLabels`.
  public private(set) var labels: [UInt8]

  public init(width: Int, height: Int, labels: [UInt8]) {
    require(width > 0 && height > 0, "LabelMap size must be positive, got \(width)x\(height)")
    require(labels.count == width * height,
            "LabelMap \(width)x\(height) needs \(width * height) labels, got \(labels.count)")
    self.width = width
    self.height = height
    self.labels = labels
  }

  public init(width: Int, height: Int, repeating label: UInt8 = 0) {
    self.init(width: width, height: height,
              labels: [UInt8](repeating: label, count: max(0, width * height)))
  }

  public subscript(x: Int, y: Int) -> UInt8 {
    require(x >= 0 && x < width && y >= 0 && y < height,
            "(\(x), \(y)) is outside the \(width)x\(height) label map")
    return labels[y * width + x]
  }

  public mutating func withUnsafeMutableLabels<R>(
    _ body: (UnsafeMutableBufferPointer<UInt8>) throws -> R
  ) rethrows -> R {
    try labels.withUnsafeMutableBufferPointer { try body($0) }
  }
}
