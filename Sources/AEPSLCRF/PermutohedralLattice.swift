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
///
/// The package builds without `-Ounchecked` (SwiftPM refuses unsafe flags in a dependency), so
/// the fast path says by hand what that flag said: its loops walk pointers, not arrays, and
/// its index and hash arithmetic wraps (`&+`, `&*`), the indices being far below Int.max.
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
  /// d+1 corner keys of every point. Index arithmetic wraps (&+, &*): every index is below
  /// count * (d + 1), far from Int.max, and the package builds without -Ounchecked.
  private func locate(features: UnsafePointer<Float>, points: UnsafeMutablePointer<PointSimplex>, threads: Int) throws {
    let d = dimensions, d1 = d + 1
    let scaleArray = Self.scaleFactors(d)
    let invD1 = 1 / Float(d1), fd1 = Float(d1)
    let weights = weightOfCorner
    let overflow = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    overflow.initialize(to: 0)
    defer { overflow.deallocate() }
    scaleArray.withUnsafeBufferPointer { scaleBuffer in
      let scale = scaleBuffer.baseAddress!
      parallelRanges(count, threads: threads, grain: 4096) { _, range in
        // One scratch block per thread: elevated, rem0, bary, diff (d + 1 each), byRank.
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 4 * d1)
        let byRank = UnsafeMutablePointer<Int>.allocate(capacity: d1)
        defer { scratch.deallocate(); byRank.deallocate() }
        let elevated = scratch, rem0 = scratch + d1, bary = scratch + 2 * d1, diff = scratch + 3 * d1
        var bad = false
        let roundingShift: Float = 12_582_912  // 1.5 * 2^23: x + s - s rounds to nearest even
        for i in range {
          let f = features + i &* d
          var sm: Float = 0
          var j = d
          while j > 0 {
            let cf = f[j &- 1] * scale[j &- 1]
            elevated[j] = sm - Float(j) * cf
            sm += cf
            j &-= 1
          }
          elevated[0] = sm
          var sum = 0
          for k in 0..<d1 where !(abs(elevated[k]) < 30_000) { bad = true }
          if bad { break }
          // In range (checked above) v is a small integer, so Int(v) cannot trap.
          for k in 0..<d1 {
            let v = (elevated[k] * invD1 + roundingShift) - roundingShift
            rem0[k] = v * fd1
            sum &+= Int(v)
          }
          // rank[k]: the position of coordinate k's remainder in descending order, ties to
          // the lower index (densecrf's pairwise counting, written without read-modify-write
          // chains through memory).
          for k in 0..<d1 { diff[k] = elevated[k] - rem0[k] }
          for k in 0..<d1 {
            let dk = diff[k]
            var rk = sum
            var j = 0
            while j < k { if diff[j] >= dk { rk &+= 1 }; j &+= 1 }
            j = k &+ 1
            while j < d1 { if diff[j] > dk { rk &+= 1 }; j &+= 1 }
            // Back onto the plane: wrap the rank (and the remainder) into 0...d.
            if rk < 0 { rk &+= d1; rem0[k] += fd1 } else if rk > d { rk &-= d1; rem0[k] -= fd1 }
            byRank[rk] = k
            bary[k] = (elevated[k] - rem0[k]) * invD1
          }
          // Barycentric weights (p.10 in Adams et al. 2010): weight j is the difference of
          // the remainders ranked d - j and d - j + 1; weight 0 wraps around.
          let w = weights + i &* d1
          w[0] = bary[byRank[d]] + 1 - bary[byRank[0]]
          for j in 1..<d1 { w[j] = bary[byRank[d &- j]] - bary[byRank[d &- j &+ 1]] }
          // Corner 0 is rem0; corner r adds 1 to every coordinate and wraps the one whose
          // rank is d + 1 - r back by d + 1 (see PointSimplex).
          var lo: UInt64 = 0, hi: UInt64 = 0
          for k in 0..<d {
            let bits = UInt64(UInt16(truncatingIfNeeded: Int(rem0[k]) &+ LatticeKey.bias))
            if k < 4 { lo |= bits &<< UInt64(16 &* k) } else { hi |= bits &<< UInt64(16 &* (k &- 4)) }
          }
          var wraps: UInt32 = 0
          for r in 1..<d1 { wraps |= UInt32(truncatingIfNeeded: byRank[d1 &- r]) &<< UInt32(4 &* (r &- 1)) }
          points[i] = PointSimplex(corner0: LatticeKey(lo: lo, hi: hi), wraps: wraps)
        }
        if bad { overflow.pointee = 1 }
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
    let (wrapLoArray, wrapHiArray) = LatticeKey.steps(d)
    // Neighbouring points mostly share corners: remember the last key and vertex of each
    // corner. Buffers, not arrays, so the per-corner loop has no bounds or uniqueness checks.
    let lastKey = UnsafeMutablePointer<LatticeKey>.allocate(capacity: d1)
    lastKey.initialize(repeating: LatticeKey(lo: .max, hi: .max), count: d1)
    let lastVertex = UnsafeMutablePointer<Int32>.allocate(capacity: d1)
    lastVertex.initialize(repeating: -1, count: d1)
    defer { lastKey.deallocate(); lastVertex.deallocate() }
    wrapLoArray.withUnsafeBufferPointer { wrapLo in
      wrapHiArray.withUnsafeBufferPointer { wrapHi in
        for i in 0..<n {
          var key = points[i].corner0
          var wraps = points[i].wraps
          let vertices = vertexOfCorner + i &* d1
          for r in 0..<d1 {
            if r > 0 {
              let k = Int(wraps & 15)
              wraps &>>= 4
              key = LatticeKey(lo: key.lo &+ onesLo &- wrapLo[k], hi: key.hi &+ onesHi &- wrapHi[k])
            }
            if key != lastKey[r] {
              lastKey[r] = key
              lastVertex[r] = table.findOrInsert(key, hash: key.hash)
            }
            vertices[r] = lastVertex[r]
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
    // Along direction j the neighbours are key -/+ 1 in every coordinate, +/- (d + 1) in
    // coordinate j (none when j is the implicit coordinate d).
    let (onesLo, onesHi) = LatticeKey.ones(d)
    let (stepLoArray, stepHiArray) = LatticeKey.steps(d)
    func find(_ key: LatticeKey) -> Int32 {
      let v = table.find(key, hash: key.hash)
      return v < 0 ? Int32(truncatingIfNeeded: m) : v
    }
    table.keysByVertex.withUnsafeBufferPointer { keys in
      stepLoArray.withUnsafeBufferPointer { stepLo in
        stepHiArray.withUnsafeBufferPointer { stepHi in
          parallelRanges(m, threads: threads, grain: 2048) { _, range in
            for v in range {
              let key = keys[v]
              for j in 0..<d1 {
                let pair = out + (j &* m &+ v) &* 2
                pair[0] = find(LatticeKey(lo: key.lo &- onesLo &+ stepLo[j], hi: key.hi &- onesHi &+ stepHi[j]))
                pair[1] = find(LatticeKey(lo: key.lo &+ onesLo &- stepLo[j], hi: key.hi &+ onesHi &- stepHi[j]))
              }
            }
          }
        }
      }
    }
  }

  /// The vertex indices of every point's simplex corners, [count][d+1] (for tests).
  public var cornerVertices: [Int32] { Array(UnsafeBufferPointer(start: vertexOfCorner, count: count * (dimensions + 1))) }
  /// The barycentric weights of every point's simplex corners, [count][d+1] (for tests).
  public var cornerWeights: [Float] { Array(UnsafeBufferPointer(start: weightOfCorner, count: count * (dimensions + 1))) }
}
