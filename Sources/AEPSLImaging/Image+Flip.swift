extension Image {
  /// The mirror image (left and right swapped), for flip augmentation.
  public func flippedHorizontally() -> Image {
    let c = channels
    let out = [UInt8](unsafeUninitializedCapacity: pixels.count) { target, initialized in
      pixels.withUnsafeBufferPointer { source in
        for y in 0..<height {
          let row = y * width * c
          for x in 0..<width {
            let from = row + x * c
            let to = row + (width - 1 - x) * c
            for k in 0..<c { target[to + k] = source[from + k] }
          }
        }
      }
      initialized = pixels.count
    }
    return Image(width: width, height: height, channels: c, pixels: out)
  }
}

extension LabelMap {
  /// The mirror label map, to flip together with its image.
  public func flippedHorizontally() -> LabelMap {
    let out = [UInt8](unsafeUninitializedCapacity: labels.count) { target, initialized in
      labels.withUnsafeBufferPointer { source in
        for y in 0..<height {
          let row = y * width
          for x in 0..<width { target[row + width - 1 - x] = source[row + x] }
        }
      }
      initialized = labels.count
    }
    return LabelMap(width: width, height: height, labels: out)
  }
}
