import CCRFKernels
import Foundation

/// Filtering on a built lattice: the fast path (splat, blur, slice over SIMD8 rows) and the
/// reference (`filterReference`, densecrf's seqCompute). In the fast path index arithmetic
/// wraps (&+, &*, &-; indices are below (M + 1) * vectors and N * (d + 1), far from Int.max)
/// and the corners of a point are walked through pointers, so the loops carry no overflow
/// or range checks although the package builds without -Ounchecked.
extension PermutohedralLattice {
  /// Splat: buffer[vertex] += bary * pre[i] * rows[i - range.lowerBound] over the corners of
  /// every point i in `range` (pre nil: 1). One thread per buffer.
  @inline(__always)
  func splat(range: Range<Int>, rows: UnsafePointer<SIMD8<Float>>, vectors: Int, pre: UnsafePointer<Float>?,
             into buffer: UnsafeMutablePointer<SIMD8<Float>>, code: CRFVectorCode = .portable) {
    let d1 = dimensions + 1
    let vertices = vertexOfCorner, weights = weightOfCorner
    if code.usesAVX2(vectors: vectors) {
      crf_splat_avx2(floats(rows), Int32(vectors), range.lowerBound, range.upperBound, vertices, weights, Int32(d1), pre,
                     floats(buffer))
    } else if vectors == 3 {
      for i in range {
        let q = rows + (i &- range.lowerBound) &* 3
        let q0 = q[0], q1 = q[1], q2 = q[2]
        let scale = pre?[i] ?? 1
        let cv = vertices + i &* d1, cw = weights + i &* d1
        for r in 0..<d1 {
          let w = cw[r] * scale
          let row = buffer + Int(cv[r]) &* 3
          row[0] += w * q0
          row[1] += w * q1
          row[2] += w * q2
        }
      }
    } else if vectors == 1 {
      for i in range {
        let q0 = rows[i &- range.lowerBound]
        let scale = pre?[i] ?? 1
        let cv = vertices + i &* d1, cw = weights + i &* d1
        for r in 0..<d1 { buffer[Int(cv[r])] += (cw[r] * scale) * q0 }
      }
    } else {
      for i in range {
        let q = rows + (i &- range.lowerBound) &* vectors
        let scale = pre?[i] ?? 1
        let cv = vertices + i &* d1, cw = weights + i &* d1
        for r in 0..<d1 {
          let w = cw[r] * scale
          let row = buffer + Int(cv[r]) &* vectors
          for k in 0..<vectors { row[k] += w * q[k] }
        }
      }
    }
  }

  /// Sums the partial splats into `partials[0]` and blurs along the d+1 directions,
  /// ping-ponging between `x` and `y`. Every buffer holds (M + 1) rows of `vectors`, with
  /// row M zero (the absent neighbour). Returns the buffer that holds the result.
  func reduceAndBlur(partials: [UnsafeMutablePointer<SIMD8<Float>>], vectors: Int,
                     x: UnsafeMutablePointer<SIMD8<Float>>, y: UnsafeMutablePointer<SIMD8<Float>>,
                     threads: Int, code: CRFVectorCode = .portable) -> UnsafeMutablePointer<SIMD8<Float>> {
    let m = vertexCount, d1 = dimensions + 1
    let first = partials[0]
    if partials.count > 1 {
      partials.withUnsafeBufferPointer { partials in
        parallelRanges(m * vectors, threads: threads, grain: 4096) { _, range in
          for p in 1..<partials.count {
            let other = partials[p]
            if code == .avx2 {
              crf_add_avx2(floats(first), floats(other), range.lowerBound, range.upperBound)
            } else {
              for e in range { first[e] += other[e] }
            }
          }
        }
      }
    }
    (x + m * vectors).update(repeating: .zero, count: vectors)
    (y + m * vectors).update(repeating: .zero, count: vectors)
    var source = first, target = x
    let nb = neighbors
    for j in 0..<d1 {
      let src = source, dst = target
      parallelRanges(m, threads: threads, grain: 1024) { _, range in
        let pairs = nb + j &* m &* 2
        if code.usesAVX2(vectors: vectors) {
          crf_blur_avx2(floats(src), floats(dst), pairs, range.lowerBound, range.upperBound, Int32(vectors))
        } else if vectors == 3 {
          for v in range {
            let p = src + v &* 3
            let n1 = src + Int(pairs[2 &* v]) &* 3
            let n2 = src + Int(pairs[2 &* v &+ 1]) &* 3
            let o = dst + v &* 3
            o[0] = p[0] + 0.5 * (n1[0] + n2[0])
            o[1] = p[1] + 0.5 * (n1[1] + n2[1])
            o[2] = p[2] + 0.5 * (n1[2] + n2[2])
          }
        } else if vectors == 1 {
          for v in range {
            dst[v] = src[v] + 0.5 * (src[Int(pairs[2 &* v])] + src[Int(pairs[2 &* v &+ 1])])
          }
        } else {
          for v in range {
            let p = src + v &* vectors
            let n1 = src + Int(pairs[2 &* v]) &* vectors
            let n2 = src + Int(pairs[2 &* v &+ 1]) &* vectors
            let o = dst + v &* vectors
            for k in 0..<vectors { o[k] = p[k] + 0.5 * (n1[k] + n2[k]) }
          }
        }
      }
      source = target
      target = target == x ? y : x
    }
    return source
  }

