import Foundation

/// The permutohedral lattice (Adams, Baek and Davis 2010) as densecrf uses it (Kraehenbuehl
/// and Koltun 2011): Gaussian filtering in a d-dimensional feature space in O(N d^2).
///
/// Each feature vector f (already divided by its standard deviations) is lifted onto the
/// hyperplane sum = 0 of R^(d+1), scaled so that the lattice spacing matches a unit
/// Gaussian, and lands in one simplex of the lattice. Filtering a signal v is
/// - splat: every lattice vertex of that simplex receives v times the barycentric weight;
/// - blur: along each of the d+1 lattice directions, u = v + (v[n1] + v[n2]) / 2;
/// - slice: every point reads back the weighted sum of its vertices, times
///   alpha = 1 / (1 + 2^-d).
/// The result approximates sum_j exp(-|f_i - f_j|^2 / 2) v_j (the point itself included).
///
/// The lattice is built once per set of features and reused. The fast path keeps values as
/// [lattice vertex][SIMD8 vectors] rows (all labels of a vertex together), splats in point
/// order (so the input streams and the touched rows stay in cache) with one partial lattice
/// per thread, summed before the blur, and runs every stage in parallel.
/// `filterReference` is the plain sequential scatter/blur/slice (densecrf's seqCompute) over
/// the same lattice; `PermutohedralLattice(referenceFeatures:)` builds the lattice with a
/// Swift Dictionary and no tricks. The tests hold the fast path to both.
public final class PermutohedralLattice: @unchecked Sendable {
  /// Feature dimensions d (at most `maximumDimensions`).
  public let dimensions: Int
  /// Number of feature vectors (pixels), N.
  public let count: Int
  /// Number of lattice vertices, M.
  public private(set) var vertexCount: Int = 0
  /// Keys are d 16-bit coordinates packed in two 64-bit words; a point's wrap order takes
  /// 4 bits per dimension in 32 bits.
  public static let maximumDimensions = 7

  /// [N][d+1]: the vertex index and barycentric weight of each corner of each point's simplex.
  let vertexOfCorner: UnsafeMutablePointer<Int32>
  let weightOfCorner: UnsafeMutablePointer<Float>
  /// [d+1][M][2]: each vertex's two neighbours along each direction; M means "absent"
  /// (row M of a value buffer is kept at zero).
  private(set) var neighbors: UnsafeMutablePointer<Int32>

  /// alpha = 1 / (1 + 2^-d), densecrf's scaling of the slice.
  public var alpha: Float { 1 / (1 + Float(pow(2.0, -Double(dimensions)))) }

  /// Builds the lattice of the feature vectors stored [count][dimensions] in `features`.
  public init(features: [Float], dimensions: Int, threads: Int = crfDefaultThreads) throws {
    try Self.check(features.count, dimensions)
    self.dimensions = dimensions
    count = features.count / max(1, dimensions)
    let corners = count * (dimensions + 1)
    vertexOfCorner = .allocate(capacity: max(1, corners))
    weightOfCorner = .allocate(capacity: max(1, corners))
    neighbors = .allocate(capacity: 1)
    let points = UnsafeMutablePointer<PointSimplex>.allocate(capacity: max(1, count))
    defer { points.deallocate() }
    try features.withUnsafeBufferPointer { try locate(features: $0.baseAddress!, points: points, threads: threads) }
    let table = insert(points: points)
    finish(table: table, threads: threads)
  }

