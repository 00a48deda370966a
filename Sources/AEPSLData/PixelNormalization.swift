import AEPSLEngine
import AEPSLImaging

/// How 8-bit RGB pixels become network inputs: `x = (pixel - mean[c]) / std[c]`, both on
/// the 0...255 scale, RGB order, NCHW.
///
/// The default is ImageNet's (torchvision's VGG-16 was trained on it, and `largefov` loads
/// those weights; the tiny network, batch-normalised, is indifferent to it). The mean is
/// also what crops are padded with, so padding is exactly 0 after normalisation.
public struct PixelNormalization: Sendable, Equatable {
  public var mean: [Float]
  public var std: [Float]

  public init(mean: [Float], std: [Float]) {
    precondition(mean.count == 3 && std.count == 3 && std.allSatisfy { $0 > 0 },
                 "PixelNormalization needs 3 means and 3 positive standard deviations")
    self.mean = mean
    self.std = std
  }

  /// torchvision's ImageNet statistics: mean (0.485, 0.456, 0.406) and std
  /// (0.229, 0.224, 0.225) of [0, 1] pixels, here times 255.
  public static let imageNet = PixelNormalization(mean: [123.675, 116.28, 103.53],
                                                  std: [58.395, 57.12, 57.375])

  /// The mean pixel rounded to bytes (what erased or padded pixels look like in an image).
  public var meanPixel: [UInt8] { mean.map { UInt8(max(0, min(255, $0.rounded()))) } }

  /// 256 normalised values per channel, channel-major.
  var table: [Float] {
    var t = [Float](repeating: 0, count: 768)
    for c in 0..<3 { for v in 0..<256 { t[c * 256 + v] = (Float(v) - mean[c]) / std[c] } }
    return t
  }

  /// Writes `image` (RGB, `tensor`'s height and width) as sample `n` of an [N,3,H,W] tensor.
  public func write(_ image: Image, into tensor: Tensor, at n: Int) {
    precondition(tensor.shape.count == 4 && tensor.shape[1] == 3 && tensor.shape[2] == image.height
                 && tensor.shape[3] == image.width && image.channels == 3 && n < tensor.shape[0],
                 "PixelNormalization.write: a \(image.width)x\(image.height)x\(image.channels) image does not fit \(tensor.shape)")
    let plane = image.width * image.height
    let base = tensor.data + n * 3 * plane
    let lut = table
    image.pixels.withUnsafeBufferPointer { px in
      lut.withUnsafeBufferPointer { lut in
        for i in 0..<plane {
          base[i] = lut[Int(px[3 * i])]
          base[plane + i] = lut[256 + Int(px[3 * i + 1])]
          base[2 * plane + i] = lut[512 + Int(px[3 * i + 2])]
        }
      }
    }
  }

  /// One image as a [1,3,H,W] tensor.
  public func tensor(_ image: Image) -> Tensor {
    let rgb = image.converted(toChannels: 3)
    let t = Tensor(shape: [1, 3, rgb.height, rgb.width])
    write(rgb, into: t, at: 0)
    return t
  }

  /// Sample `n` of an [N,3,H,W] tensor back as an RGB image (rounded, clamped).
  public func image(from tensor: Tensor, at n: Int) -> Image {
    let t = tensor.nchw()
    let h = t.shape[2], w = t.shape[3], plane = h * w
    let base = t.data + n * 3 * plane
    var pixels = [UInt8](repeating: 0, count: 3 * plane)
    for i in 0..<plane {
      for c in 0..<3 {
        pixels[3 * i + c] = UInt8(max(0, min(255, (base[c * plane + i] * std[c] + mean[c]).rounded())))
      }
    }
    return Image(width: w, height: h, channels: 3, pixels: pixels)
  }
}
