import AEPSLEngine
import Testing

/// Central finite differences of a scalar function of many variables, in Double, with a
/// kink band (after Caffe's `GradientChecker`, test_gradient_check_util.hpp).
///
/// A function with kinks (ReLU, max pooling) has no derivative where a kink feature (a
/// pre-activation, or the gap between a pooling window's two largest inputs) is zero, and a
/// central difference across such a point is meaningless. The checker takes those features
/// as a function of the same variables; a coordinate is skipped when its perturbation moves
/// a feature that lies within `kinkBand` of zero, or changes the sign of one.
public struct GradientCheck: Sendable {
  /// The perturbation h: f'(x) ~ (f(x + h) - f(x - h)) / 2h.
  public var step: Double
  /// Features closer than this to zero count as at a kink.
  public var kinkBand: Double
  /// Check at most this many coordinates per variable, chosen evenly with a seed.
  public var maxCoordinates: Int

  public init(step: Double = 1e-3, kinkBand: Double = 2e-3, maxCoordinates: Int = 400) {
    self.step = step
    self.kinkBand = kinkBand
    self.maxCoordinates = maxCoordinates
  }

  /// Numerical derivatives at the checked coordinates of `x`, and the coordinates skipped
  /// at kinks.
  public struct Result: Sendable {
    public var derivatives: [Int: Double] = [:]
    public var skipped: [Int] = []
    public var checkedCount: Int { derivatives.count }
  }

  /// The coordinates checked for a variable of `count` elements: all, or an even sample.
  public func coordinates(count: Int, seed: UInt64) -> [Int] {
    guard count > maxCoordinates else { return Array(0..<count) }
    var rng = SeededGenerator(seed: seed).split("coordinates")
    var all = Array(0..<count)
    all.shuffle(using: &rng)
    return Array(all.prefix(maxCoordinates)).sorted()
  }

  public func numericalGradient(at x: [Double], seed: UInt64 = 0, kinks: (([Double]) -> [Double])? = nil,
                                _ f: ([Double]) -> Double) -> Result {
    var result = Result()
    let base = kinks?(x)
    var point = x
    for i in coordinates(count: x.count, seed: seed) {
      point[i] = x[i] + step
      let plus = f(point), kPlus = kinks?(point)
      point[i] = x[i] - step
      let minus = f(point), kMinus = kinks?(point)
      point[i] = x[i]
      if let base, let kPlus, let kMinus, crossesKink(base: base, plus: kPlus, minus: kMinus) {
        result.skipped.append(i)
      } else {
        result.derivatives[i] = (plus - minus) / (2 * step)
      }
    }
    return result
  }

  func crossesKink(base: [Double], plus: [Double], minus: [Double]) -> Bool {
    for j in base.indices where plus[j] != minus[j] {
      if abs(base[j]) < kinkBand || (plus[j] > 0) != (minus[j] > 0) { return true }
    }
    return false
  }
}

/// Expects an analytic gradient (from an engine backward) to match a numerical one at every
/// checked coordinate within `tolerance` (|a - n| / max(1, |n|)), and no more than
/// `maxSkippedFraction` of the coordinates skipped at kinks, so that a check cannot pass by
/// checking nothing.
@discardableResult
public func expectGradient(_ analytic: [Float], _ numeric: GradientCheck.Result, tolerance: Double,
                           maxSkippedFraction: Double = 0.25, shape: [Int]? = nil, _ what: String,
                           sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
  let indices = numeric.derivatives.keys.sorted()
  let total = indices.count + numeric.skipped.count
  #expect(total > 0 && Double(numeric.skipped.count) <= maxSkippedFraction * Double(total),
          "\(what): \(numeric.skipped.count) of \(total) coordinates skipped at kinks",
          sourceLocation: sourceLocation)
  guard let last = indices.last, last < analytic.count else {
    Issue.record("\(what): no coordinate checked, or analytic gradient too short (\(analytic.count))",
                 sourceLocation: sourceLocation)
    return false
  }
  let a = indices.map { Double(analytic[$0]) }
  let n = indices.map { numeric.derivatives[$0]! }
  guard let worst = worstMismatch(a, n) else { return false }
  let where_ = position(of: indices[worst.index], in: shape ?? [analytic.count])
  #expect(worst.error <= tolerance,
          "\(what): worst at \(where_): analytic \(worst.actual), numerical \(worst.expected), error \(worst.error) > \(tolerance)",
          sourceLocation: sourceLocation)
  return worst.error <= tolerance
}

extension GradientCheck {
  /// Checks an engine gradient (`analytic`, either layout) against central differences of
  /// `f` around `variable`, with the kink features `kinks` (nil for smooth functions).
  @discardableResult
  public func expect(_ analytic: Tensor, matches f: (HostTensor<Double>) -> Double, at variable: HostTensor<Double>,
                     kinks: ((HostTensor<Double>) -> [Double])? = nil, tolerance: Double = 1e-4,
                     maxSkippedFraction: Double = 0.25, seed: UInt64 = 0, _ what: String,
                     sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    guard analytic.shape == variable.shape else {
      Issue.record("\(what): gradient shape \(analytic.shape), variable \(variable.shape)", sourceLocation: sourceLocation)
      return false
    }
    let kinkFeatures: (([Double]) -> [Double])? = kinks.map { k in { k(variable.with(values: $0)) } }
    let numeric = numericalGradient(at: variable.values, seed: seed, kinks: kinkFeatures) { f(variable.with(values: $0)) }
    return expectGradient(analytic.values, numeric, tolerance: tolerance, maxSkippedFraction: maxSkippedFraction,
                          shape: variable.shape, what, sourceLocation: sourceLocation)
  }
}