  /// The reference construction: one point at a time, a Swift Dictionary for the hash
  /// table, densecrf's arithmetic written out plainly.
  public init(referenceFeatures features: [Float], dimensions d: Int) throws {
    try Self.check(features.count, d)
    dimensions = d
    count = features.count / max(1, d)
    let d1 = d + 1
    vertexOfCorner = .allocate(capacity: max(1, count * d1))
    weightOfCorner = .allocate(capacity: max(1, count * d1))
    neighbors = .allocate(capacity: 1)
    let scale = Self.scaleFactors(d)
    var index: [[Int]: Int32] = [:]
    var keysInOrder: [[Int]] = []
    for i in 0..<count {
      var elevated = [Float](repeating: 0, count: d1)
      var sm: Float = 0
      for j in stride(from: d, to: 0, by: -1) {
        let cf = features[i * d + j - 1] * scale[j - 1]
        elevated[j] = sm - Float(j) * cf
        sm += cf
      }
      elevated[0] = sm
      var rem0 = [Float](repeating: 0, count: d1)
      var sum = 0
      for k in 0..<d1 {
        let v = (elevated[k] / Float(d1)).rounded(.toNearestOrEven)
        rem0[k] = v * Float(d1)
        sum += Int(v)
      }
      var rank = [Int](repeating: 0, count: d1)
      for a in 0..<d {
        for b in (a + 1)..<d1 {
          if elevated[a] - rem0[a] < elevated[b] - rem0[b] { rank[a] += 1 } else { rank[b] += 1 }
        }
      }
      for k in 0..<d1 {
        rank[k] += sum
        if rank[k] < 0 { rank[k] += d1; rem0[k] += Float(d1) }
        else if rank[k] > d { rank[k] -= d1; rem0[k] -= Float(d1) }
      }
      var bary = [Float](repeating: 0, count: d + 2)
      for k in 0..<d1 {
        let v = (elevated[k] - rem0[k]) / Float(d1)
        bary[d - rank[k]] += v
        bary[d - rank[k] + 1] -= v
      }
      bary[0] += 1 + bary[d + 1]
      for r in 0..<d1 {
        let key = (0..<d).map { k in Int(rem0[k]) + (rank[k] <= d - r ? r : r - d1) }
        guard key.allSatisfy({ abs($0) < Int(Int16.max) }) else { throw Self.rangeError }
        let v: Int32
        if let found = index[key] { v = found } else {
          v = Int32(keysInOrder.count)
          index[key] = v
          keysInOrder.append(key)
        }
        vertexOfCorner[i * d1 + r] = v
        weightOfCorner[i * d1 + r] = bary[r]
      }
    }
    vertexCount = keysInOrder.count
    let m = vertexCount
    neighbors.deallocate()
    neighbors = .allocate(capacity: max(1, d1 * m * 2))
    for j in 0..<d1 {
      for v in 0..<m {
        var n1 = keysInOrder[v].map { $0 - 1 }
        var n2 = keysInOrder[v].map { $0 + 1 }
        if j < d { n1[j] = keysInOrder[v][j] + d; n2[j] = keysInOrder[v][j] - d }
        neighbors[(j * m + v) * 2] = index[n1] ?? Int32(m)
        neighbors[(j * m + v) * 2 + 1] = index[n2] ?? Int32(m)
      }
    }
  }

  deinit {
    vertexOfCorner.deallocate()
    weightOfCorner.deallocate()
    neighbors.deallocate()
  }

  private static let rangeError = CRFError.badInput(
    "a lattice coordinate exceeds 16 bits: the features are too large; increase the kernel's standard deviations")

  private static func check(_ featureCount: Int, _ d: Int) throws {
    guard d >= 1 && d <= maximumDimensions else {
      throw CRFError.badInput("the lattice takes 1 to \(maximumDimensions) feature dimensions, got \(d)")
    }
    guard featureCount > 0 && featureCount % d == 0 else {
      throw CRFError.badInput("\(featureCount) feature values are not a positive multiple of \(d) dimensions")
    }
  }

  /// The diagonal of the elevation matrix E times 1/std (p.5-6 in Adams et al. 2010).
  static func scaleFactors(_ d: Int) -> [Float] {
    let invStd = (2.0 / 3.0).squareRoot() * Double(d + 1)
    return (0..<d).map { i in Float(1 / Double((i + 2) * (i + 1)).squareRoot() * invStd) }
  }

