import Foundation

/// The plain reference for `DenseCRF`: the same model and the same mean-field loop written
/// out one pixel and one label at a time in Double on one thread, with Potts taken literally
/// as mu(l, l') = w [l != l']. For tiny images only.
public struct ReferenceCRF: Sendable {
  /// How kernels are evaluated.
  public enum Kernels: Sendable {
    /// k(f_i, f_j) = exp(-|f_i - f_j|^2 / 2) summed over all pairs (i = j included): the
    /// model itself, O(N^2).
    case bruteForce
    /// As `DenseCRF` evaluates them, but plainly: lattice potentials by
    /// `PermutohedralLattice(referenceFeatures:)` and `filterReference`; separable Gaussians by
    /// brute force over the same truncated window.
    case asEvaluated
  }

  public let width: Int
  public let height: Int
  public let labels: Int
  /// U, [pixel][label].
  public let unary: [Double]
  public let potentials: [PairwisePotential]

  public init(_ crf: DenseCRF) {
    width = crf.width
    height = crf.height
    labels = crf.labels
    let planes = crf.unaryEnergies, n = crf.width * crf.height
    var u = [Double](repeating: 0, count: n * crf.labels)
    for i in 0..<n { for l in 0..<crf.labels { u[i * crf.labels + l] = Double(planes[l * n + i]) } }
    unary = u
    potentials = crf.potentials
  }

  /// The normalised filtering m = post * K (pre * Q) of [pixel][label] values by potential `k`.
  public func message(_ q: [Double], potential k: Int, kernels: Kernels) throws -> [Double] {
    let n = width * height, potential = potentials[k]
    let filter: ([Double], Int) throws -> [Double]
    switch (kernels, potential.evaluation) {
    case (.asEvaluated, .lattice):
      let lattice = try PermutohedralLattice(referenceFeatures: potential.features(), dimensions: potential.dimensions)
      filter = { lattice.filterReference($0, valueSize: $1) }
    case (.asEvaluated, .separableGaussian(let sx, let sy, let truncation)):
      let features = potential.features()
      let rx = Int((truncation * sx).rounded(.up)), ry = Int((truncation * sy).rounded(.up))
      filter = { values, size in
        try bruteForce(values, size, features: features, dimensions: 2) { i, j in
          abs(i % width - j % width) <= rx && abs(i / width - j / width) <= ry
        }
      }
    case (.bruteForce, _):
      let features = potential.features()
      filter = { values, size in
        try bruteForce(values, size, features: features, dimensions: potential.dimensions) { _, _ in true }
      }
    }
    let sums = try filter([Double](repeating: 1, count: n), 1)
    var pre = [Double](repeating: 1, count: n), post = [Double](repeating: 1, count: n)
    for i in 0..<n {
      switch potential.normalization {
      case .symmetric: pre[i] = 1 / (sums[i] + 1e-20).squareRoot(); post[i] = pre[i]
      case .before: pre[i] = 1 / (sums[i] + 1e-20)
      case .after: post[i] = 1 / (sums[i] + 1e-20)
      case .none: break
      }
    }
    var scaled = q
    for i in 0..<n { for l in 0..<labels { scaled[i * labels + l] *= pre[i] } }
    var m = try filter(scaled, labels)
    for i in 0..<n { for l in 0..<labels { m[i * labels + l] *= post[i] } }
    return m
  }

  private func bruteForce(_ values: [Double], _ size: Int, features: [Float], dimensions d: Int,
                          inWindow: (Int, Int) -> Bool) throws -> [Double] {
    let n = width * height
    var out = [Double](repeating: 0, count: n * size)
    for i in 0..<n {
      for j in 0..<n where inWindow(i, j) {
        var distance = 0.0
        for k in 0..<d {
          let diff = Double(features[i * d + k]) - Double(features[j * d + k])
          distance += diff * diff
        }
        let kij = exp(-0.5 * distance)
        for l in 0..<size { out[i * size + l] += kij * values[j * size + l] }
      }
    }
    return out
  }

  private func mu(_ compatibility: LabelCompatibility, _ l: Int, _ k: Int) -> Double {
    switch compatibility {
    case .potts(let w): return l == k ? 0 : Double(w)
    case .matrix(let m): return Double(m[l * labels + k])
    }
  }

  /// Mean field from softmax(-U); returns Q as [pixel][label]. `observe` sees every step.
  public func inference(iterations: Int, kernels: Kernels = .bruteForce,
                        observe: ((Int, [Double]) -> Void)? = nil) throws -> [Double] {
    let n = width * height
    var q = softmax(unary.map { -$0 })
    observe?(0, q)
    for iteration in 0..<iterations {
      var logits = unary.map { -$0 }
      for k in potentials.indices {
        let m = try message(q, potential: k, kernels: kernels)
        for i in 0..<n {
          for l in 0..<labels {
            var s = 0.0
            for l2 in 0..<labels { s += mu(potentials[k].compatibility, l, l2) * m[i * labels + l2] }
            logits[i * labels + l] -= s
          }
        }
      }
      q = softmax(logits)
      observe?(iteration + 1, q)
    }
    return q
  }

  private func softmax(_ logits: [Double]) -> [Double] {
    var out = logits
    for i in 0..<(width * height) {
      let row = i * labels..<(i + 1) * labels
      let mx = logits[row].max()!
      var total = 0.0
      for e in row { out[e] = exp(logits[e] - mx); total += out[e] }
      for e in row { out[e] /= total }
    }
    return out
  }

  /// F(Q) = sum Q (U + ln Q) + 1/2 sum_k sum_i sum_{l,l'} Q_il mu_k(l, l') m_k(Q)_il'
  /// (see `DenseCRF.freeEnergy`).
  public func freeEnergy(_ q: [Double], kernels: Kernels = .bruteForce) throws -> Double {
    var energy = 0.0
    for e in q.indices where q[e] > 0 { energy += q[e] * (unary[e] + log(q[e])) }
    for k in potentials.indices {
      let m = try message(q, potential: k, kernels: kernels)
      var pairwise = 0.0
      for i in 0..<(width * height) {
        for l in 0..<labels {
          for l2 in 0..<labels {
            pairwise += q[i * labels + l] * mu(potentials[k].compatibility, l, l2) * m[i * labels + l2]
          }
        }
      }
      energy += 0.5 * pairwise
    }
    return energy
  }
}
