@testable import AEPSLCRF
import AEPSLTestSupport
import Foundation
import Testing

/// The AVX2/FMA kernels (CCRFKernels) against the portable Swift SIMD code they replace on
/// CPUs that have AVX2: the same CRF, marginals and labels, for every row width the kernels
/// specialise or loop over (1, 2, 3 vectors of 8 labels) and one they leave to the portable
/// code (9 vectors), on one and two threads. Fused multiply-adds round once instead of twice,
/// so values differ in the last bits, not more.
@Suite("CRF vector code", .enabled(if: CRFVectorCode.best == .avx2, "this CPU has no AVX2 and FMA: only the portable code runs"))
struct VectorCodeTests {
  struct Case: CustomStringConvertible, Sendable {
    let labels: Int
    let threads: Int
    var description: String { "\(labels) labels (\((labels + 7) / 8) vectors), \(threads) thread(s)" }
  }

  static let cases = [5, 12, 21, 70].flatMap { l in [1, 2].map { Case(labels: l, threads: $0) } }

  static func crf(_ c: Case, _ code: CRFVectorCode) throws -> DenseCRF {
    let scene = TinyScene(width: 48, height: 36, labels: c.labels)
    var parameters = CRFParameters()
    parameters.bilateralSXY = 12
    return try DenseCRF(image: scene.image, width: 48, height: 36, probabilities: scene.probabilities, labels: c.labels,
                        parameters: parameters, threads: c.threads, vectorCode: code)
  }

  @Test("AVX2 and portable code give the same marginals (|dQ| <= 1e-5) and labels", arguments: cases)
  func sameMarginals(_ c: Case) throws {
    let portable = try Self.crf(c, .portable), avx2 = try Self.crf(c, .avx2)
    let iterations = CRFParameters().iterations
    let q0 = portable.inference(iterations: iterations), q1 = avx2.inference(iterations: iterations)
    expectClose(q1.pixelMajor, q0.pixelMajor, tolerance: 1e-5, shape: [48 * 36, c.labels], "Q")
    #expect(q1.labelMap() == q0.labelMap())
    #expect(avx2.labelMap(iterations: iterations) == portable.labelMap(iterations: iterations))
  }

  @Test("AVX2 and portable unaries agree, from probabilities and from energies, and both reject NaN",
        arguments: [5, 21, 70])
  func sameUnary(labels: Int) throws {
    var random = FixtureRandom(seed: 3)
    let (w, h) = (17, 9)
    let probabilities = (0..<(labels * w * h)).map { _ in random.uniform() }
    let energies = probabilities.map { 5 * $0 - 2 }
    let crfs = try [CRFVectorCode.portable, .avx2].map { try DenseCRF(width: w, height: h, labels: labels, vectorCode: $0) }
    for crf in crfs { try crf.setUnary(probabilities: probabilities, floor: 1e-3) }
    expectClose(crfs[1].unaryEnergies, crfs[0].unaryEnergies.map(Double.init), tolerance: 1e-6, "from probabilities")
    for crf in crfs { try crf.setUnary(energies: energies) }
    #expect(crfs[1].unaryEnergies == crfs[0].unaryEnergies)
    var bad = energies
    bad[labels * w * h / 2] = .nan
    for crf in crfs { #expect(throws: CRFError.self) { try crf.setUnary(energies: bad) } }
  }

  @Test("AVX2 and portable lattice filters agree (splat, blur, slice)", arguments: [1, 5, 8, 21, 24, 33])
  func sameFilter(valueSize: Int) throws {
    var random = FixtureRandom(seed: 7)
    let n = 900, d = 3
    let features = (0..<(n * d)).map { _ in random.uniform() * 6 }
    let lattice = try PermutohedralLattice(features: features, dimensions: d, threads: 2)
    let values = (0..<(n * valueSize)).map { _ in random.uniform() }
    for threads in [1, 2] {
      let a = lattice.filter(values, valueSize: valueSize, threads: threads, code: .portable)
      let b = lattice.filter(values, valueSize: valueSize, threads: threads, code: .avx2)
      let scale = a.map(abs).max() ?? 1
      expectClose(b, a.map(Double.init), tolerance: 1e-6 * Double(scale), shape: [n, valueSize], "filtered, \(threads) thread(s)")
    }
  }
}