  /// Slice: out[i - range.lowerBound] (+)= scale * alpha * post[i] * sum_r bary * values[vertex]
  /// (post nil: 1); with `base`, out = base + that (rows of base aligned with out).
  @inline(__always)
  func slice(values: UnsafePointer<SIMD8<Float>>, vectors: Int, range: Range<Int>, post: UnsafePointer<Float>?,
             into out: UnsafeMutablePointer<SIMD8<Float>>, scale: Float, accumulate: Bool,
             base: UnsafePointer<SIMD8<Float>>? = nil, code: CRFVectorCode = .portable) {
    let d1 = dimensions + 1
    let vertices = vertexOfCorner, weights = weightOfCorner
    let factor = scale * alpha
    if code.usesAVX2(vectors: vectors) {
      if !accumulate && base == nil { out.update(repeating: .zero, count: range.count &* vectors) }
      crf_slice_avx2(floats(values), Int32(vectors), range.lowerBound, range.upperBound, vertices, weights, Int32(d1), post,
                     factor, floats(out), base.map(floats))
    } else if vectors == 3 {
      for i in range {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>()
        let cv = vertices + i &* d1, cw = weights + i &* d1
        for r in 0..<d1 {
          let w = cw[r]
          let row = values + Int(cv[r]) &* 3
          s0 += w * row[0]
          s1 += w * row[1]
          s2 += w * row[2]
        }
        let f = factor * (post?[i] ?? 1)
        let o = out + (i &- range.lowerBound) &* 3
        if let base {
          let b = base + (i &- range.lowerBound) &* 3
          o[0] = b[0] + f * s0; o[1] = b[1] + f * s1; o[2] = b[2] + f * s2
        } else if accumulate {
          o[0] += f * s0; o[1] += f * s1; o[2] += f * s2
        } else {
          o[0] = f * s0; o[1] = f * s1; o[2] = f * s2
        }
      }
    } else if vectors == 1 && base == nil {
      for i in range {
        var sum = SIMD8<Float>()
        let cv = vertices + i &* d1, cw = weights + i &* d1
        for r in 0..<d1 { sum += cw[r] * values[Int(cv[r])] }
        let f = factor * (post?[i] ?? 1)
        let o = out + (i &- range.lowerBound)
        o[0] = accumulate ? o[0] + f * sum : f * sum
      }
    } else {
      for i in range {
        let o = out + (i &- range.lowerBound) &* vectors
        if let base { o.update(from: base + (i &- range.lowerBound) &* vectors, count: vectors) }
        else if !accumulate { o.update(repeating: .zero, count: vectors) }
        let f = factor * (post?[i] ?? 1)
        let cv = vertices + i &* d1, cw = weights + i &* d1
        for r in 0..<d1 {
          let w = f * cw[r]
          let row = values + Int(cv[r]) &* vectors
          for k in 0..<vectors { o[k] += w * row[k] }
        }
      }
    }
  }

