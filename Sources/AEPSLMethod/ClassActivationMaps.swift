import AEPSLData
import AEPSLEngine

/// Class activation maps at an image's own resolution (docs/METHOD.md 1.1, step 2):
/// M_c = ReLU(sum_k w_ck A_k) from the classifier's last feature map, upsampled bilinearly
/// to the image size, averaged over scales (and horizontal flips when asked), divided by
/// its maximum.
public struct CAMExtractor {
  public var scales: [Float]
  public var flip: Bool
  /// The working resolution: scales are relative to the image resized to this longer side
  /// (`Augmentation.longerSide`); nil: relative to the image's own size.
  public var longerSide: Int?

  public init(scales: [Float] = [1], flip: Bool = false, longerSide: Int? = nil) {
    precondition(!scales.isEmpty && scales.allSatisfy { $0 > 0 }, "CAM scales must be positive")
    self.scales = scales
    self.flip = flip
    self.longerSide = longerSide
  }

  /// CAMs of `classes` (0-based foreground indices) for one image [1, 3, H, W], normalised
  /// to a maximum of 1 each: one [H * W] map per requested class, in the order given.
  public func maps(classifier: Classifier, image: Tensor, classes: [Int]) -> [[Float]] {
    precondition(image.shape.count == 4 && image.shape[0] == 1, "CAMs take one image at a time, got \(image.shape)")
    let (h, w) = (image.shape[2], image.shape[3])
    var sum = [[Float]](repeating: [Float](repeating: 0, count: h * w), count: classes.count)
    let base = Float(Augmentation.workingScale(longerSide: longerSide, width: w, height: h))
    for relative in scales {
      let scale = relative * base
      let sh = max(8, Int((Float(h) * scale).rounded())), sw = max(8, Int((Float(w) * scale).rounded()))
      let input = scale == 1 ? image
        : BilinearUpsample(name: "scale", outHeight: sh, outWidth: sw, alignCorners: false).forward(image, training: false)
      for flipped in flip ? [false, true] : [false] {
        let x = flipped ? Self.flipped(input) : input
        _ = classifier.forward(x, training: false)
        let cams = classifier.classActivationMaps(features: classifier.lastFeatures!)
        let up = BilinearUpsample(name: "cam", outHeight: h, outWidth: w, alignCorners: false).forward(cams, training: false)
        let plane = h * w
        for (i, c) in classes.enumerated() {
          let src = up.data + c * plane
          for y in 0..<h {
            for xx in 0..<w {
              let v = max(src[y * w + (flipped ? w - 1 - xx : xx)], 0)
              sum[i][y * w + xx] += v
            }
          }
        }
      }
    }
    for i in sum.indices { normaliseToPeak(&sum[i]) }
    return sum
  }

  /// [N, C, H, W] mirrored left to right.
  static func flipped(_ t: Tensor) -> Tensor {
    let x = t.nchw()
    let (h, w) = (x.shape[2], x.shape[3])
    let out = Tensor(shape: x.shape)
    for plane in 0..<(x.shape[0] * x.shape[1]) {
      for y in 0..<h {
        let src = x.data + (plane * h + y) * w, dst = out.data + (plane * h + y) * w
        for i in 0..<w { dst[i] = src[w - 1 - i] }
      }
    }
    return out
  }
}
