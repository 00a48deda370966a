/// Source positions and weights for one axis of a bilinear resize: output i blends
/// input `lower[i]` (weight 1 - fraction) and `upper[i]` (weight fraction).
struct BilinearAxis {
  var lower: [Int]
  var upper: [Int]
  var fraction: [Float]

  /// alignCorners false: half-pixel centres, src = (dst + 0.5) * in / out - 0.5 clamped at
  /// 0 (PyTorch align_corners=False, OpenCV INTER_LINEAR). alignCorners true: the corner
  /// pixels of input and output coincide, src = dst * (in - 1) / (out - 1).
  init(from input: Int, to output: Int, alignCorners: Bool) {
    lower = [Int](repeating: 0, count: output)
    upper = [Int](repeating: 0, count: output)
    fraction = [Float](repeating: 0, count: output)
    // Double so positions stay exact for large sizes; this runs once per row and column.
    let scale: Double
    if alignCorners {
      scale = output > 1 ? Double(input - 1) / Double(output - 1) : 0
    } else {
      scale = Double(input) / Double(output)
    }
    for i in 0..<output {
      let source = alignCorners
        ? Double(i) * scale
        : max(0, (Double(i) + 0.5) * scale - 0.5)
      let low = min(Int(source), input - 1)
      lower[i] = low
      upper[i] = min(low + 1, input - 1)
      fraction[i] = Float(source - Double(low))
    }
  }
}

/// The bilinear blend of a 2x2 neighbourhood (top-left `t`, top-right `u`, bottom-left `b`,
/// bottom-right `d`; `wx` across, `fy` down) plus 0.5, clamped to [0, 255]: converting it to
/// an integer rounds to the nearest byte. `Image.resized` and the training loader's
/// augmentation both sample through it, so they give the same bytes.
@inlinable @inline(__always)
public func bilinearBlend(_ t: UInt8, _ u: UInt8, _ b: UInt8, _ d: UInt8, wx: Float, fy: Float) -> Float {
  let (t, u, b, d) = (Float(t), Float(u), Float(b), Float(d))
  let upperRow = t + (u - t) * wx
  let lowerRow = b + (d - b) * wx
  let value = upperRow + (lowerRow - upperRow) * fy
  return min(255, max(0, value + 0.5))
}

extension Image {
  /// Bilinear resize (no antialiasing, like PyTorch's interpolate), rounded to nearest.
  public func resized(width newWidth: Int, height newHeight: Int, alignCorners: Bool = false) -> Image {
    require(newWidth > 0 && newHeight > 0, "Resize target must be positive, got \(newWidth)x\(newHeight)")
    if newWidth == width && newHeight == height { return self }
    let xs = BilinearAxis(from: width, to: newWidth, alignCorners: alignCorners)
    let ys = BilinearAxis(from: height, to: newHeight, alignCorners: alignCorners)
    let c = channels
    let rowLength = width * c
    let count = newWidth * newHeight * c
    let out = [UInt8](unsafeUninitializedCapacity: count) { target, initialized in
      pixels.withUnsafeBufferPointer { source in
        xs.lower.withUnsafeBufferPointer { x0 in
          xs.upper.withUnsafeBufferPointer { x1 in
            xs.fraction.withUnsafeBufferPointer { fx in
              var o = 0
              for y in 0..<newHeight {
                let top = ys.lower[y] * rowLength
                let bottom = ys.upper[y] * rowLength
                let fy = ys.fraction[y]
                for x in 0..<newWidth {
                  let left = x0[x] * c
                  let right = x1[x] * c
                  let wx = fx[x]
                  for k in 0..<c {
                    target[o] = UInt8(bilinearBlend(source[top + left + k], source[top + right + k],
                                                    source[bottom + left + k], source[bottom + right + k], wx: wx, fy: fy))
                    o += 1
                  }
                }
              }
            }
          }
        }
      }
      initialized = count
    }
    return Image(width: newWidth, height: newHeight, channels: c, pixels: out)
  }
}

