extension Image {
  /// Blends a heatmap over the image: `(1 - alpha) * image + alpha * colorMap(score)`.
  /// Scores are a row-major plane in [0, 1]; a plane of another size (a CAM at network
  /// stride) is resized bilinearly to the image first. Gray images become RGB.
  public func overlaying(
    heatmap scores: [Float], width scoreWidth: Int, height scoreHeight: Int,
    colorMap: ColorMap = .jet, alpha: Float = 0.5
  ) -> Image {
    require(scores.count == scoreWidth * scoreHeight,
            "overlaying: \(scores.count) scores do not make a \(scoreWidth)x\(scoreHeight) plane")
    let plane = scoreWidth == width && scoreHeight == height
      ? scores
      : resizeBilinear(scores, channels: 1, height: scoreHeight, width: scoreWidth,
                       toHeight: height, toWidth: width, alignCorners: false)
    let colors = colorMap.image(values: plane, width: width, height: height)
    return converted(toChannels: 3).blended(with: colors, alpha: alpha)
  }

  /// Blends label colours over the image, `(1 - alpha) * image + alpha * palette[label]`;
  /// 255 (ignore) is drawn in the palette's colour for 255, VOC's cream (224, 224, 192).
  public func overlaying(labels: LabelMap, palette: Palette = .voc, alpha: Float = 0.5) -> Image {
    require(labels.width == width && labels.height == height,
            "overlaying: the label map is \(labels.width)x\(labels.height), the image \(width)x\(height)")
    let count = width * height * 3
    let colors = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
      labels.labels.withUnsafeBufferPointer { labels in
        palette.colors.withUnsafeBufferPointer { palette in
          for i in 0..<labels.count {
            let p = Int(labels[i]) * 3
            out[3 * i] = palette[p]
            out[3 * i + 1] = palette[p + 1]
            out[3 * i + 2] = palette[p + 2]
          }
        }
      }
      initialized = count
    }
    let layer = Image(width: width, height: height, channels: 3, pixels: colors)
    return converted(toChannels: 3).blended(with: layer, alpha: alpha)
  }

  /// `(1 - alpha) * self + alpha * other`, rounded; both the same size and channels.
  func blended(with other: Image, alpha: Float) -> Image {
    let a = min(1, max(0, alpha))
    let count = pixels.count
    let out = [UInt8](unsafeUninitializedCapacity: count) { target, initialized in
      pixels.withUnsafeBufferPointer { base in
        other.pixels.withUnsafeBufferPointer { top in
          for i in 0..<count {
            let value = Float(base[i]) * (1 - a) + Float(top[i]) * a
            target[i] = UInt8(min(255, value + 0.5))
          }
        }
      }
      initialized = count
    }
    return Image(width: width, height: height, channels: channels, pixels: out)
  }
}
