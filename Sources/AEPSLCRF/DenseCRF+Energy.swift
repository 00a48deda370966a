import Foundation

/// The mean-field free energy and the messages of one potential, for tests and reports.
extension DenseCRF {
  /// The normalised filtering m = post * K (pre * values) of potential `k` (compatibility not
  /// applied), for [pixel][label] values; returns [pixel][label].
  public func messages(_ values: [Float], potential k: Int) throws -> [Float] {
    guard potentials.indices.contains(k) else { throw CRFError.badInput("no potential \(k); there are \(potentials.count)") }
    guard values.count == pixelCount * labels else {
      throw CRFError.badInput("values hold \(values.count) numbers; [\(pixelCount)][\(labels)] needs \(pixelCount * labels)")
    }
    let n = pixelCount, nv = vectors, stride = nv * 8
    let input = VectorBuffer(count: n * nv, zeroed: true), output = VectorBuffer(count: n * nv, zeroed: true)
    let inRaw = UnsafeMutableRawPointer(input.base).assumingMemoryBound(to: Float.self)
    let outRaw = UnsafeMutableRawPointer(output.base).assumingMemoryBound(to: Float.self)
    for i in 0..<n { for l in 0..<labels { inRaw[i * stride + l] = values[i * labels + l] } }
    let filter = filters[k]
    filter.beginSplat(parts: 1, threads: threads)
    filter.clear(part: 0)
    filter.splat(range: 0..<n, rows: input.base, part: 0)
    filter.finishSplat(threads: threads)
    filter.addMessages(range: 0..<n, into: output.base, scale: 1, base: nil)
    var out = [Float](repeating: 0, count: n * labels)
    for i in 0..<n { for l in 0..<labels { out[i * labels + l] = outRaw[i * stride + l] } }
    withExtendedLifetime((input, output)) {}
    return out
  }

  /// The mean-field free energy (KL(Q || P) up to ln Z):
  ///     F(Q) = sum_i sum_l Q_il (U_il + ln Q_il) + 1/2 sum_k sum_i sum_{l,l'} Q_il mu_k(l, l') (K~_k Q)_il'
  /// with Potts mu(l, l') = w [l != l'] and the kernels as inference evaluates them (so the
  /// lattice's approximation for lattice potentials). This is not pydensecrf's
  /// `klDivergence`, which counts each pair twice (no 1/2) and uses mu = -w [l = l'].
  public func freeEnergy(_ marginals: Marginals) -> Double {
    precondition(marginals.width == width && marginals.height == height && marginals.labels == labels,
                 "marginals of another CRF")
    let n = pixelCount, nv = vectors, stride = nv * 8
    let q = VectorBuffer(count: n * nv)
    let qRaw = UnsafeMutableRawPointer(q.base).assumingMemoryBound(to: Float.self)
    marginals.storage.withUnsafeBufferPointer { qRaw.update(from: $0.baseAddress!, count: n * stride) }
    let uRaw = UnsafeRawPointer(negativeUnary.base).assumingMemoryBound(to: Float.self)
    var energy = 0.0
    for i in 0..<n {
      for l in 0..<labels {
        let p = Double(qRaw[i * stride + l])
        energy += p * (-Double(uRaw[i * stride + l]) + (p > 0 ? log(p) : 0))
      }
    }
    let message = VectorBuffer(count: n * nv, zeroed: true)
    let mRaw = UnsafeRawPointer(message.base).assumingMemoryBound(to: Float.self)
    for (filter, potential) in zip(filters, potentials) {
      filter.beginSplat(parts: 1, threads: threads)
      filter.clear(part: 0)
      filter.splat(range: 0..<n, rows: q.base, part: 0)
      filter.finishSplat(threads: threads)
      message.zero()
      filter.addMessages(range: 0..<n, into: message.base, scale: 1, base: nil)
      var pairwise = 0.0
      for i in 0..<n {
        let m = mRaw + i * stride, qi = qRaw + i * stride
        switch potential.compatibility {
        case .potts(let w):
          var total = 0.0, same = 0.0
          for l in 0..<labels { total += Double(m[l]); same += Double(qi[l]) * Double(m[l]) }
          pairwise += Double(w) * (total - same)
        case .matrix(let mu):
          for l in 0..<labels {
            var s = 0.0
            for k in 0..<labels { s += Double(mu[l * labels + k]) * Double(m[k]) }
            pairwise += Double(qi[l]) * s
          }
        }
      }
      energy += 0.5 * pairwise
    }
    withExtendedLifetime((q, message)) {}
    return energy
  }
}
