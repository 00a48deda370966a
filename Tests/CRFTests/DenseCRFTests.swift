@testable import AEPSLCRF
import AEPSLTestSupport
import Foundation
import Testing

/// A CRF configuration on a tiny scene, printed in test names.
struct CRFCase: CustomStringConvertible, Sendable {
  let name: String
  let width: Int
  let height: Int
  let labels: Int
  let parameters: CRFParameters
  var description: String { "\(name), \(width)x\(height), \(labels) labels" }

  static func make(_ name: String, _ w: Int, _ h: Int, _ labels: Int, _ edit: (inout CRFParameters) -> Void) -> CRFCase {
    var p = CRFParameters()
    edit(&p)
    return CRFCase(name: name, width: w, height: h, labels: labels, parameters: p)
  }

  static let all: [CRFCase] = [
    make("DeepLab defaults", 24, 18, 5) { _ in },
    make("local kernels, weak weights", 20, 15, 21) {
      $0.bilateralSXY = 4; $0.bilateralSRGB = 20; $0.bilateralWeight = 2; $0.gaussianSXY = 1.5; $0.gaussianWeight = 1
    },
    make("separable Gaussian", 22, 16, 9) { $0.gaussianFilter = .separable; $0.bilateralSXY = 6; $0.bilateralSRGB = 20 },
    make("normalise before", 18, 14, 4) { $0.normalization = .before; $0.bilateralSXY = 5; $0.bilateralWeight = 3 },
    make("normalise after", 18, 14, 4) { $0.normalization = .after; $0.bilateralSXY = 5; $0.bilateralWeight = 3 },
    make("no normalisation", 18, 14, 4) {
      $0.normalization = .none; $0.bilateralSXY = 5; $0.bilateralWeight = 0.3; $0.gaussianWeight = 0.3
    },
  ]

  var scene: TinyScene { TinyScene(width: width, height: height, labels: labels) }

  func crf(threads: Int = 2) throws -> DenseCRF {
    let s = scene
    return try DenseCRF(image: s.image, width: width, height: height, probabilities: s.probabilities, labels: labels,
                        parameters: parameters, threads: threads)
  }
}

@Suite("Dense CRF")
struct DenseCRFTests {
  @Test("the fast path matches the plain reference evaluating the same kernels", arguments: CRFCase.all)
  func matchesReference(_ c: CRFCase) throws {
    let crf = try c.crf()
    let fast = crf.inference(iterations: c.parameters.iterations)
    let reference = try ReferenceCRF(crf).inference(iterations: c.parameters.iterations, kernels: .asEvaluated)
    expectClose(fast.pixelMajor, reference, tolerance: 1e-4, shape: [c.width * c.height, c.labels], "Q")
    #expect(fast.labelMap() == rowArgmax(reference, labels: c.labels))
  }

  /// The stated tolerance against the model itself. The permutohedral lattice approximates
  /// the Gaussian kernels (its normalised filter is off by up to ~0.1 of the signal range,
  /// see LatticeTests), so Q may differ from the brute-force CRF: by at most 0.01 per entry
  /// with symmetric (DeepLab's) or after-normalisation, 0.1 with the others, which expose the
  /// lattice's kernel scale; and at least 99% of the labels must agree.
  @Test("the CRF agrees with the brute-force O(N^2) CRF: |dQ| <= 0.01 (0.1), >= 99% labels", arguments: CRFCase.all)
  func matchesBruteForce(_ c: CRFCase) throws {
    let crf = try c.crf()
    let fast = crf.inference(iterations: c.parameters.iterations)
    let exact = try ReferenceCRF(crf).inference(iterations: c.parameters.iterations, kernels: .bruteForce)
    let q = fast.pixelMajor
    let worst = zip(q, exact).map { abs($0 - $1) }.max() ?? 0
    let same = agreement(fast.labelMap(), rowArgmax(exact, labels: c.labels))
    print("\(c): max |dQ| vs brute force \(worst), labels equal \(same)")
    let normalization = c.parameters.normalization
    #expect(worst <= (normalization == .symmetric || normalization == .after ? 0.01 : 0.1))
    #expect(same >= 0.99)
  }

