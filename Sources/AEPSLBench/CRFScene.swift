import Foundation

/// An image with class probabilities for the benchmark.
public struct CRFScene {
  public let width: Int
  public let height: Int
  public let labels: Int
  /// RGB bytes, [height][width][3].
  public let image: [UInt8]
  /// [labels][height][width].
  public let probabilities: [Float]
  /// The true class of every pixel (synthetic scenes only).
  public let truth: [Int32]?
  public let name: String

  public init(width: Int, height: Int, labels: Int, image: [UInt8], probabilities: [Float], truth: [Int32]?, name: String) {
    self.width = width; self.height = height; self.labels = labels
    self.image = image; self.probabilities = probabilities; self.truth = truth; self.name = name
  }

  /// Ellipses and rectangles of classes 1..<labels over a background of class 0, each class
  /// with its own colour, with gradients and pixel noise; probabilities from noisy class
  /// scores on a grid 8 times coarser (like a stride-8 network), bilinearly upsampled,
  /// softmax. Deterministic for a seed.
  public static func synthetic(width: Int, height: Int, labels: Int, seed: UInt64) -> CRFScene {
    var rng = SplitMix(state: seed &+ 0x5EED)
    let n = width * height
    var truth = [Int32](repeating: 0, count: n)
    var palette: [(Float, Float, Float)] = []
    for _ in 0..<labels { palette.append((rng.uniform() * 255, rng.uniform() * 255, rng.uniform() * 255)) }
    let shapes = 14
    for s in 0..<shapes {
      let label = Int32(1 + (s % (labels - 1)))
      let cx = rng.uniform() * Float(width), cy = rng.uniform() * Float(height)
      let rx = (0.06 + 0.16 * rng.uniform()) * Float(width), ry = (0.06 + 0.2 * rng.uniform()) * Float(height)
      let ellipse = rng.uniform() < 0.6
      for y in 0..<height {
        for x in 0..<width {
          let dx = (Float(x) - cx) / rx, dy = (Float(y) - cy) / ry
          if ellipse ? dx * dx + dy * dy <= 1 : abs(dx) <= 1 && abs(dy) <= 1 { truth[y * width + x] = label }
        }
      }
    }
    var image = [UInt8](repeating: 0, count: n * 3)
    for y in 0..<height {
      for x in 0..<width {
        let i = y * width + x
        let c = palette[Int(truth[i])]
        let shade = 0.75 + 0.5 * Float(x + y) / Float(width + height)
        for (k, v) in [c.0, c.1, c.2].enumerated() {
          let value = v * shade + 18 * rng.normal()
          image[i * 3 + k] = UInt8(max(0, min(255, value.rounded())))
        }
      }
    }
    // Class scores on the coarse grid: the true class of the cell's centre, plus noise.
    let stride = 8
    let gw = (width + stride - 1) / stride + 1, gh = (height + stride - 1) / stride + 1
    var grid = [Float](repeating: 0, count: labels * gw * gh)
    for gy in 0..<gh {
      for gx in 0..<gw {
        let x = min(width - 1, gx * stride), y = min(height - 1, gy * stride)
        let t = Int(truth[y * width + x])
        for l in 0..<labels {
          grid[(l * gh + gy) * gw + gx] = (l == t ? 3.0 : 0) + 1.6 * rng.normal()
        }
      }
    }
    var probabilities = [Float](repeating: 0, count: labels * n)
    var logits = [Float](repeating: 0, count: labels)
    for y in 0..<height {
      let fy = Float(y) / Float(stride), y0 = min(gh - 2, Int(fy)), wy = fy - Float(y0)
      for x in 0..<width {
        let fx = Float(x) / Float(stride), x0 = min(gw - 2, Int(fx)), wx = fx - Float(x0)
        var mx = -Float.infinity
        for l in 0..<labels {
          let g = { (gx: Int, gy: Int) in grid[(l * gh + gy) * gw + gx] }
          let v = (1 - wy) * ((1 - wx) * g(x0, y0) + wx * g(x0 + 1, y0)) + wy * ((1 - wx) * g(x0, y0 + 1) + wx * g(x0 + 1, y0 + 1))
          logits[l] = v
          mx = max(mx, v)
        }
        var total: Float = 0
        for l in 0..<labels { logits[l] = exp(logits[l] - mx); total += logits[l] }
        for l in 0..<labels { probabilities[l * n + y * width + x] = logits[l] / total }
      }
    }
    return CRFScene(width: width, height: height, labels: labels, image: image, probabilities: probabilities,
                    truth: truth, name: "synthetic scene (seed \(seed))")
  }

  public static func argmax(_ planes: [Float], labels: Int, pixels: Int) -> [Int32] {
    (0..<pixels).map { i in
      var best = 0
      for l in 1..<labels where planes[l * pixels + i] > planes[best * pixels + i] { best = l }
      return Int32(best)
    }
  }
}

/// SplitMix64, for a scene that is the same on every machine.
private struct SplitMix {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
  mutating func normal() -> Float {
    let u = max(uniform(), 1e-7), v = uniform()
    return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
  }
}
