@testable import AEPSLCRF
import Foundation

/// A deterministic generator (PCG-style LCG), so fixtures are the same everywhere.
struct FixtureRandom {
  var state: UInt64
  init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1 }
  mutating func uniform() -> Float {
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return Float(state >> 40) / Float(1 << 24)
  }
}

/// A tiny image of four coloured quadrants with pixel noise, and probabilities that favour
/// each quadrant's label by `signal` nats over uniform noise.
struct TinyScene: CustomStringConvertible {
  let width: Int
  let height: Int
  let labels: Int
  let image: [UInt8]
  /// [labels][height][width].
  let probabilities: [Float]
  let truth: [Int32]

  init(width: Int, height: Int, labels: Int, signal: Float = 0.4, seed: UInt64 = 1) {
    var random = FixtureRandom(seed: seed)
    self.width = width
    self.height = height
    self.labels = labels
    let n = width * height
    var truth = [Int32](repeating: 0, count: n)
    for y in 0..<height {
      for x in 0..<width { truth[y * width + x] = Int32(((x < width / 2 ? 0 : 1) + (y < height / 2 ? 0 : 2)) % labels) }
    }
    var image = [UInt8](repeating: 0, count: n * 3)
    for i in 0..<n {
      for c in 0..<3 {
        let base = Float((Int(truth[i]) * 70 + c * 40) % 256)
        image[i * 3 + c] = UInt8(max(0, min(255, base + 30 * (random.uniform() - 0.5))))
      }
    }
    var probabilities = [Float](repeating: 0, count: labels * n)
    for i in 0..<n {
      var row = [Float](repeating: 0, count: labels)
      for l in 0..<labels { row[l] = exp((l == Int(truth[i]) ? signal : 0) + random.uniform()) }
      let total = row.reduce(0, +)
      for l in 0..<labels { probabilities[l * n + i] = row[l] / total }
    }
    self.image = image
    self.probabilities = probabilities
    self.truth = truth
  }

  var description: String { "\(width)x\(height), \(labels) labels" }

  /// The label of the highest probability per pixel (the first on ties).
  var unaryArgmax: [Int32] {
    let n = width * height
    return (0..<n).map { i in
      var best = 0
      for l in 1..<labels where probabilities[l * n + i] > probabilities[best * n + i] { best = l }
      return Int32(best)
    }
  }
}

/// Random features [count][dimensions] in [0, scale).
func randomFeatures(count: Int, dimensions: Int, scale: Float, seed: UInt64) -> [Float] {
  var random = FixtureRandom(seed: seed)
  return (0..<(count * dimensions)).map { _ in random.uniform() * scale }
}

/// Fraction of equal entries.
func agreement(_ a: [Int32], _ b: [Int32]) -> Double {
  Double(zip(a, b).filter { $0 == $1 }.count) / Double(max(1, a.count))
}

/// The argmax of every row of [pixel][labels] values.
func rowArgmax(_ q: [Double], labels: Int) -> [Int32] {
  stride(from: 0, to: q.count, by: labels).map { start in
    var best = 0
    for l in 1..<labels where q[start + l] > q[start + best] { best = l }
    return Int32(best)
  }
}

extension Marginals {
  /// [pixel][label] as Double, the reference's layout.
  var pixelMajor: [Double] {
    var out = [Double](repeating: 0, count: width * height * labels)
    for i in 0..<(width * height) { for l in 0..<labels { out[i * labels + l] = Double(probability(label: l, pixel: i)) } }
    return out
  }
}
