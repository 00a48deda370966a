import AEPSLEngine
import Testing

/// The worst element of a comparison, for a message that says where and by how much.
public struct Mismatch: Sendable, CustomStringConvertible {
  public let index: Int
  public let position: [Int]
  public let actual: Double
  public let expected: Double
  /// |actual - expected| / max(1, |expected|).
  public let error: Double
  public var description: String {
    "worst at \(position) (flat \(index)): got \(actual), expected \(expected), error \(error)"
  }
}

/// The multi-dimensional index of a flat row-major index.
public func position(of index: Int, in shape: [Int]) -> [Int] {
  guard !shape.isEmpty else { return [index] }
  var rest = index
  var out = [Int](repeating: 0, count: shape.count)
  for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
    out[d] = rest % shape[d]
    rest /= shape[d]
  }
  return out
}

/// The element with the largest error |a - e| / max(1, |e|) (NaN counts as infinite).
public func worstMismatch(_ actual: [Double], _ expected: [Double], shape: [Int]? = nil) -> Mismatch? {
  guard !actual.isEmpty, actual.count == expected.count else { return nil }
  var worst = 0
  var worstError = -1.0
  for i in actual.indices {
    var e = abs(actual[i] - expected[i]) / max(1, abs(expected[i]))
    if e.isNaN { e = .infinity }
    if e > worstError { worstError = e; worst = i }
  }
  return Mismatch(index: worst, position: position(of: worst, in: shape ?? [actual.count]),
                  actual: actual[worst], expected: expected[worst], error: worstError)
}

/// Expects every element of `actual` within `tolerance` of `expected`, measured as
/// |a - e| / max(1, |e|) (absolute near zero, relative for large values); on failure
/// reports the worst element's index.
@discardableResult
public func expectClose(_ actual: [Double], _ expected: [Double], tolerance: Double, shape: [Int]? = nil,
                        _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
  let label = what.isEmpty ? "" : "\(what): "
  guard actual.count == expected.count else {
    Issue.record("\(label)\(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
    return false
  }
  guard let worst = worstMismatch(actual, expected, shape: shape) else { return true }
  #expect(worst.error <= tolerance, "\(label)\(worst) > tolerance \(tolerance)", sourceLocation: sourceLocation)
  return worst.error <= tolerance
}

@discardableResult
public func expectClose(_ actual: [Float], _ expected: [Double], tolerance: Double, shape: [Int]? = nil,
                        _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
  expectClose(actual.map(Double.init), expected, tolerance: tolerance, shape: shape, what, sourceLocation: sourceLocation)
}

/// An engine tensor (either layout) against a reference: shapes must match, then values.
@discardableResult
public func expectClose(_ actual: Tensor, _ expected: HostTensor<Double>, tolerance: Double,
                        _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
  guard actual.shape == expected.shape else {
    Issue.record("\(what.isEmpty ? "" : "\(what): ")shape \(actual.shape), expected \(expected.shape)",
                 sourceLocation: sourceLocation)
    return false
  }
  return expectClose(actual.values, expected.values, tolerance: tolerance, shape: expected.shape, what,
                     sourceLocation: sourceLocation)
}

@discardableResult
public func expectClose(_ actual: Float, _ expected: Double, tolerance: Double,
                        _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
  expectClose([Double(actual)], [expected], tolerance: tolerance, what, sourceLocation: sourceLocation)
}