/// Bilinearly resizes `channels` planes of `height` x `width` floats (CHW, e.g. class
/// scores or CAMs) to `targetHeight` x `targetWidth`.
public func resizeBilinear(
  _ planes: [Float], channels: Int, height: Int, width: Int,
  toHeight targetHeight: Int, toWidth targetWidth: Int, alignCorners: Bool
) -> [Float] {
  require(planes.count == channels * height * width,
          "resizeBilinear: \(planes.count) values do not make \(channels)x\(height)x\(width) planes")
  let count = channels * targetHeight * targetWidth
  return [Float](unsafeUninitializedCapacity: count) { target, initialized in
    planes.withUnsafeBufferPointer { source in
      resizeBilinear(from: source, channels: channels, height: height, width: width,
                     into: target, height: targetHeight, width: targetWidth,
                     alignCorners: alignCorners)
    }
    initialized = count
  }
}

/// The same, between caller-owned buffers (no allocation for the result).
public func resizeBilinear(
  from source: UnsafeBufferPointer<Float>, channels: Int, height: Int, width: Int,
  into target: UnsafeMutableBufferPointer<Float>, height targetHeight: Int, width targetWidth: Int,
  alignCorners: Bool
) {
  require(channels > 0 && height > 0 && width > 0 && targetHeight > 0 && targetWidth > 0,
          "resizeBilinear: sizes must be positive")
  require(source.count >= channels * height * width,
          "resizeBilinear: source holds \(source.count) values, needs \(channels * height * width)")
  require(target.count >= channels * targetHeight * targetWidth,
          "resizeBilinear: target holds \(target.count) values, "
            + "needs \(channels * targetHeight * targetWidth)")
  let xs = BilinearAxis(from: width, to: targetWidth, alignCorners: alignCorners)
  let ys = BilinearAxis(from: height, to: targetHeight, alignCorners: alignCorners)
  xs.lower.withUnsafeBufferPointer { x0 in
    xs.upper.withUnsafeBufferPointer { x1 in
      xs.fraction.withUnsafeBufferPointer { fx in
        for plane in 0..<channels {
          let input = source.baseAddress! + plane * height * width
          var o = plane * targetHeight * targetWidth
          for y in 0..<targetHeight {
            let top = input + ys.lower[y] * width
            let bottom = input + ys.upper[y] * width
            let fy = ys.fraction[y]
            for x in 0..<targetWidth {
              let wx = fx[x]
              let upperRow = top[x0[x]] + (top[x1[x]] - top[x0[x]]) * wx
              let lowerRow = bottom[x0[x]] + (bottom[x1[x]] - bottom[x0[x]]) * wx
              target[o] = upperRow + (lowerRow - upperRow) * fy
              o += 1
            }
          }
        }
      }
    }
  }
}

extension LabelMap {
  /// Nearest-neighbour resize, sampling at pixel centres (PIL's NEAREST, PyTorch's
  /// "nearest-exact"): labels are never blended, so no new class appears.
  public func resized(width newWidth: Int, height newHeight: Int) -> LabelMap {
    require(newWidth > 0 && newHeight > 0, "Resize target must be positive, got \(newWidth)x\(newHeight)")
    if newWidth == width && newHeight == height { return self }
    func nearest(_ count: Int, from input: Int) -> [Int] {
      let scale = Double(input) / Double(count)
      return (0..<count).map { min(Int((Double($0) + 0.5) * scale), input - 1) }
    }
    let columns = nearest(newWidth, from: width)
    let rows = nearest(newHeight, from: height)
    let count = newWidth * newHeight
    let out = [UInt8](unsafeUninitializedCapacity: count) { target, initialized in
      labels.withUnsafeBufferPointer { source in
        columns.withUnsafeBufferPointer { columns in
          for y in 0..<newHeight {
            let row = rows[y] * width
            for x in 0..<newWidth { target[y * newWidth + x] = source[row + columns[x]] }
          }
        }
      }
      initialized = count
    }
    return LabelMap(width: newWidth, height: newHeight, labels: out)
  }
}
