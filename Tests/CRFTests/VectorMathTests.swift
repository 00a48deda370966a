@testable import AEPSLCRF
import Foundation
import Testing

@Suite("Vector maths")
struct VectorMathTests {
  @Test("vectorExp is within 1e-5 relative of exp on [-87, 88]")
  func exponential() {
    var worst = 0.0
    var x: Float = -87
    while x < 88 {
      let v = SIMD8<Float>((0..<8).map { x + Float($0) * 0.0137 })
      let e = vectorExp(v)
      for k in 0..<8 { worst = max(worst, abs(Double(e[k]) / Foundation.exp(Double(v[k])) - 1)) }
      x += 0.11
    }
    #expect(worst < 1e-5, "worst relative error \(worst)")
  }

  @Test("vectorExp flushes very negative inputs to about e^-87, never to garbage")
  func exponentialUnderflow() {
    let e = vectorExp(SIMD8<Float>(repeating: -1e30))
    for k in 0..<8 { #expect(e[k] >= 0 && e[k] < 2e-38) }
  }

  @Test("vectorLog is within 3e-7 of log on [1e-6, 1] (relative beyond |ln x| = 1)")
  func logarithm() {
    var worst = 0.0
    var x: Float = 1e-6
    while x <= 1 {
      let v = SIMD8<Float>((0..<8).map { min(1, x * (1 + Float($0) * 0.01)) })
      let l = vectorLog(v)
      for k in 0..<8 {
        let exact = Foundation.log(Double(v[k]))
        worst = max(worst, abs(Double(l[k]) - exact) / max(1, abs(exact)))
      }
      x *= 1.03
    }
    #expect(worst < 3e-7, "worst error \(worst)")
  }

  @Test("vmax, vmin, hmax and hsum agree with the scalar definitions")
  func reductions() {
    let a = SIMD8<Float>(3, -1, 7, 0, -5, 2, 9, -9), b = SIMD8<Float>(1, 4, 7, -2, -6, 8, 0, 1)
    for k in 0..<8 {
      #expect(vmax(a, b)[k] == max(a[k], b[k]))
      #expect(vmin(a, b)[k] == min(a[k], b[k]))
    }
    #expect(hmax(a) == 9)
    #expect(hsum(a) == 6)
  }
}