  /// post_i * sum_j k(f_i, f_j) * pre_j for every point (nil: 1), one Float per vertex: the
  /// kernel's row sums and normalised unit responses, which the CRF needs once per lattice.
  func filterScalar(pre: UnsafePointer<Float>?, post: UnsafePointer<Float>?, threads: Int) -> [Float] {
    let n = count, m = vertexCount, d1 = dimensions + 1
    let vertices = vertexOfCorner, weights = weightOfCorner
    let grain = 4096
    let parts = partCount(n, threads: threads, grain: grain)
    let buffers = (0..<(parts + 1)).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: m + 1) }
    defer { for b in buffers { b.deallocate() } }
    for b in buffers { b.initialize(repeating: 0, count: m + 1) }
    parallelRanges(n, threads: threads, grain: grain) { part, range in
      let out = buffers[part]
      for i in range {
        let w = pre?[i] ?? 1
        let cv = vertices + i &* d1, cw = weights + i &* d1
        for r in 0..<d1 { out[Int(cv[r])] += cw[r] * w }
      }
    }
    let first = buffers[0]
    for p in 1..<max(1, parts) {
      let other = buffers[p]
      for v in 0..<m { first[v] += other[v] }
    }
    var source = first, target = buffers[parts]
    for j in 0..<d1 {
      let pairs = neighbors + j &* m &* 2
      for v in 0..<m {
        target[v] = source[v] + 0.5 * (source[Int(pairs[2 &* v])] + source[Int(pairs[2 &* v &+ 1])])
      }
      swap(&source, &target)
    }
    let values = source, alpha = self.alpha
    return [Float](unsafeUninitializedCapacity: n) { out, initialized in
      let out = out.baseAddress!
      parallelRanges(n, threads: threads, grain: grain) { _, range in
        for i in range {
          var sum: Float = 0
          let cv = vertices + i &* d1, cw = weights + i &* d1
          for r in 0..<d1 { sum += cw[r] * values[Int(cv[r])] }
          out[i] = alpha * (post?[i] ?? 1) * sum
        }
      }
      initialized = n
    }
  }

  /// The fast filter of `values` ([count][valueSize]) with `threads` threads and `code`: returns
  /// sum_j k(f_i, f_j) values_j as the lattice approximates it, [count][valueSize].
  public func filter(_ values: [Float], valueSize: Int, threads: Int = crfDefaultThreads,
                     code: CRFVectorCode = .best) -> [Float] {
    precondition(values.count == count * valueSize, "filter needs \(count) x \(valueSize) values, got \(values.count)")
    let vectors = (valueSize + 7) / 8, stride = vectors * 8
    let input = VectorBuffer(count: count * vectors, zeroed: true)
    let raw = UnsafeMutableRawPointer(input.base).assumingMemoryBound(to: Float.self)
    for i in 0..<count { for k in 0..<valueSize { raw[i * stride + k] = values[i * valueSize + k] } }
    let rows = (vertexCount + 1) * vectors
    let partials = (0..<max(1, threads)).map { _ in VectorBuffer(count: rows, zeroed: true) }
    let x = VectorBuffer(count: rows), y = VectorBuffer(count: rows)
    let output = VectorBuffer(count: count * vectors)
    parallelRanges(count, threads: threads) { part, range in
      self.splat(range: range, rows: input.base + range.lowerBound * vectors, vectors: vectors, pre: nil,
                 into: partials[part].base, code: code)
    }
    let blurred = reduceAndBlur(partials: partials.map(\.base), vectors: vectors, x: x.base, y: y.base,
                                threads: threads, code: code)
    parallelRanges(count, threads: threads) { _, range in
      self.slice(values: blurred, vectors: vectors, range: range, post: nil,
                 into: output.base + range.lowerBound * vectors, scale: 1, accumulate: false, code: code)
    }
    let outRaw = UnsafeMutableRawPointer(output.base).assumingMemoryBound(to: Float.self)
    var result = [Float](repeating: 0, count: count * valueSize)
    for i in 0..<count { for k in 0..<valueSize { result[i * valueSize + k] = outRaw[i * stride + k] } }
    return withExtendedLifetime((partials, x, y, input, output)) { result }
  }

  /// The reference filter, densecrf's seqCompute: scatter splat, blur, slice, one value at
  /// a time, in Double, on one thread.
  public func filterReference(_ values: [Double], valueSize: Int) -> [Double] {
    precondition(values.count == count * valueSize, "filter needs \(count) x \(valueSize) values, got \(values.count)")
    let d1 = dimensions + 1, m = vertexCount
    var lattice = [Double](repeating: 0, count: (m + 1) * valueSize)
    for i in 0..<count {
      for r in 0..<d1 {
        let v = Int(vertexOfCorner[i * d1 + r]), w = Double(weightOfCorner[i * d1 + r])
        for k in 0..<valueSize { lattice[v * valueSize + k] += w * values[i * valueSize + k] }
      }
    }
    var blurred = lattice
    for j in 0..<d1 {
      for v in 0..<m {
        let n1 = Int(neighbors[(j * m + v) * 2]), n2 = Int(neighbors[(j * m + v) * 2 + 1])
        for k in 0..<valueSize {
          blurred[v * valueSize + k] = lattice[v * valueSize + k]
            + 0.5 * (lattice[n1 * valueSize + k] + lattice[n2 * valueSize + k])
        }
      }
      swap(&lattice, &blurred)
    }
    let alpha = 1 / (1 + pow(2.0, -Double(dimensions)))
    var out = [Double](repeating: 0, count: count * valueSize)
    for i in 0..<count {
      for r in 0..<d1 {
        let v = Int(vertexOfCorner[i * d1 + r]), w = Double(weightOfCorner[i * d1 + r])
        for k in 0..<valueSize { out[i * valueSize + k] += w * alpha * lattice[v * valueSize + k] }
      }
    }
    return out
  }
}
