import CCRFKernels

/// The per-row steps of DenseCRF's mean-field update: logits from the unary and the
/// messages, argmax, a compatibility matrix, and the softmax (portable or AVX2).
extension DenseCRF {
  /// The logits of one block of `pixels`: -U plus every filter's messages, weighted by its
  /// compatibility, into `acc` (`scratch` holds a matrix term's messages).
  static func logits(_ terms: [(MessageFilter, LabelCompatibility)], pixels sub: Range<Int>, unary: UnsafePointer<SIMD8<Float>>,
                     vectors nv: Int, labels: Int, into acc: UnsafeMutablePointer<SIMD8<Float>>,
                     scratch message: UnsafeMutablePointer<SIMD8<Float>>) {
    // The first Potts term reads -U as it writes; otherwise copy -U first.
    var unaryAdded = false
    if case .potts = terms.first?.1 {} else {
      acc.update(from: unary, count: sub.count * nv)
      unaryAdded = true
    }
    for (filter, compatibility) in terms {
      switch compatibility {
      case .potts(let w):
        filter.addMessages(range: sub, into: acc, scale: w, base: unaryAdded ? nil : unary)
        unaryAdded = true
      case .matrix(let mu):
        message.update(repeating: .zero, count: sub.count * nv)
        filter.addMessages(range: sub, into: message, scale: 1, base: nil)
        subtractCompatibility(mu, labels: labels, message: message, from: acc, pixels: sub.count, vectors: nv)
      }
    }
  }

  /// The first largest label of each of `pixels` rows.
  static func argmax(_ rows: UnsafePointer<SIMD8<Float>>, pixels: Int, labels: Int,
                     into out: UnsafeMutablePointer<Int32>) {
    let stride = (labels + 7) / 8 * 8
    let raw = UnsafeRawPointer(rows).assumingMemoryBound(to: Float.self)
    for p in 0..<pixels {
      let row = raw + p &* stride
      var best = 0
      var value = row[0]
      for l in 1..<max(1, labels) where row[l] > value {
        best = l
        value = row[l]
      }
      out[p] = Int32(truncatingIfNeeded: best)
    }
  }

  /// acc_l -= sum_l' mu(l, l') m_l' per pixel.
  static func subtractCompatibility(_ mu: [Float], labels: Int, message: UnsafeMutablePointer<SIMD8<Float>>,
                                    from acc: UnsafeMutablePointer<SIMD8<Float>>, pixels: Int, vectors: Int) {
    let accRaw = UnsafeMutableRawPointer(acc).assumingMemoryBound(to: Float.self)
    let mRaw = UnsafeMutableRawPointer(message).assumingMemoryBound(to: Float.self)
    mu.withUnsafeBufferPointer { mu in
      for p in 0..<pixels {
        let m = mRaw + p &* vectors &* 8, a = accRaw + p &* vectors &* 8
        for l in 0..<labels {
          let row = mu.baseAddress! + l &* labels
          var s: Float = 0
          for k in 0..<labels { s += row[k] * m[k] }
          a[l] -= s
        }
      }
    }
  }

  /// Row-wise softmax of `pixels` rows of `vectors` SIMD8 lanes; padding lanes come out 0.
  /// Each row is shifted by shifts[p] (see `softmaxShifts`), or by its max when that is NaN
  /// or there are no shifts.
  @inline(__always)
  static func softmax(_ logits: UnsafePointer<SIMD8<Float>>, into out: UnsafeMutablePointer<SIMD8<Float>>,
                      pixels: Int, vectors: Int, labels: Int, lastMask: SIMD8<Int32>, shifts: UnsafePointer<Float>? = nil,
                      code: CRFVectorCode = .portable) {
    if code.usesAVX2(vectors: vectors) {
      crf_softmax_avx2(floats(logits), floats(out), pixels, Int32(vectors), Int32(labels), shifts)
      return
    }
    if vectors == 3 {
      for p in 0..<pixels {
        let a = logits + p &* 3
        let x0 = a[0], x1 = a[1], x2 = a[2]
        var mx = shifts?[p] ?? .nan
        if mx.isNaN { mx = hmax(vmax(vmax(x0, x1), x2)) }
        let e0 = vectorExp(x0 - mx), e1 = vectorExp(x1 - mx), e2 = blend(lastMask, vectorExp(x2 - mx), .zero)
        let inv = 1 / hsum(e0 + e1 + e2)
        let o = out + p &* 3
        o[0] = e0 * inv; o[1] = e1 * inv; o[2] = e2 * inv
      }
      return
    }
    for p in 0..<pixels {
      let a = logits + p &* vectors, o = out + p &* vectors
      var mx = shifts?[p] ?? .nan
      if mx.isNaN {
        var m = a[0]
        for k in 1..<max(1, vectors) { m = vmax(m, a[k]) }
        mx = hmax(m)
      }
      var total = SIMD8<Float>()
      for k in 0..<vectors {
        var e = vectorExp(a[k] - mx)
        if k == vectors &- 1 { e = blend(lastMask, e, .zero) }
        o[k] = e
        total += e
      }
      let inv = 1 / hsum(total)
      for k in 0..<vectors { o[k] *= inv }
    }
  }
}
