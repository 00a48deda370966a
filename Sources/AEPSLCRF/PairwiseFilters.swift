/// What a pairwise term needs from its kernel: the normalised filtering
/// m_i = post_i sum_j k(f_i, f_j) pre_j Q_j of all labels at once. The input arrives in
/// pieces (`splat`, from several threads, while the CRF computes Q block by block), the
/// filtering completes in `finishSplat`, and the output is read per block (`addMessages`).
protocol MessageFilter: AnyObject {
  /// Gets ready to take splats from threads 0..<parts (each then calls `clear(part:)`).
  func beginSplat(parts: Int, threads: Int)
  /// Empties the splat storage of one thread; called by that thread before it splats.
  func clear(part: Int)
  /// Takes the Q rows of points `range` (rows[0] belongs to range.lowerBound) on thread `part`.
  func splat(range: Range<Int>, rows: UnsafePointer<SIMD8<Float>>, part: Int)
  /// Finishes the filtering of everything splatted since `beginSplat`.
  func finishSplat(threads: Int)
  /// out[i - range.lowerBound] = base[i - range.lowerBound] + scale * m_i for every i in
  /// `range`; base nil means out itself.
  func addMessages(range: Range<Int>, into out: UnsafeMutablePointer<SIMD8<Float>>, scale: Float,
                   base: UnsafePointer<SIMD8<Float>>?)
  /// (K~ 1)_i = post_i sum_j k(f_i, f_j) pre_j: the largest message a pixel can get from Q
  /// in the probability simplex (messages of a label lie in [0, this]).
  var unitResponse: [Float] { get }
}

/// A kernel filtered on a permutohedral lattice; `pre` scales the splat, `post` the slice.
final class LatticeFilter: MessageFilter {
  let lattice: PermutohedralLattice
  let vectors: Int
  let code: CRFVectorCode
  private let pre: UnsafeMutablePointer<Float>
  private let post: UnsafeMutablePointer<Float>
  // Read on every block of every update: no runtime exclusivity checks (a swift_beginAccess
  // each without -Ounchecked). They change only between parallel phases, in
  // beginSplat and finishSplat.
  @exclusivity(unchecked) private var partials: [VectorBuffer] = []
  @exclusivity(unchecked) private var usedParts = 0
  private let x: VectorBuffer
  private let y: VectorBuffer
  @exclusivity(unchecked) private var values: UnsafeMutablePointer<SIMD8<Float>>
  let unitResponse: [Float]

  init(lattice: PermutohedralLattice, normalization: KernelNormalization, vectors: Int, threads: Int,
       code: CRFVectorCode) {
    self.lattice = lattice
    self.vectors = vectors
    self.code = code
    let n = lattice.count, m = lattice.vertexCount
    x = VectorBuffer(count: (m + 1) * vectors)
    y = VectorBuffer(count: (m + 1) * vectors)
    values = x.base
    pre = .allocate(capacity: n)
    post = .allocate(capacity: n)
    // Row sums n_i = (K 1)_i through the lattice itself, as densecrf does.
    let sums = lattice.filterScalar(pre: nil, post: nil, threads: threads)
    let preOut = pre, postOut = post
    sums.withUnsafeBufferPointer { sums in
      parallelRanges(n, threads: threads, grain: 8192) { _, range in
        for i in range {
          let s = sums[i]
          switch normalization {
          case .symmetric: let f = 1 / (s + 1e-20).squareRoot(); preOut[i] = f; postOut[i] = f
          case .before: preOut[i] = 1 / (s + 1e-20); postOut[i] = 1
          case .after: preOut[i] = 1; postOut[i] = 1 / (s + 1e-20)
          case .none: preOut[i] = 1; postOut[i] = 1
          }
        }
      }
    }
    // K~ 1 = post * K (pre * 1).
    unitResponse = lattice.filterScalar(pre: pre, post: post, threads: threads)
  }

  deinit {
    pre.deallocate()
    post.deallocate()
  }

  func beginSplat(parts: Int, threads: Int) {
    let rows = (lattice.vertexCount + 1) * vectors
    while partials.count < parts { partials.append(VectorBuffer(count: rows, zeroed: true)) }
    usedParts = parts
  }

  func clear(part: Int) { partials[part].zero() }

  func splat(range: Range<Int>, rows: UnsafePointer<SIMD8<Float>>, part: Int) {
    lattice.splat(range: range, rows: rows, vectors: vectors, pre: pre, into: partials[part].base, code: code)
  }

  func finishSplat(threads: Int) {
    values = lattice.reduceAndBlur(partials: partials[0..<usedParts].map(\.base), vectors: vectors,
                                   x: x.base, y: y.base, threads: threads, code: code)
  }

  func addMessages(range: Range<Int>, into out: UnsafeMutablePointer<SIMD8<Float>>, scale: Float,
                   base: UnsafePointer<SIMD8<Float>>?) {
    lattice.slice(values: values, vectors: vectors, range: range, post: post, into: out, scale: scale,
                  accumulate: true, base: base, code: code)
  }
}

/// The Gaussian kernel on the pixel grid, exact, by a separable blur.
final class SeparableFilter: MessageFilter {
  let blur: SeparableGaussian
  private let input: VectorBuffer

  let unitResponse: [Float]

  init(blur: SeparableGaussian) {
    self.blur = blur
    input = VectorBuffer(count: blur.width * blur.height * blur.vectors)
    let (perColumn, perRow) = blur.unitResponses
    unitResponse = (0..<(blur.width * blur.height)).map { i in
      blur.postX[i % blur.width] * blur.postY[i / blur.width] * perColumn[i % blur.width] * perRow[i / blur.width]
    }
  }

  func beginSplat(parts: Int, threads: Int) {}

  func clear(part: Int) {}

  func splat(range: Range<Int>, rows: UnsafePointer<SIMD8<Float>>, part: Int) {
    (input.base + range.lowerBound * blur.vectors).update(from: rows, count: range.count * blur.vectors)
  }

  func finishSplat(threads: Int) { blur.blur(input.base, threads: threads) }

  func addMessages(range: Range<Int>, into out: UnsafeMutablePointer<SIMD8<Float>>, scale: Float,
                   base: UnsafePointer<SIMD8<Float>>?) {
    let w = blur.width, nv = blur.vectors, src = blur.output.base
    blur.postX.withUnsafeBufferPointer { px in
      blur.postY.withUnsafeBufferPointer { py in
        // Column and row are stepped, not divided out of i per pixel; offsets wrap (&+, &*).
        var x = range.lowerBound % w, y = range.lowerBound / w
        for i in range {
          let s = scale * px[x] * py[y]
          let o = out + (i &- range.lowerBound) &* nv, p = src + i &* nv
          let b = base.map { $0 + (i &- range.lowerBound) &* nv } ?? UnsafePointer(o)
          for k in 0..<nv { o[k] = b[k] + s * p[k] }
          x &+= 1
          if x == w { x = 0; y &+= 1 }
        }
      }
    }
  }
}
