import AEPSLEngine
import AEPSLFiles
import AEPSLImaging

/// Data augmentation as DeepLab does it: scale the image by a random factor, pad it at the
/// bottom and right to at least the crop size (image with the mean pixel, labels with 255),
/// take a random square crop, and mirror it half of the time. At test time: nothing, or
/// padding to a fixed size.
///
/// Everything is one pass (`apply`): each output pixel is sampled straight from the decoded
/// image (bilinear, half-pixel centres, rounded to a byte, exactly as
/// `Image.resized` then crop then flip would give) and written normalised into the batch.
/// Labels are sampled nearest-neighbour (as `LabelMap.resized`), never blended.
public struct Augmentation: Sendable, Equatable {
  /// Random scale factors, uniform; nil keeps the size.
  public var scales: ClosedRange<Float>?
  /// The side of the square output; nil keeps the (scaled) image size.
  public var crop: Int?
  /// Random crop offsets (training) or the top-left corner (test).
  public var randomCrop: Bool
  /// Mirror left-right with probability 1/2.
  public var flip: Bool
  /// The working resolution: each image is first resized so that its longer side is this
  /// many pixels (then scaled by the random factor); nil works at the image's own size.
  public var longerSide: Int?

  public init(scales: ClosedRange<Float>? = nil, crop: Int? = nil, randomCrop: Bool = false, flip: Bool = false,
              longerSide: Int? = nil) {
    precondition(scales.map { $0.lowerBound > 0 } ?? true, "Augmentation scales must be positive")
    precondition(crop.map { $0 > 0 } ?? true, "Augmentation crop must be positive")
    precondition(longerSide.map { $0 > 0 } ?? true, "Augmentation longer side must be positive")
    self.scales = scales; self.crop = crop; self.randomCrop = randomCrop; self.flip = flip; self.longerSide = longerSide
  }

  /// DeepLab training: scale 0.5...1.5, pad, random `crop` (321 for largefov), flip.
  public static func deepLab(crop: Int, scales: ClosedRange<Float> = 0.5...1.5) -> Augmentation {
    Augmentation(scales: scales, crop: crop, randomCrop: true, flip: true)
  }

  /// Test time: the image as it is. A batch of several then needs images of one size.
  public static let none = Augmentation()

  /// Test time at a fixed size: pad at the bottom and right to `side` x `side` (DeepLab
  /// tests at 513); larger images are an error.
  public static func padded(to side: Int) -> Augmentation { Augmentation(crop: side) }

  public var isRandom: Bool { scales != nil || randomCrop || flip }

  /// The factor that brings a `width` x `height` image to the working resolution.
  public static func workingScale(longerSide: Int?, width: Int, height: Int) -> Double {
    longerSide.map { Double($0) / Double(max(width, height, 1)) } ?? 1
  }

  /// Where one image lands in the output, drawn once per sample.
  public struct Placement: Sendable, Equatable {
    /// Size of the scaled image.
    public var scaledWidth: Int
    public var scaledHeight: Int
    /// Output size.
    public var width: Int
    public var height: Int
    /// Top-left corner of the crop in the scaled, padded image.
    public var top: Int
    public var left: Int
    public var flipped: Bool
  }

  /// Draws scale, crop offset and flip for an image of `width` x `height`.
  public func placement(width: Int, height: Int, rng: inout SeededGenerator) throws -> Placement {
    let scale = scales.map { $0.lowerBound + ($0.upperBound - $0.lowerBound) * rng.nextUniform() } ?? 1
    let base = Self.workingScale(longerSide: longerSide, width: width, height: height)
    let resized = scales != nil || longerSide != nil
    let sw = resized ? max(1, Int((Double(width) * Double(scale) * base).rounded())) : width
    let sh = resized ? max(1, Int((Double(height) * Double(scale) * base).rounded())) : height
    let outW = crop ?? sw, outH = crop ?? sh
    if !randomCrop, let crop, sw > crop || sh > crop, !resized {
      throw AEPSLError(kind: .badArgument, problem: "a \(width)x\(height) image does not fit the \(crop)x\(crop) test size",
                         fix: "Pad to at least the largest image side")
    }
    // Pad bottom/right to the crop, then choose the corner uniformly.
    let paddedW = max(sw, outW), paddedH = max(sh, outH)
    var top = 0, left = 0
    let u1 = rng.nextUniform(), u2 = rng.nextUniform()
    if randomCrop {
      top = min(paddedH - outH, Int(u1 * Float(paddedH - outH + 1)))
      left = min(paddedW - outW, Int(u2 * Float(paddedW - outW + 1)))
    }
    let flipped = flip && rng.nextUniform() < 0.5
    return Placement(scaledWidth: sw, scaledHeight: sh, width: outW, height: outH, top: top, left: left,
                     flipped: flipped)
  }