  @Test("a separable Gaussian kernel alone matches the brute-force CRF to 1e-4 when truncated at 6 sigma")
  func separableMatchesBruteForce() throws {
    let scene = TinyScene(width: 21, height: 13, labels: 6, signal: 0.2)
    let crf = try DenseCRF(width: 21, height: 13, labels: 6)
    try crf.setUnary(probabilities: scene.probabilities)
    try crf.addPairwiseGaussian(sxy: 2, compatibility: .potts(weight: 2), filter: .separable, truncation: 6)
    let fast = crf.inference(iterations: 5)
    let exact = try ReferenceCRF(crf).inference(iterations: 5, kernels: .bruteForce)
    expectClose(fast.pixelMajor, exact, tolerance: 1e-4, shape: [21 * 13, 6])
  }

  @Test("mean field never raises the free energy (brute-force kernels, Double)", arguments: CRFCase.all)
  func energyBruteForce(_ c: CRFCase) throws {
    guard c.parameters.normalization == .symmetric || c.parameters.normalization == .none else { return }
    let reference = try ReferenceCRF(c.crf())
    var energies: [Double] = []
    _ = try reference.inference(iterations: c.parameters.iterations, kernels: .bruteForce) { _, q in
      energies.append(try! reference.freeEnergy(q, kernels: .bruteForce))
    }
    for t in 1..<energies.count {
      #expect(energies[t] <= energies[t - 1] + 1e-9 * abs(energies[t - 1]), "step \(t): \(energies[t - 1]) -> \(energies[t])")
    }
    #expect(energies.last! < energies.first!)
  }

  @Test("the fast CRF's free energy does not rise (to Float rounding, 1e-6 relative)", arguments: CRFCase.all)
  func energyFast(_ c: CRFCase) throws {
    guard c.parameters.normalization == .symmetric || c.parameters.normalization == .none else { return }
    let crf = try c.crf()
    var energies: [Double] = []
    _ = crf.inference(iterations: c.parameters.iterations) { _, q in energies.append(crf.freeEnergy(q)) }
    #expect(energies.count == c.parameters.iterations + 1)
    for t in 1..<energies.count {
      #expect(energies[t] <= energies[t - 1] + 1e-6 * abs(energies[t - 1]), "step \(t): \(energies[t - 1]) -> \(energies[t])")
    }
    #expect(energies.last! < energies.first!)
  }

  @Test("freeEnergy agrees with the reference's definition", arguments: CRFCase.all)
  func freeEnergyDefinition(_ c: CRFCase) throws {
    let crf = try c.crf()
    let q = crf.inference(iterations: 2)
    let expected = try ReferenceCRF(crf).freeEnergy(q.pixelMajor, kernels: .asEvaluated)
    expectClose([crf.freeEnergy(q) / abs(expected)], [expected / abs(expected)], tolerance: 1e-5)
  }