  /// Fast construction, step 1 (parallel over points): simplex, barycentric weights and the
  /// d+1 corner keys of every point.
  private func locate(features: UnsafePointer<Float>, points: UnsafeMutablePointer<PointSimplex>, threads: Int) throws {
    let d = dimensions, d1 = d + 1
    let scale = Self.scaleFactors(d)
    let invD1 = 1 / Float(d1), fd1 = Float(d1)
    let weights = weightOfCorner
    let overflow = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    overflow.initialize(to: 0)
    defer { overflow.deallocate() }
    do {
      scale.withUnsafeBufferPointer { scale in
        parallelRanges(count, threads: threads, grain: 4096) { _, range in
          let elevated = UnsafeMutablePointer<Float>.allocate(capacity: d1)
          let rem0 = UnsafeMutablePointer<Float>.allocate(capacity: d1)
          let bary = UnsafeMutablePointer<Float>.allocate(capacity: d1 + 1)
          let diff = UnsafeMutablePointer<Float>.allocate(capacity: d1)
          let byRank = UnsafeMutablePointer<Int>.allocate(capacity: d1)
          defer {
            elevated.deallocate(); rem0.deallocate(); bary.deallocate()
            diff.deallocate(); byRank.deallocate()
          }
          var bad = false
          let roundingShift: Float = 12_582_912  // 1.5 * 2^23: x + s - s rounds to nearest even
          for i in range {
            let f = features + i * d
            var sm: Float = 0
            var j = d
            while j > 0 {
              let cf = f[j - 1] * scale[j - 1]
              elevated[j] = sm - Float(j) * cf
              sm += cf
              j -= 1
            }
            elevated[0] = sm
            var sum = 0
            for k in 0..<d1 where !(abs(elevated[k]) < 30_000) { bad = true }
            if bad { break }
            for k in 0..<d1 {
              let v = (elevated[k] * invD1 + roundingShift) - roundingShift
              rem0[k] = v * fd1
              sum += Int(v)
            }
            // rank[k]: the position of coordinate k's remainder in descending order, ties to
            // the lower index (densecrf's pairwise counting, written without read-modify-write
            // chains through memory).
            for k in 0..<d1 { diff[k] = elevated[k] - rem0[k] }
            for k in 0..<d1 {
              let dk = diff[k]
              var rk = sum
              for j in 0..<k where diff[j] >= dk { rk += 1 }
              for j in (k + 1)..<d1 where diff[j] > dk { rk += 1 }
              // Back onto the plane: wrap the rank (and the remainder) into 0...d.
              if rk < 0 { rk += d1; rem0[k] += fd1 } else if rk > d { rk -= d1; rem0[k] -= fd1 }
              byRank[rk] = k
              bary[k] = (elevated[k] - rem0[k]) * invD1
            }
            // Barycentric weights (p.10 in Adams et al. 2010): weight j is the difference of
            // the remainders ranked d - j and d - j + 1; weight 0 wraps around.
            weights[i * d1] = bary[byRank[d]] + 1 - bary[byRank[0]]
            for j in 1..<d1 { weights[i * d1 + j] = bary[byRank[d - j]] - bary[byRank[d - j + 1]] }
            // Corner 0 is rem0; corner r adds 1 to every coordinate and wraps the one whose
            // rank is d + 1 - r back by d + 1 (see PointSimplex).
            var lo: UInt64 = 0, hi: UInt64 = 0
            for k in 0..<d {
              let bits = UInt64(UInt16(truncatingIfNeeded: Int(rem0[k]) + LatticeKey.bias))
              if k < 4 { lo |= bits << UInt64(16 * k) } else { hi |= bits << UInt64(16 * (k - 4)) }
            }
            var wraps: UInt32 = 0
            for r in 1..<d1 { wraps |= UInt32(byRank[d1 - r]) << UInt32(4 * (r - 1)) }
            points[i] = PointSimplex(corner0: LatticeKey(lo: lo, hi: hi), wraps: wraps)
          }
          if bad { overflow.pointee = 1 }
        }
      }
    }
    if overflow.pointee != 0 { throw Self.rangeError }
  }