  /// Writes `image` (RGB) placed by `placement` into `pixels` (3 planes of
  /// `placement.height * placement.width` Floats, normalised) and `labelMap`, when given, into
  /// `labels` (255 outside the image). Padding is 0 (the normalisation mean) and 255.
  public static func apply(
    _ placement: Placement, image: Image, labelMap: LabelMap?, normalization: PixelNormalization,
    pixels: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<UInt8>?
  ) {
    precondition(image.channels == 3, "Augmentation.apply needs an RGB image")
    let w = image.width
    let outW = placement.width, outH = placement.height, plane = outW * outH
    let (xs, ys) = SamplingAxis.pair(placement, imageWidth: w, imageHeight: image.height)
    let lut = normalization.table
    let pad: Float = 0

    image.pixels.withUnsafeBufferPointer { src in
      lut.withUnsafeBufferPointer { lut in
        for oy in 0..<outH {
          let row = oy * outW
          guard ys.valid[oy] else {
            for c in 0..<3 { (pixels + c * plane + row).update(repeating: pad, count: outW) }
            continue
          }
          let top = ys.lower[oy] * w * 3, bottom = ys.upper[oy] * w * 3
          let fy = ys.fraction[oy]
          for ox in 0..<outW {
            guard xs.valid[ox] else {
              for c in 0..<3 { pixels[c * plane + row + ox] = pad }
              continue
            }
            let left = xs.lower[ox] * 3, right = xs.upper[ox] * 3
            let wx = xs.fraction[ox]
            for c in 0..<3 {
              let value = bilinearBlend(src[top + left + c], src[top + right + c], src[bottom + left + c],
                                        src[bottom + right + c], wx: wx, fy: fy)
              pixels[c * plane + row + ox] = lut[c * 256 + Int(value)]
            }
          }
        }
      }
    }
    guard let labels else { return }
    applyLabels(labelMap, xs: xs, ys: ys, image: image, width: outW, height: outH, into: labels)
  }

  /// Samples `labelMap` nearest-neighbour where `apply` sampled the image (255 in the
  /// padding, and everywhere when there is no map).
  private static func applyLabels(_ labelMap: LabelMap?, xs: SamplingAxis, ys: SamplingAxis, image: Image,
                                  width outW: Int, height outH: Int, into labels: UnsafeMutablePointer<UInt8>) {
    guard let labelMap else {
      labels.update(repeating: LabelMap.ignore, count: outW * outH)
      return
    }
    let w = image.width, h = image.height
    precondition(labelMap.width == w && labelMap.height == h,
                 "A \(labelMap.width)x\(labelMap.height) label map does not match its \(w)x\(h) image")
    labelMap.labels.withUnsafeBufferPointer { src in
      for oy in 0..<outH {
        let row = oy * outW
        guard ys.valid[oy] else {
          (labels + row).update(repeating: LabelMap.ignore, count: outW)
          continue
        }
        let sourceRow = ys.nearest[oy] * w
        for ox in 0..<outW {
          labels[row + ox] = xs.valid[ox] ? src[sourceRow + xs.nearest[ox]] : LabelMap.ignore
        }
      }
    }
  }
}

/// Per output column (or row) of `Augmentation.apply`: the scaled-image position it shows
/// (invalid in the padding), its bilinear source pair and weight, and its nearest source
/// for labels. Formulas as `BilinearAxis` in imaging.
struct SamplingAxis {
  var valid: [Bool]
  var lower: [Int]
  var upper: [Int]
  var fraction: [Float]
  var nearest: [Int]

  init(input: Int, scaled: Int, output: Int, offset: Int, mirrored: Bool) {
    valid = [Bool](repeating: false, count: output)
    lower = [Int](repeating: 0, count: output)
    upper = lower
    nearest = lower
    fraction = [Float](repeating: 0, count: output)
    let ratio = Double(input) / Double(scaled)
    for o in 0..<output {
      let s = offset + (mirrored ? output - 1 - o : o)
      guard s < scaled else { continue }
      valid[o] = true
      let source = max(0, (Double(s) + 0.5) * ratio - 0.5)
      let low = min(Int(source), input - 1)
      lower[o] = low
      upper[o] = min(low + 1, input - 1)
      fraction[o] = Float(source - Double(low))
      nearest[o] = min(Int((Double(s) + 0.5) * ratio), input - 1)
    }
  }

  /// The columns and the rows of one placement (only columns are mirrored).
  static func pair(_ placement: Augmentation.Placement, imageWidth w: Int, imageHeight h: Int) -> (SamplingAxis, SamplingAxis) {
    (SamplingAxis(input: w, scaled: placement.scaledWidth, output: placement.width, offset: placement.left,
                  mirrored: placement.flipped),
     SamplingAxis(input: h, scaled: placement.scaledHeight, output: placement.height, offset: placement.top, mirrored: false))
  }
}