  @Test("with zero pairwise weights the CRF returns the unary's argmax", arguments: [1, 5, 21])
  func zeroWeights(labels: Int) throws {
    let scene = TinyScene(width: 19, height: 11, labels: labels, signal: 0.05, seed: 9)
    var p = CRFParameters()
    p.gaussianWeight = 0
    p.bilateralWeight = 0
    let skipped = try DenseCRF.segment(image: scene.image, width: 19, height: 11, probabilities: scene.probabilities,
                                       labels: labels, parameters: p)
    #expect(skipped == scene.unaryArgmax)
    // Potentials present but weighted 0: messages are computed and multiplied by 0.
    let crf = try DenseCRF(width: 19, height: 11, labels: labels)
    try crf.setUnary(probabilities: scene.probabilities)
    try crf.addPairwiseGaussian(sxy: 3, compatibility: .potts(weight: 0))
    try crf.addPairwiseBilateral(sxy: 80, srgb: 13, image: scene.image, compatibility: .potts(weight: 0))
    try crf.addPairwiseGaussian(sxy: 3, compatibility: .matrix([Float](repeating: 0, count: labels * labels)),
                                filter: .separable)
    #expect(crf.labelMap(iterations: 10) == scene.unaryArgmax)
    // With the DeepLab weights the same scene changes.
    let refined = try DenseCRF.segment(image: scene.image, width: 19, height: 11, probabilities: scene.probabilities,
                                       labels: labels, parameters: CRFParameters())
    if labels > 1 { #expect(refined != scene.unaryArgmax) }
  }

  @Test("zero iterations give softmax(-U): the clamped, renormalised probabilities")
  func zeroIterations() throws {
    let scene = TinyScene(width: 9, height: 7, labels: 12)
    let crf = try DenseCRF(image: scene.image, width: 9, height: 7, probabilities: scene.probabilities, labels: 12)
    let q = crf.inference(iterations: 0).channelsFirst()
    expectClose(q, scene.probabilities.map(Double.init), tolerance: 1e-6, shape: [12, 7, 9])
  }

  @Test("Potts(w) equals the compatibility matrix w (1 - I)")
  func pottsIsMatrix() throws {
    let scene = TinyScene(width: 16, height: 12, labels: 7, signal: 0.2)
    func run(_ compatibility: (Float) -> LabelCompatibility) throws -> Marginals {
      let crf = try DenseCRF(width: 16, height: 12, labels: 7)
      try crf.setUnary(probabilities: scene.probabilities)
      try crf.addPairwiseGaussian(sxy: 3, compatibility: compatibility(3))
      try crf.addPairwiseBilateral(sxy: 6, srgb: 13, image: scene.image, compatibility: compatibility(4))
      return crf.inference(iterations: 5)
    }
    let potts = try run { .potts(weight: $0) }
    let matrix = try run { w in .matrix((0..<49).map { $0 / 7 == $0 % 7 ? 0 : w }) }
    expectClose(potts.channelsFirst(), matrix.channelsFirst().map(Double.init), tolerance: 1e-5)
    #expect(potts.labelMap() == matrix.labelMap())
  }

  @Test("one thread and two threads give the same result",
        arguments: [SpatialFilter.lattice, .separable], [4, 21])
  func threadCounts(filter: SpatialFilter, labels: Int) throws {
    // Large enough (over 2048 pixels) for two parts per pass.
    let scene = TinyScene(width: 72, height: 48, labels: labels, signal: 0.3)
    var p = CRFParameters()
    p.gaussianFilter = filter
    func run(_ threads: Int) throws -> Marginals {
      try DenseCRF(image: scene.image, width: 72, height: 48, probabilities: scene.probabilities, labels: labels,
                   parameters: p, threads: threads).inference(iterations: 10)
    }
    let one = try run(1), two = try run(2)
    expectClose(two.channelsFirst(), one.channelsFirst().map(Double.init), tolerance: 1e-5)
    #expect(one.labelMap() == two.labelMap())
  }

  @Test("on a larger scene with noisy unaries the CRF recovers more of the truth")
  func improvesAccuracy() throws {
    let scene = TinyScene(width: 96, height: 64, labels: 4, signal: 0.35, seed: 5)
    let before = agreement(scene.unaryArgmax, scene.truth)
    let after = agreement(try DenseCRF.segment(image: scene.image, width: 96, height: 64, probabilities: scene.probabilities,
                                               labels: 4), scene.truth)
    #expect(after > before + 0.2, "accuracy \(before) -> \(after)")
  }

  @Test("labelMap (argmax of the last logits) equals the argmax of the marginals", arguments: CRFCase.all)
  func labelMapMatchesMarginals(_ c: CRFCase) throws {
    let crf = try c.crf()
    for iterations in [0, 1, c.parameters.iterations] {
      #expect(crf.labelMap(iterations: iterations) == crf.inference(iterations: iterations).labelMap())
    }
  }

  @Test("the DeepLab defaults are the documented ones")
  func defaults() {
    let p = CRFParameters()
    #expect(p.iterations == 10)
    #expect(p.gaussianSXY == 3 && p.gaussianWeight == 3)
    #expect(p.bilateralSXY == 80 && p.bilateralSRGB == 13 && p.bilateralWeight == 10)
    #expect(p.normalization == .symmetric && p.probabilityFloor == 1e-5)
  }

  @Test("scaleWithImage scales both spatial deviations by the longer side / the reference side")
  func scaleWithImage() throws {
    var p = CRFParameters()
    p.scaleWithImage = false
    #expect(p.forImage(width: 128, height: 96) == p, "off: the deviations are pixels")
    p.scaleWithImage = true
    let small = p.forImage(width: 96, height: 128)
    #expect(abs(small.gaussianSXY - 3 * 128 / 500) < 1e-6 && abs(small.bilateralSXY - 80 * 128 / 500) < 1e-5)
    #expect(small.bilateralSRGB == p.bilateralSRGB && small.gaussianWeight == p.gaussianWeight
            && small.bilateralWeight == p.bilateralWeight && small.iterations == p.iterations)
    #expect(!small.scaleWithImage && small.forImage(width: 96, height: 128) == small, "resolving twice changes nothing")
    let voc = p.forImage(width: 500, height: 375)
    #expect(voc.gaussianSXY == 3 && voc.bilateralSXY == 80, "a VOC-sized image keeps DeepLab's values")
    p.referenceSide = 250
    #expect(p.forImage(width: 500, height: 100).bilateralSXY == 160)
    // The CRF built from scaled parameters is the one built from the resolved pixels.
    let scene = TinyScene(width: 40, height: 30, labels: 4, signal: 0.3)
    p.referenceSide = 500
    let scaled = try DenseCRF.segment(image: scene.image, width: 40, height: 30, probabilities: scene.probabilities,
                                      labels: 4, parameters: p)
    let pixels = try DenseCRF.segment(image: scene.image, width: 40, height: 30, probabilities: scene.probabilities,
                                      labels: 4, parameters: p.forImage(width: 40, height: 30))
    #expect(scaled == pixels)
    p.referenceSide = 0
    #expect(throws: CRFError.self) { try p.validate() }
  }

