import Foundation

/// The exact spatial Gaussian kernel k(i, j) = exp(-|p_i - p_j|^2 / (2 sigma^2)) of an image
/// grid, truncated at `radius` = ceil(truncation * sigma) pixels, applied as a horizontal
/// then a vertical pass over rows of SIMD8 vectors (all labels of a pixel together).
///
/// The kernel is a product of a row and a column kernel, so its row sums are too:
/// n(x, y) = cx(x) * cy(y), and every normalisation (pre, post) factors into per-column and
/// per-row parts. The passes fold `pre` into their tap weights; `post` is applied when the
/// message is read.
final class SeparableGaussian: @unchecked Sendable {
  let width: Int
  let height: Int
  let radius: Int
  let vectors: Int
  /// [W][2r+1] horizontal and [H][2r+1] vertical tap weights, g(t) * pre(x + t), 0 outside.
  private let horizontalTaps: [Float]
  private let verticalTaps: [Float]
  let postX: [Float]
  let postY: [Float]
  private let intermediate: VectorBuffer
  let output: VectorBuffer

  init(width: Int, height: Int, sigmaX: Float, sigmaY: Float, truncation: Float,
       normalization: KernelNormalization, vectors: Int) {
    self.width = width
    self.height = height
    self.vectors = vectors
    let rx = Int((truncation * sigmaX).rounded(.up)), ry = Int((truncation * sigmaY).rounded(.up))
    let radius = max(rx, ry)
    self.radius = radius
    func taps(_ sigma: Float, _ r: Int) -> [Float] {
      (-radius...radius).map { t in abs(t) > r ? 0 : Float(exp(-Double(t * t) / (2 * Double(sigma) * Double(sigma)))) }
    }
    let gx = taps(sigmaX, rx), gy = taps(sigmaY, ry)
    func factors(_ g: [Float], _ n: Int) -> (pre: [Float], post: [Float]) {
      let sums = (0..<n).map { x in (-radius...radius).reduce(Float(0)) { s, t in (0..<n).contains(x + t) ? s + g[t + radius] : s } }
      switch normalization {
      case .symmetric: let f = sums.map { 1 / $0.squareRoot() }; return (f, f)
      case .before: return (sums.map { 1 / $0 }, [Float](repeating: 1, count: n))
      case .after: return ([Float](repeating: 1, count: n), sums.map { 1 / $0 })
      case .none: let one = [Float](repeating: 1, count: n); return (one, one)
      }
    }
    let (preX, px) = factors(gx, width), (preY, py) = factors(gy, height)
    postX = px
    postY = py
    let span = 2 * radius + 1
    var h = [Float](repeating: 0, count: width * span)
    for x in 0..<width { for t in -radius...radius where (0..<width).contains(x + t) {
      h[x * span + t + radius] = gx[t + radius] * preX[x + t]
    } }
    var v = [Float](repeating: 0, count: height * span)
    for y in 0..<height { for t in -radius...radius where (0..<height).contains(y + t) {
      v[y * span + t + radius] = gy[t + radius] * preY[y + t]
    } }
    horizontalTaps = h
    verticalTaps = v
    intermediate = VectorBuffer(count: width * height * vectors)
    output = VectorBuffer(count: width * height * vectors)
  }

  /// sum_t g(t) pre(x + t) for every column x, and the same for every row y.
  var unitResponses: (columns: [Float], rows: [Float]) {
    let span = 2 * radius + 1
    let columns = (0..<width).map { x in horizontalTaps[(x * span)..<((x + 1) * span)].reduce(0, +) }
    let rows = (0..<height).map { y in verticalTaps[(y * span)..<((y + 1) * span)].reduce(0, +) }
    return (columns, rows)
  }

  /// output[i] = sum_j k(i, j) pre_j input[j] (without `post`). Offsets wrap (&+, &*): they
  /// stay inside the W x H x vectors buffers, and the package builds without -Ounchecked.
  func blur(_ input: UnsafePointer<SIMD8<Float>>, threads: Int) {
    let w = width, h = height, r = radius, span = 2 * r + 1, nv = vectors
    let mid = intermediate.base, out = output.base
    horizontalTaps.withUnsafeBufferPointer { taps in
      let taps = taps.baseAddress!
      parallelRanges(h, threads: threads, grain: 8) { _, rows in
        for y in rows {
          let row = input + y &* w &* nv, dst = mid + y &* w &* nv
          for x in 0..<w {
            let lo = max(-r, -x), hi = min(r, w &- 1 &- x)
            let weights = taps + (x &* span &+ r)
            if nv == 3 {
              var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>()
              var t = lo
              while t <= hi {
                let c = weights[t], p = row + (x &+ t) &* 3
                s0 += c * p[0]; s1 += c * p[1]; s2 += c * p[2]
                t &+= 1
              }
              let o = dst + x &* 3
              o[0] = s0; o[1] = s1; o[2] = s2
            } else {
              let o = dst + x &* nv
              o.update(repeating: .zero, count: nv)
              var t = lo
              while t <= hi {
                let c = weights[t], p = row + (x &+ t) &* nv
                for k in 0..<nv { o[k] += c * p[k] }
                t &+= 1
              }
            }
          }
        }
      }
    }
    verticalTaps.withUnsafeBufferPointer { taps in
      let taps = taps.baseAddress!
      let rowLength = w * nv
      parallelRanges(h, threads: threads, grain: 8) { _, rows in
        for y in rows {
          let lo = max(-r, -y), hi = min(r, h &- 1 &- y)
          let weights = taps + (y &* span &+ r)
          let dst = out + y &* rowLength
          var k = 0
          while k &+ 4 <= rowLength {
            var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
            var t = lo
            while t <= hi {
              let c = weights[t], p = mid + ((y &+ t) &* rowLength &+ k)
              s0 += c * p[0]; s1 += c * p[1]; s2 += c * p[2]; s3 += c * p[3]
              t &+= 1
            }
            dst[k] = s0; dst[k &+ 1] = s1; dst[k &+ 2] = s2; dst[k &+ 3] = s3
            k &+= 4
          }
          while k < rowLength {
            var s = SIMD8<Float>()
            var t = lo
            while t <= hi { s += weights[t] * mid[(y &+ t) &* rowLength &+ k]; t &+= 1 }
            dst[k] = s
            k &+= 1
          }
        }
      }
    }
  }
}
