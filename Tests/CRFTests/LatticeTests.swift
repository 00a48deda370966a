@testable import AEPSLCRF
import AEPSLTestSupport
import Foundation
import Testing

/// Lattice shapes that print well in test names.
struct LatticeCase: CustomStringConvertible, Sendable {
  let count: Int
  let dimensions: Int
  let scale: Float
  var description: String { "\(count) points, d=\(dimensions), features in [0, \(scale))" }
  static let all = [
    LatticeCase(count: 300, dimensions: 1, scale: 20), LatticeCase(count: 400, dimensions: 2, scale: 8),
    LatticeCase(count: 500, dimensions: 5, scale: 4), LatticeCase(count: 300, dimensions: 5, scale: 40),
    LatticeCase(count: 200, dimensions: 7, scale: 3),
  ]
}

@Suite("Permutohedral lattice")
struct LatticeTests {
  @Test("the fast construction finds the same simplices and weights as the reference", arguments: LatticeCase.all)
  func construction(_ c: LatticeCase) throws {
    let features = randomFeatures(count: c.count, dimensions: c.dimensions, scale: c.scale, seed: 7)
    let reference = try PermutohedralLattice(referenceFeatures: features, dimensions: c.dimensions)
    for threads in [1, 2] {
      let fast = try PermutohedralLattice(features: features, dimensions: c.dimensions, threads: threads)
      #expect(fast.vertexCount == reference.vertexCount)
      #expect(fast.cornerVertices == reference.cornerVertices)
      expectClose(fast.cornerWeights, reference.cornerWeights.map(Double.init), tolerance: 1e-5, "barycentric weights")
      // Barycentric weights of a point sum to 1.
      let d1 = c.dimensions + 1
      for i in 0..<c.count {
        let sum = fast.cornerWeights[(i * d1)..<((i + 1) * d1)].reduce(0, +)
        #expect(abs(sum - 1) < 1e-5, "point \(i): weights sum to \(sum)")
      }
    }
  }

  @Test("a large lattice built on two threads is the reference's", arguments: [2, 5])
  func largeConstruction(dimensions: Int) throws {
    let count = 12_000
    let features = randomFeatures(count: count, dimensions: dimensions, scale: 6, seed: 21)
    let reference = try PermutohedralLattice(referenceFeatures: features, dimensions: dimensions)
    let fast = try PermutohedralLattice(features: features, dimensions: dimensions, threads: 2)
    #expect(fast.vertexCount == reference.vertexCount)
    #expect(fast.cornerVertices == reference.cornerVertices)
    let values = randomFeatures(count: count, dimensions: 21, scale: 1, seed: 22)
    expectClose(fast.filter(values, valueSize: 21, threads: 2),
                reference.filterReference(values.map(Double.init), valueSize: 21), tolerance: 2e-5)
  }

  @Test("the fast filter (SIMD rows, per-thread partial splats) matches the reference seqCompute",
        arguments: LatticeCase.all, [1, 5, 21, 24])
  func filter(_ c: LatticeCase, valueSize: Int) throws {
    let features = randomFeatures(count: c.count, dimensions: c.dimensions, scale: c.scale, seed: 11)
    let values = randomFeatures(count: c.count, dimensions: valueSize, scale: 1, seed: 12)
    let lattice = try PermutohedralLattice(features: features, dimensions: c.dimensions)
    let expected = lattice.filterReference(values.map(Double.init), valueSize: valueSize)
    for threads in [1, 2] {
      let actual = lattice.filter(values, valueSize: valueSize, threads: threads)
      expectClose(actual, expected, tolerance: 2e-5, shape: [c.count, valueSize], "threads \(threads)")
    }
  }

  @Test("the lattice approximates the normalised Gaussian filter (error < 0.15, mean < 0.05, signal range 4)",
        arguments: [2, 5])
  func approximatesGaussian(dimensions: Int) throws {
    // A grid of points (like pixels) with a smooth signal: compare the normalised filter
    // (K v) / (K 1) against brute force.
    let side = dimensions == 2 ? 30 : 12
    var features: [Float] = [], signal: [Double] = []
    var random = FixtureRandom(seed: 3)
    for y in 0..<side {
      for x in 0..<side {
        features += [Float(x) / 2.5, Float(y) / 2.5]
        if dimensions == 5 { features += [random.uniform() * 2, random.uniform() * 2, random.uniform() * 2] }
        signal.append(sin(Double(x) / 4) + cos(Double(y) / 5))
      }
    }
    let n = side * side
    let lattice = try PermutohedralLattice(features: features, dimensions: dimensions)
    let approx = lattice.filterReference(signal, valueSize: 1)
    let approxOnes = lattice.filterReference([Double](repeating: 1, count: n), valueSize: 1)
    var worst = 0.0, mean = 0.0
    for i in 0..<n {
      var num = 0.0, den = 0.0
      for j in 0..<n {
        var d2 = 0.0
        for k in 0..<dimensions { let t = Double(features[i * dimensions + k] - features[j * dimensions + k]); d2 += t * t }
        let w = exp(-0.5 * d2)
        num += w * signal[j]
        den += w
      }
      let error = abs(approx[i] / approxOnes[i] - num / den)
      worst = max(worst, error)
      mean += error / Double(n)
    }
    // The signal spans [-2, 2]; densecrf's lattice blurs somewhat more than the exact kernel.
    print("lattice d=\(dimensions): normalised filter error worst \(worst), mean \(mean)")
    #expect(worst < 0.15 && mean < 0.05, "worst \(worst), mean \(mean)")
  }

  @Test("features too large for 16-bit lattice coordinates are rejected with an error")
  func overflow() {
    let features: [Float] = [0, 0, 50_000, 50_000]
    #expect(throws: CRFError.self) { try PermutohedralLattice(features: features, dimensions: 2) }
    #expect(throws: CRFError.self) { try PermutohedralLattice(referenceFeatures: features, dimensions: 2) }
  }

  @Test("dimensions outside 1...7 and ragged features are rejected", arguments: [0, 8])
  func badDimensions(_ d: Int) {
    #expect(throws: CRFError.self) { try PermutohedralLattice(features: [Float](repeating: 0, count: 18), dimensions: d) }
    #expect(throws: CRFError.self) { try PermutohedralLattice(features: [Float](repeating: 0, count: 7), dimensions: 2) }
  }
}

@Suite("Separable Gaussian")
struct SeparableGaussianTests {
  @Test("the separable blur equals the brute-force truncated Gaussian", arguments: KernelNormalization.allCases)
  func separable(_ normalization: KernelNormalization) throws {
    let (w, h, labels) = (23, 17, 11)
    let scene = TinyScene(width: w, height: h, labels: labels)
    let crf = try DenseCRF(width: w, height: h, labels: labels, threads: 2)
    try crf.setUnary(probabilities: scene.probabilities)
    try crf.addPairwiseGaussian(sxy: 2, compatibility: .potts(weight: 1), normalization: normalization,
                                filter: .separable, truncation: 2.5)
    let q = crf.inference(iterations: 0).pixelMajor
    let reference = ReferenceCRF(crf)
    let expected = try reference.message(q, potential: 0, kernels: .asEvaluated)
    let actual = try crf.messages(q.map(Float.init), potential: 0)
    expectClose(actual, expected, tolerance: 1e-5, shape: [w * h, labels])
  }
}
