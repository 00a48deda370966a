/// Bilinear resizing of [N, C, H, W] to [N, C, outHeight, outWidth] (NCHW).
///
/// `alignCorners` is PyTorch's flag: true maps the corner pixels' centres onto each other,
/// src = dst (in - 1) / (out - 1); false maps pixel areas, src = (dst + 0.5) in / out - 0.5,
/// clamped at 0. CAMs are upsampled with false (the image grid), as PyTorch's default.
public final class BilinearUpsample: Layer {
  public let name: String
  public let outHeight: Int, outWidth: Int
  public let alignCorners: Bool
  private var inputShape: [Int] = []

  public init(name: String, outHeight: Int, outWidth: Int, alignCorners: Bool) {
    self.name = name
    self.outHeight = outHeight
    self.outWidth = outWidth
    self.alignCorners = alignCorners
  }

  public func outputShape(_ s: [Int]) -> [Int] { [s[0], s[1], outHeight, outWidth] }

  /// For each output coordinate: the two source indices and the weight of the second.
  static func taps(input: Int, output: Int, alignCorners: Bool) -> [(Int, Int, Float)] {
    (0..<output).map { o in
      var src: Float
      if alignCorners {
        src = output > 1 ? Float(o) * Float(input - 1) / Float(output - 1) : 0
      } else {
        src = max((Float(o) + 0.5) * Float(input) / Float(output) - 0.5, 0)
      }
      let i0 = min(Int(src), input - 1)
      let i1 = min(i0 + 1, input - 1)
      return (i0, i1, src - Float(i0))
    }
  }

  public func forward(_ xIn: Tensor, training: Bool) -> Tensor {
    let x = xIn.nchw()
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let ys = Self.taps(input: h, output: outHeight, alignCorners: alignCorners)
    let xs = Self.taps(input: w, output: outWidth, alignCorners: alignCorners)
    let y = Tensor(shape: [n, c, outHeight, outWidth])
    for plane in 0..<(n * c) {
      let src = x.data + plane * h * w
      let dst = y.data + plane * outHeight * outWidth
      for (oy, (y0, y1, fy)) in ys.enumerated() {
        let r0 = src + y0 * w, r1 = src + y1 * w
        for (ox, (x0, x1, fx)) in xs.enumerated() {
          let top = r0[x0] + (r0[x1] - r0[x0]) * fx
          let bottom = r1[x0] + (r1[x1] - r1[x0]) * fx
          dst[oy * outWidth + ox] = top + (bottom - top) * fy
        }
      }
    }
    if training { inputShape = x.shape }
    return y
  }

  public func backward(_ dyIn: Tensor) -> Tensor {
    precondition(!inputShape.isEmpty, "\(name): backward without a training forward")
    let dy = dyIn.nchw()
    let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
    let ys = Self.taps(input: h, output: outHeight, alignCorners: alignCorners)
    let xs = Self.taps(input: w, output: outWidth, alignCorners: alignCorners)
    let dx = Tensor(shape: inputShape)
    for plane in 0..<(n * c) {
      let g = dy.data + plane * outHeight * outWidth
      let d = dx.data + plane * h * w
      for (oy, (y0, y1, fy)) in ys.enumerated() {
        for (ox, (x0, x1, fx)) in xs.enumerated() {
          let v = g[oy * outWidth + ox]
          d[y0 * w + x0] += v * (1 - fy) * (1 - fx)
          d[y0 * w + x1] += v * (1 - fy) * fx
          d[y1 * w + x0] += v * fy * (1 - fx)
          d[y1 * w + x1] += v * fy * fx
        }
      }
    }
    return dx
  }
}

#if canImport(Glibc)
import Glibc
#endif
