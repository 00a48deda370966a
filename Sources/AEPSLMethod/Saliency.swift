#if canImport(Glibc)
import Glibc
#endif

/// Unsupervised salient-object detection: the Minimum Barrier Distance transform of
/// J. Zhang, S. Sclaroff, Z. Lin, X. Shen, B. Price, R. Mech, "Minimum Barrier Salient Object
/// Detection at 80 FPS", ICCV 2015 (FastMBD, their Algorithm 1: raster scans from the image
/// border as background seeds, on each Lab channel), with their image-boundary contrast map
/// and a smoothing and contrast step. Pixels far, in the barrier sense, from every border
/// pixel are salient; it needs no training, so it is fair for weak supervision.
public struct MBDSaliency: Sendable {
  /// Raster-scan passes (the paper uses 3; more change little).
  public var passes = 3
  /// Width of the border band whose colours model the background, as a fraction of the side.
  public var borderFraction: Float = 0.1

  public init() {}

  /// Saliency in [0, 1] for an RGB image (interleaved HWC bytes).
  public func saliency(rgb: [UInt8], width: Int, height: Int) -> [Float] {
    let n = width * height
    precondition(rgb.count == n * 3, "saliency needs RGB: \(rgb.count) bytes for \(width)x\(height)")
    let lab = Self.lab(rgb)
    var total = [Float](repeating: 0, count: n)
    for ch in 0..<3 {
      let plane = (0..<n).map { lab[$0 * 3 + ch] }
      let d = mbd(plane, width, height)
      for i in 0..<n { total[i] += d[i] }
    }
    let contrast = boundaryContrast(lab, width, height)
    normalise(&total)
    var s = (0..<n).map { total[$0] + contrast[$0] }
    normalise(&s)
    s = boxBlur(s, width, height, radius: max(1, min(width, height) / 50))
    // Contrast enhancement (the paper's sigmoid, centred on the map's mean value).
    let mean = s.reduce(0, +) / Float(max(n, 1))
    s = s.map { 1 / (1 + expf(-10 * ($0 - mean))) }
    normalise(&s)
    return s
  }

  /// FastMBD: D(x) = min over paths from the border of (max - min) of the values on the path,
  /// approximated by alternating forward and backward raster scans.
  func mbd(_ img: [Float], _ w: Int, _ h: Int) -> [Float] {
    var d = [Float](repeating: .infinity, count: w * h)
    var hi = img, lo = img
    for y in 0..<h { for x in 0..<w where y == 0 || x == 0 || y == h - 1 || x == w - 1 { d[y * w + x] = 0 } }
    func relax(_ i: Int, _ j: Int) {
      let v = img[i]
      let u = max(hi[j], v), l = min(lo[j], v)
      if u - l < d[i] { d[i] = u - l; hi[i] = u; lo[i] = l }
    }
    for pass in 0..<passes {
      if pass % 2 == 0 {
        for y in 1..<max(h - 1, 1) { for x in 1..<max(w - 1, 1) {
          let i = y * w + x
          relax(i, i - w); relax(i, i - 1)
        } }
      } else {
        for y in stride(from: h - 2, to: 0, by: -1) { for x in stride(from: w - 2, to: 0, by: -1) {
          let i = y * w + x
          relax(i, i + w); relax(i, i + 1)
        } }
      }
    }
    return d.map { $0.isFinite ? $0 : 0 }
  }

  /// The paper's backgroundness cue: for each of the four border bands, the Mahalanobis-like
  /// colour distance of every pixel to the band's mean (diagonal covariance); the sum of the
  /// four, minus the largest (a band covered by the object should not count).
  func boundaryContrast(_ lab: [Float], _ w: Int, _ h: Int) -> [Float] {
    let n = w * h
    let bw = max(1, Int(Float(w) * borderFraction)), bh = max(1, Int(Float(h) * borderFraction))
    let bands: [[Int]] = [
      (0..<bh).flatMap { y in (0..<w).map { y * w + $0 } },
      ((h - bh)..<h).flatMap { y in (0..<w).map { y * w + $0 } },
      (0..<h).flatMap { y in (0..<bw).map { y * w + $0 } },
      (0..<h).flatMap { y in ((w - bw)..<w).map { y * w + $0 } },
    ]
    var maps: [[Float]] = []
    for band in bands {
      var mean = [Float](repeating: 0, count: 3), variance = [Float](repeating: 0, count: 3)
      for i in band { for c in 0..<3 { mean[c] += lab[i * 3 + c] } }
      for c in 0..<3 { mean[c] /= Float(band.count) }
      for i in band { for c in 0..<3 { let d = lab[i * 3 + c] - mean[c]; variance[c] += d * d } }
      for c in 0..<3 { variance[c] = variance[c] / Float(band.count) + 1 }
      var m = [Float](repeating: 0, count: n)
      for i in 0..<n {
        var s: Float = 0
        for c in 0..<3 { let d = lab[i * 3 + c] - mean[c]; s += d * d / variance[c] }
        m[i] = s.squareRoot()
      }
      normalise(&m)
      maps.append(m)
    }
    return (0..<n).map { i in
      let v = maps.map { $0[i] }
      return v.reduce(0, +) - v.max()!
    }
  }

  /// sRGB bytes to CIE Lab (D65), interleaved.
  static func lab(_ rgb: [UInt8]) -> [Float] {
    func linear(_ v: UInt8) -> Float {
      let c = Float(v) / 255
      return c <= 0.04045 ? c / 12.92 : powf((c + 0.055) / 1.055, 2.4)
    }
    func f(_ t: Float) -> Float { t > 0.008856 ? cbrtf(t) : 7.787 * t + 16 / 116 }
    var out = [Float](repeating: 0, count: rgb.count)
    for p in 0..<(rgb.count / 3) {
      let r = linear(rgb[p * 3]), g = linear(rgb[p * 3 + 1]), b = linear(rgb[p * 3 + 2])
      let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
      let y = 0.2126 * r + 0.7152 * g + 0.0722 * b
      let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883
      let (fx, fy, fz) = (f(x), f(y), f(z))
      out[p * 3] = 116 * fy - 16
      out[p * 3 + 1] = 500 * (fx - fy)
      out[p * 3 + 2] = 200 * (fy - fz)
    }
    return out
  }
}

/// Scales values to [0, 1] (a constant map becomes all zero).
func normalise(_ v: inout [Float]) {
  guard let lo = v.min(), let hi = v.max(), hi > lo else { for i in v.indices { v[i] = 0 }; return }
  let inv = 1 / (hi - lo)
  for i in v.indices { v[i] = (v[i] - lo) * inv }
}

/// Mean over a (2r+1)^2 window, clamped at the edges (separable).
func boxBlur(_ v: [Float], _ w: Int, _ h: Int, radius r: Int) -> [Float] {
  var tmp = [Float](repeating: 0, count: v.count), out = tmp
  for y in 0..<h { for x in 0..<w {
    var s: Float = 0, c: Float = 0
    for k in max(0, x - r)...min(w - 1, x + r) { s += v[y * w + k]; c += 1 }
    tmp[y * w + x] = s / c
  } }
  for y in 0..<h { for x in 0..<w {
    var s: Float = 0, c: Float = 0
    for k in max(0, y - r)...min(h - 1, y + r) { s += tmp[k * w + x]; c += 1 }
    out[y * w + x] = s / c
  } }
  return out
}