  @Test("bad sizes and parameters are rejected with errors")
  func badInputs() throws {
    let crf = try DenseCRF(width: 4, height: 3, labels: 2)
    #expect(throws: CRFError.self) { try crf.setUnary(probabilities: [Float](repeating: 0.5, count: 23)) }
    #expect(throws: CRFError.self) { try crf.setUnary(energies: [Float](repeating: 0.5, count: 25)) }
    #expect(throws: CRFError.self) { try crf.addPairwiseBilateral(sxy: 80, srgb: 13, image: [0, 0, 0], compatibility: .potts(weight: 1)) }
    #expect(throws: CRFError.self) { try crf.addPairwiseGaussian(sxy: 3, compatibility: .matrix([1, 2, 3])) }
    #expect(throws: CRFError.self) { try crf.addPairwiseGaussian(sxy: 0, compatibility: .potts(weight: 1)) }
    #expect(throws: CRFError.self) { try DenseCRF(width: 0, height: 3, labels: 2) }
    var energies = [Float](repeating: 0.5, count: 24)
    energies[17] = .infinity
    #expect(throws: CRFError.self) { try crf.setUnary(energies: energies) }
    energies[17] = .nan
    #expect(throws: CRFError.self) { try crf.setUnary(probabilities: energies) }
    var p = CRFParameters()
    p.bilateralSRGB = -1
    #expect(throws: CRFError.self) { try p.validate() }
  }
}