  /// Fast construction, step 2 (sequential): the hash table, vertices numbered in order of
  /// first appearance. (Splitting the keys among threads by hash made both threads write
  /// the same cache lines of the corner table; slower than one thread.)
  private func insert(points: UnsafePointer<PointSimplex>) -> LatticeHashTable {
    let d = dimensions, d1 = d + 1, n = count
    let table = LatticeHashTable(expected: max(16, n / 2))
    let (onesLo, onesHi) = LatticeKey.ones(d)
    let wrapLo = (0...d).map { k in k < min(d, 4) ? UInt64(d1) << UInt64(16 * k) : 0 }
    let wrapHi = (0...d).map { k in k >= 4 && k < d ? UInt64(d1) << UInt64(16 * (k - 4)) : 0 }
    let vertices = vertexOfCorner
    // Neighbouring points mostly share corners: remember the last key of each corner.
    var lastKey = [LatticeKey](repeating: LatticeKey(lo: .max, hi: .max), count: d1)
    var lastVertex = [Int32](repeating: -1, count: d1)
    wrapLo.withUnsafeBufferPointer { wrapLo in
      wrapHi.withUnsafeBufferPointer { wrapHi in
        for i in 0..<n {
          var key = points[i].corner0
          var wraps = points[i].wraps
          for r in 0..<d1 {
            if r > 0 {
              let k = Int(wraps & 15)
              wraps >>= 4
              key = LatticeKey(lo: key.lo &+ onesLo &- wrapLo[k], hi: key.hi &+ onesHi &- wrapHi[k])
            }
            if key != lastKey[r] {
              lastKey[r] = key
              lastVertex[r] = table.findOrInsert(key, hash: key.hash)
            }
            vertices[i * d1 + r] = lastVertex[r]
          }
        }
      }
    }
    vertexCount = table.count
    return table
  }

  /// Fast construction, step 3: the neighbours of every vertex (parallel over vertices).
  private func finish(table: LatticeHashTable, threads: Int) {
    let d = dimensions, d1 = d + 1
    let m = vertexCount
    neighbors.deallocate()
    neighbors = .allocate(capacity: max(1, d1 * m * 2))
    let out = neighbors
    let keys = table.keysByVertex
    // Along direction j the neighbours are key -/+ 1 in every coordinate, +/- (d + 1) in
    // coordinate j (none when j is the implicit coordinate d).
    let (onesLo, onesHi) = LatticeKey.ones(d)
    let stepLo = (0...d).map { k in k < min(d, 4) ? UInt64(d1) << UInt64(16 * k) : 0 }
    let stepHi = (0...d).map { k in k >= 4 && k < d ? UInt64(d1) << UInt64(16 * (k - 4)) : 0 }
    func find(_ key: LatticeKey) -> Int32 {
      let v = table.find(key, hash: key.hash)
      return v < 0 ? Int32(m) : v
    }
    parallelRanges(m, threads: threads, grain: 2048) { _, range in
      for v in range {
        let key = keys[v]
        for j in 0..<d1 {
          out[(j * m + v) * 2] = find(LatticeKey(lo: key.lo &- onesLo &+ stepLo[j], hi: key.hi &- onesHi &+ stepHi[j]))
          out[(j * m + v) * 2 + 1] = find(LatticeKey(lo: key.lo &+ onesLo &- stepLo[j], hi: key.hi &+ onesHi &- stepHi[j]))
        }
      }
    }
  }

  // MARK: - Filtering, fast path

  /// Splat: buffer[vertex] += bary * pre[i] * rows[i - range.lowerBound] over the corners of
  /// every point i in `range` (pre nil: 1). One thread per buffer.
  @inline(__always)
  func splat(range: Range<Int>, rows: UnsafePointer<SIMD8<Float>>, vectors: Int, pre: UnsafePointer<Float>?,
             into buffer: UnsafeMutablePointer<SIMD8<Float>>) {
    let d1 = dimensions + 1
    let vertices = vertexOfCorner, weights = weightOfCorner
    if vectors == 3 {
      for i in range {
        let q = rows + (i - range.lowerBound) * 3
        let q0 = q[0], q1 = q[1], q2 = q[2]
        let scale = pre?[i] ?? 1
        for c in (i * d1)..<(i * d1 + d1) {
          let w = weights[c] * scale
          let row = buffer + Int(vertices[c]) * 3
          row[0] += w * q0
          row[1] += w * q1
          row[2] += w * q2
        }
      }
    } else if vectors == 1 {
      for i in range {
        let q0 = rows[i - range.lowerBound]
        let scale = pre?[i] ?? 1
        for c in (i * d1)..<(i * d1 + d1) { buffer[Int(vertices[c])] += (weights[c] * scale) * q0 }
      }
    } else {
      for i in range {
        let q = rows + (i - range.lowerBound) * vectors
        let scale = pre?[i] ?? 1
        for c in (i * d1)..<(i * d1 + d1) {
          let w = weights[c] * scale
          let row = buffer + Int(vertices[c]) * vectors
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
                     threads: Int) -> UnsafeMutablePointer<SIMD8<Float>> {
    let m = vertexCount, d1 = dimensions + 1
    let first = partials[0]
    if partials.count > 1 {
      parallelRanges(m * vectors, threads: threads, grain: 4096) { _, range in
        for p in 1..<partials.count {
          let other = partials[p]
          for e in range { first[e] += other[e] }
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
        let pairs = nb + j * m * 2
        if vectors == 3 {
          for v in range {
            let p = src + v * 3
            let n1 = src + Int(pairs[2 * v]) * 3
            let n2 = src + Int(pairs[2 * v + 1]) * 3
            let o = dst + v * 3
            o[0] = p[0] + 0.5 * (n1[0] + n2[0])
            o[1] = p[1] + 0.5 * (n1[1] + n2[1])
            o[2] = p[2] + 0.5 * (n1[2] + n2[2])
          }
        } else if vectors == 1 {
          for v in range {
            dst[v] = src[v] + 0.5 * (src[Int(pairs[2 * v])] + src[Int(pairs[2 * v + 1])])
          }
        } else {
          for v in range {
            let p = src + v * vectors
            let n1 = src + Int(pairs[2 * v]) * vectors
            let n2 = src + Int(pairs[2 * v + 1]) * vectors
            let o = dst + v * vectors
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
             base: UnsafePointer<SIMD8<Float>>? = nil) {
    let d1 = dimensions + 1
    let vertices = vertexOfCorner, weights = weightOfCorner
    let factor = scale * alpha
    if vectors == 3 {
      for i in range {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>()
        for c in (i * d1)..<(i * d1 + d1) {
          let w = weights[c]
          let row = values + Int(vertices[c]) * 3
          s0 += w * row[0]
          s1 += w * row[1]
          s2 += w * row[2]
        }
        let f = factor * (post?[i] ?? 1)
        let o = out + (i - range.lowerBound) * 3
        if let base {
          let b = base + (i - range.lowerBound) * 3
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
        for c in (i * d1)..<(i * d1 + d1) { sum += weights[c] * values[Int(vertices[c])] }
        let f = factor * (post?[i] ?? 1)
        let o = out + (i - range.lowerBound)
        o[0] = accumulate ? o[0] + f * sum : f * sum
      }
    } else {
      for i in range {
        let o = out + (i - range.lowerBound) * vectors
        if let base { o.update(from: base + (i - range.lowerBound) * vectors, count: vectors) }
        else if !accumulate { o.update(repeating: .zero, count: vectors) }
        let f = factor * (post?[i] ?? 1)
        for c in (i * d1)..<(i * d1 + d1) {
          let w = f * weights[c]
          let row = values + Int(vertices[c]) * vectors
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
        for c in (i * d1)..<(i * d1 + d1) { out[Int(vertices[c])] += weights[c] * w }
      }
    }
    for p in 1..<max(1, parts) { for v in 0..<m { buffers[0][v] += buffers[p][v] } }
    var source = buffers[0], target = buffers[parts]
    for j in 0..<d1 {
      let pairs = neighbors + j * m * 2
      for v in 0..<m { target[v] = source[v] + 0.5 * (source[Int(pairs[2 * v])] + source[Int(pairs[2 * v + 1])]) }
      swap(&source, &target)
    }
    let values = source, alpha = self.alpha
    return [Float](unsafeUninitializedCapacity: n) { out, initialized in
      let out = out.baseAddress!
      parallelRanges(n, threads: threads, grain: grain) { _, range in
        for i in range {
          var sum: Float = 0
          for c in (i * d1)..<(i * d1 + d1) { sum += weights[c] * values[Int(vertices[c])] }
          out[i] = alpha * (post?[i] ?? 1) * sum
        }
      }
      initialized = n
    }
  }

  /// The fast filter of `values` ([count][valueSize]) with `threads` threads: returns
  /// sum_j k(f_i, f_j) values_j as the lattice approximates it, [count][valueSize].
  public func filter(_ values: [Float], valueSize: Int, threads: Int = crfDefaultThreads) -> [Float] {
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
                 into: partials[part].base)
    }
    let blurred = reduceAndBlur(partials: partials.map(\.base), vectors: vectors, x: x.base, y: y.base,
                                threads: threads)
    parallelRanges(count, threads: threads) { _, range in
      self.slice(values: blurred, vectors: vectors, range: range, post: nil,
                 into: output.base + range.lowerBound * vectors, scale: 1, accumulate: false)
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

  /// The vertex indices of every point's simplex corners, [count][d+1] (for tests).
  public var cornerVertices: [Int32] { Array(UnsafeBufferPointer(start: vertexOfCorner, count: count * (dimensions + 1))) }
  /// The barycentric weights of every point's simplex corners, [count][d+1] (for tests).
  public var cornerWeights: [Float] { Array(UnsafeBufferPointer(start: weightOfCorner, count: count * (dimensions + 1))) }
}

/// A point's simplex, compactly: the key of corner 0 and, 4 bits per step, the coordinate
/// that wraps at each next corner (corner r = corner r-1 + 1 in every coordinate, minus
/// d + 1 in coordinate wraps[r-1]; d stands for the implicit last coordinate).
struct PointSimplex {
  var corner0: LatticeKey
  var wraps: UInt32
}

/// d <= 7 lattice coordinates of 16 bits, packed.
struct LatticeKey: Equatable {
  var lo: UInt64
  var hi: UInt64

  /// Coordinates are stored plus this bias, as unsigned 16-bit lanes: in range (|c| < 32000)
  /// they never borrow from or carry into a neighbouring lane when stepped by small amounts.
  static let bias = 32_768

  /// One in each of the d lanes.
  static func ones(_ d: Int) -> (UInt64, UInt64) {
    var lo: UInt64 = 0, hi: UInt64 = 0
    for k in 0..<d { if k < 4 { lo |= 1 << UInt64(16 * k) } else { hi |= 1 << UInt64(16 * (k - 4)) } }
    return (lo, hi)
  }

  @inline(__always) var hash: UInt64 {
    var h = lo &* 0x9E37_79B9_7F4A_7C15 ^ (hi &+ 0x632B_E59B_D9B4_E019) &* 0xC2B2_AE3D_27D4_EB4F
    h ^= h >> 31
    h = h &* 0xD6E8_FEB8_6659_FD93
    h ^= h >> 32
    return h
  }
}

/// Open addressing with linear probing; slots keep the key inline so a probe reads one line.
final class LatticeHashTable {
  private struct Slot { var key: LatticeKey; var vertex: Int32 }
  private var slots: UnsafeMutablePointer<Slot>
  private var mask: Int
  private(set) var count = 0
  private(set) var keysByVertex: [LatticeKey] = []

  init(expected: Int) {
    var capacity = 64
    while capacity < 2 * expected { capacity <<= 1 }
    mask = capacity - 1
    slots = .allocate(capacity: capacity)
    slots.initialize(repeating: Slot(key: LatticeKey(lo: 0, hi: 0), vertex: -1), count: capacity)
    keysByVertex.reserveCapacity(expected)
  }

  deinit { slots.deallocate() }

  @inline(__always) func find(_ key: LatticeKey, hash: UInt64) -> Int32 {
    var h = Int(truncatingIfNeeded: hash) & mask
    while true {
      let s = slots[h]
      if s.vertex < 0 { return -1 }
      if s.key == key { return s.vertex }
      h = (h + 1) & mask
    }
  }

  func findOrInsert(_ key: LatticeKey, hash: UInt64) -> Int32 {
    if 2 * (count + 1) > mask + 1 { grow() }
    var h = Int(truncatingIfNeeded: hash) & mask
    while true {
      let s = slots[h]
      if s.vertex < 0 {
        let v = Int32(count)
        slots[h] = Slot(key: key, vertex: v)
        keysByVertex.append(key)
        count += 1
        return v
      }
      if s.key == key { return s.vertex }
      h = (h + 1) & mask
    }
  }

  private func grow() {
    let old = slots, oldCapacity = mask + 1
    let capacity = oldCapacity * 2
    mask = capacity - 1
    slots = .allocate(capacity: capacity)
    slots.initialize(repeating: Slot(key: LatticeKey(lo: 0, hi: 0), vertex: -1), count: capacity)
    for i in 0..<oldCapacity where old[i].vertex >= 0 {
      var h = Int(truncatingIfNeeded: old[i].key.hash) & mask
      while slots[h].vertex >= 0 { h = (h + 1) & mask }
      slots[h] = old[i]
    }
    old.deallocate()
  }
}
