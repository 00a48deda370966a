import CCRFKernels
import Foundation

/// A fully connected CRF over the pixels of an image (Kraehenbuehl and Koltun 2011): a unary
/// term plus a list of pairwise potentials, and mean-field inference like densecrf's
/// `DenseCRF::inference`:
///
///     Q = softmax(-U)
///     repeat n times: Q = softmax(-U - sum_k mu_k (K~_k Q))     (all pixels at once)
///
/// with K~ the normalised kernel matrix (diagonal included, as densecrf). Marginals are kept
/// as [pixel][labels padded to a multiple of 8], so every filter and the softmax work on all
/// labels of a pixel as SIMD vectors; filtering and the update run on `threads` threads.
///
/// For Potts compatibilities and symmetric (or no) normalisation this update cannot raise
/// the mean-field free energy `freeEnergy(_:)` when K~ is positive semidefinite, as the exact
/// Gaussian kernel is: the pairwise part is then concave on the label simplex, and the
/// update minimises its linearisation plus the convex rest (Kraehenbuehl and Koltun 2013).
public final class DenseCRF {
  public let width: Int
  public let height: Int
  public let labels: Int
  /// Threads for building lattices and for inference.
  public var threads: Int
  /// The code of the hot loops: the fastest this CPU runs unless told (tests compare them).
  public let vectorCode: CRFVectorCode
  public private(set) var potentials: [PairwisePotential] = []

  /// SIMD8 vectors per pixel.
  let vectors: Int
  /// -U, [pixel][vectors]; padding lanes hold -1e30 so that they never win the max.
  let negativeUnary: VectorBuffer
  private(set) var filters: [MessageFilter] = []

  var pixelCount: Int { width * height }

  public init(width: Int, height: Int, labels: Int, threads: Int = crfDefaultThreads,
              vectorCode: CRFVectorCode = .best) throws {
    guard width > 0 && height > 0 else { throw CRFError.badInput("image size must be positive, got \(width)x\(height)") }
    guard labels >= 1 else { throw CRFError.badInput("need at least one label, got \(labels)") }
    self.width = width
    self.height = height
    self.labels = labels
    self.threads = max(1, threads)
    self.vectorCode = vectorCode
    vectors = (labels + 7) / 8
    negativeUnary = VectorBuffer(count: width * height * vectors, zeroed: true)
    setPadding(negativeUnary.base, uniform: -1e30)
  }

  // MARK: - Unary

  /// Sets U from energies stored [labels][height][width] (channels first).
  public func setUnary(energies: [Float]) throws {
    try checkPlanes(energies.count, "unary energies")
    guard transform(energies, floor: nil) else { throw CRFError.badInput("unary energies hold NaN or infinite values") }
  }

  /// Sets U = -ln(max(p, floor)) from probabilities stored [labels][height][width]
  /// (pydensecrf's `unary_from_softmax`, which DeepLab's probability maps go through).
  public func setUnary(probabilities: [Float], floor: Float = 1e-5) throws {
    try checkPlanes(probabilities.count, "probabilities")
    guard floor > 0 && floor <= 1 else { throw CRFError.badParameter("probability floor must be in (0, 1], got \(floor)") }
    guard transform(probabilities, floor: floor) else {
      throw CRFError.badInput("probabilities hold NaN or infinite values")
    }
  }

  /// -U[pixel] from [labels][H][W] planes, eight labels at a time: -energy, or
  /// ln(clamp(p, floor, 1)) when `floor` is given; padding lanes get -1e30. Transposes a
  /// block of pixels at a time, one plane after another. Returns false if a value is not
  /// finite.
  private func transform(_ planes: [Float], floor: Float?) -> Bool {
    let low = SIMD8<Float>(repeating: floor ?? 0), one = SIMD8<Float>(repeating: 1)
    let nonFinite = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    nonFinite.initialize(to: 0)
    defer { nonFinite.deallocate() }
    let n = pixelCount, nv = vectors, labels = self.labels, base = negativeUnary.base, stride = nv * 8
    let raw = UnsafeMutableRawPointer(base).assumingMemoryBound(to: Float.self), code = vectorCode
    let lastMask = Self.laneMask(labels: labels)
    planes.withUnsafeBufferPointer { src in
      let src = src.baseAddress!
      parallelRanges(n, threads: threads, grain: 4096) { _, range in
        var start = range.lowerBound
        while start < range.upperBound {
          let end = Swift.min(start &+ 256, range.upperBound)
          for l in 0..<labels {
            let plane = src + l &* n
            for i in start..<end { raw[i &* stride &+ l] = plane[i] }
          }
          if code.usesAVX2(vectors: nv) {
            let bad = crf_unary_rows_avx2(floats(base + start &* nv), end &- start, Int32(nv), Int32(labels), floor ?? 0)
            if bad != 0 { nonFinite.pointee = 1 }
            start = end
            continue
          }
          // x * 0 is 0 for finite x and NaN otherwise.
          var probe = SIMD8<Float>()
          for i in start..<end {
            let row = base + i &* nv
            for k in 0..<nv {
              let x = row[k]
              let y = floor == nil ? -x : vectorLog(vmin(vmax(x, low), one))
              probe += x * 0 + y * 0
              row[k] = k == nv &- 1 ? blend(lastMask, y, SIMD8(repeating: -1e30)) : y
            }
          }
          if !hsum(probe).isFinite { nonFinite.pointee = 1 }
          start = end
        }
      }
    }
    return nonFinite.pointee == 0
  }

  /// U as [labels][height][width].
  public var unaryEnergies: [Float] {
    var out = [Float](repeating: 0, count: labels * pixelCount)
    let n = pixelCount, stride = vectors * 8
    let raw = UnsafeRawPointer(negativeUnary.base).assumingMemoryBound(to: Float.self)
    for i in 0..<n { for l in 0..<labels { out[l * n + i] = -raw[i * stride + l] } }
    return out
  }

  private func checkPlanes(_ count: Int, _ what: String) throws {
    guard count == labels * pixelCount else {
      throw CRFError.badInput("\(what) hold \(count) values; [\(labels)][\(height)][\(width)] needs \(labels * pixelCount)")
    }
  }

  private func setPadding(_ buffer: UnsafeMutablePointer<SIMD8<Float>>, uniform value: Float) {
    let raw = UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: Float.self)
    let stride = vectors * 8
    guard labels < stride else { return }
    for i in 0..<pixelCount { for l in labels..<stride { raw[i * stride + l] = value } }
  }

  /// All ones in the lanes of the last vector that hold labels, zeros in the padding.
  static func laneMask(labels: Int) -> SIMD8<Int32> {
    let used = labels - ((labels + 7) / 8 - 1) * 8
    var mask = SIMD8<Int32>()
    for k in 0..<used { mask[k] = -1 }
    return mask
  }

  // MARK: - Pairwise potentials

  /// A kernel over arbitrary features, [pixels][dimensions] already divided by their
  /// standard deviations, filtered on a permutohedral lattice.
  public func addPairwise(features: [Float], dimensions: Int, compatibility: LabelCompatibility,
                          normalization: KernelNormalization = .symmetric) throws {
    guard features.count == pixelCount * dimensions else {
      throw CRFError.badInput("features hold \(features.count) values; \(pixelCount) pixels x \(dimensions) dimensions needs \(pixelCount * dimensions)")
    }
    try addLattice(PairwisePotential(kernel: .features(features, dimensions: dimensions), width: width, height: height,
                                     compatibility: compatibility, normalization: normalization, evaluation: .lattice))
  }

  /// The smoothness kernel exp(-|p_i - p_j|^2 / (2 sxy^2)) on pixel positions
  /// (densecrf's addPairwiseGaussian).
  public func addPairwiseGaussian(sxy: Float, compatibility: LabelCompatibility,
                                  normalization: KernelNormalization = .symmetric,
                                  filter: SpatialFilter = .lattice, truncation: Float = 4) throws {
    guard sxy > 0 else { throw CRFError.badParameter("gaussian sxy must be positive, got \(sxy)") }
    switch filter {
    case .lattice:
      try addLattice(PairwisePotential(kernel: .gaussian(sxy: sxy), width: width, height: height,
                                       compatibility: compatibility, normalization: normalization, evaluation: .lattice))
    case .separable:
      guard truncation >= 1 else { throw CRFError.badParameter("truncation must be at least 1, got \(truncation)") }
      try checkCompatibility(compatibility)
      let blur = SeparableGaussian(width: width, height: height, sigmaX: sxy, sigmaY: sxy, truncation: truncation,
                                   normalization: normalization, vectors: vectors)
      filters.append(SeparableFilter(blur: blur))
      potentials.append(PairwisePotential(
        kernel: .gaussian(sxy: sxy), width: width, height: height, compatibility: compatibility,
        normalization: normalization, evaluation: .separableGaussian(sigmaX: sxy, sigmaY: sxy, truncation: truncation)))
    }
  }

  /// The appearance kernel exp(-|p_i - p_j|^2 / (2 sxy^2) - |I_i - I_j|^2 / (2 srgb^2)) on
  /// positions and RGB bytes stored [height][width][3] (densecrf's addPairwiseBilateral).
  public func addPairwiseBilateral(sxy: Float, srgb: Float, image: [UInt8], compatibility: LabelCompatibility,
                                   normalization: KernelNormalization = .symmetric) throws {
    guard sxy > 0, srgb > 0 else { throw CRFError.badParameter("bilateral sxy and srgb must be positive, got \(sxy), \(srgb)") }
    guard image.count == pixelCount * 3 else {
      throw CRFError.badInput("the image holds \(image.count) bytes; \(width)x\(height) RGB needs \(pixelCount * 3)")
    }
    try addLattice(PairwisePotential(kernel: .bilateral(sxy: sxy, srgb: srgb, image: image), width: width, height: height,
                                     compatibility: compatibility, normalization: normalization, evaluation: .lattice))
  }

  private func addLattice(_ potential: PairwisePotential) throws {
    try checkCompatibility(potential.compatibility)
    let features = potential.features(threads: threads)
    let lattice = try PermutohedralLattice(features: features, dimensions: potential.dimensions, threads: threads)
    filters.append(LatticeFilter(lattice: lattice, normalization: potential.normalization, vectors: vectors,
                                 threads: threads, code: vectorCode))
    potentials.append(potential)
  }

  private func checkCompatibility(_ compatibility: LabelCompatibility) throws {
    switch compatibility {
    case .potts(let w):
      guard w.isFinite else { throw CRFError.badParameter("Potts weight must be finite, got \(w)") }
    case .matrix(let m):
      guard m.count == labels * labels, m.allSatisfy(\.isFinite) else {
        throw CRFError.badParameter("a compatibility matrix needs \(labels)x\(labels) finite values, got \(m.count)")
      }
    }
  }

  /// Lattice vertices of each potential (0 for a separable Gaussian), for reports.
  public var latticeVertexCounts: [Int] {
    filters.map { ($0 as? LatticeFilter)?.lattice.vertexCount ?? 0 }
  }

  // MARK: - Inference

  /// Runs `iterations` mean-field updates from softmax(-U). `observe` sees the marginals
  /// after every update (and at 0, the start), at the cost of a copy each time.
  public func inference(iterations: Int, observe: ((Int, Marginals) -> Void)? = nil) -> Marginals {
    var result: Marginals?
    run(iterations: iterations, labelsOnly: false, observe: observe) { q, _ in
      result = Marginals(copying: q, width: width, height: height, labels: labels)
    }
    return result!
  }

  /// The most probable label of every pixel after `iterations` updates, [height][width]
  /// (the argmax of the last update's logits, so its softmax is skipped).
  public func labelMap(iterations: Int) -> [Int32] {
    var result: [Int32] = []
    run(iterations: iterations, labelsOnly: true, observe: nil) { _, labels in result = labels }
    return result
  }

  /// Per-pixel softmax shifts that make the row max unnecessary. With Potts weights w >= 0
  /// every message of pixel i lies in [0, B_i], B_i = sum_k w_k (K~_k 1)_i, so its largest
  /// logit lies in [max(-U_i), max(-U_i) + B_i]; shifting by max(-U_i) + B_i / 2 keeps that
  /// logit within B_i / 2 of 0, far from overflow and underflow. NaN (use the exact max)
  /// where B_i > 120; nil when a compatibility is not a non-negative Potts weight.
  private func softmaxShifts() -> [Float]? {
    var weights: [Float] = []
    for potential in potentials {
      guard case .potts(let w) = potential.compatibility, w >= 0 else { return nil }
      weights.append(w)
    }
    let n = pixelCount, nv = vectors, negU = negativeUnary.base
    let units = zip(filters, weights).filter { $0.1 > 0 }.map { ($0.0.unitResponse, $0.1) }
    return [Float](unsafeUninitializedCapacity: n) { out, count in
      let out = out.baseAddress!
      parallelRanges(n, threads: threads, grain: 8192) { _, range in
        for i in range {
          var bound: Float = 0
          for (unit, w) in units { bound += w * unit[i] }
          let row = negU + i &* nv
          var m = row[0]
          for k in 1..<nv { m = vmax(m, row[k]) }
          out[i] = bound <= 120 ? hmax(m) + bound / 2 : .nan
        }
      }
      count = n
    }
  }

  /// The mean-field loop. Each update works through the image in blocks of pixels, one part
  /// of the image per thread: unary plus the messages read from every filter, softmax, and
  /// the new Q splatted straight into every filter for the next update, so Q itself is only
  /// stored when needed (the last update, or an observer). `finish` gets Q (filled unless
  /// `labelsOnly`) and the labels (only when `labelsOnly`).
  private func run(iterations: Int, labelsOnly: Bool, observe: ((Int, Marginals) -> Void)?,
                   finish: (UnsafePointer<SIMD8<Float>>, [Int32]) -> Void) {
    let n = pixelCount, nv = vectors, labels = self.labels
    let keepQ = !labelsOnly || observe != nil
    let q = VectorBuffer(count: keepQ ? n * nv : 1)
    var labelOutput = [Int32](repeating: 0, count: labelsOnly ? n : 0)
    let negU = negativeUnary.base, qb = q.base
    let mask = Self.laneMask(labels: labels)
    let threads = self.threads, grain = 1024, block = 64, code = vectorCode
    let parts = partCount(n, threads: threads, grain: grain)
    let terms = Array(zip(filters, potentials.map(\.compatibility)))
    let shiftArray = softmaxShifts()
    labelOutput.withUnsafeMutableBufferPointer { labelBuffer in
      (shiftArray ?? []).withUnsafeBufferPointer { shiftBuffer in
        let shifts = shiftArray == nil ? nil : shiftBuffer.baseAddress
        let labelPointer = labelBuffer.baseAddress
        if iterations == 0 && labelsOnly {
          parallelRanges(n, threads: threads, grain: grain) { _, range in
            Self.argmax(negU + range.lowerBound * nv, pixels: range.count, labels: labels,
                        into: labelPointer! + range.lowerBound)
          }
          return
        }
        if iterations > 0 { for (filter, _) in terms { filter.beginSplat(parts: parts, threads: threads) } }
        parallelRanges(n, threads: threads, grain: grain) { part, range in
          if iterations > 0 { for (filter, _) in terms { filter.clear(part: part) } }
          let fresh = VectorBuffer(count: block * nv)
          var start = range.lowerBound
          while start < range.upperBound {
            let sub = start..<min(start + block, range.upperBound)
            let target = keepQ ? qb + start * nv : fresh.base
            Self.softmax(negU + start * nv, into: target, pixels: sub.count, vectors: nv, labels: labels,
                         lastMask: mask, shifts: shifts.map { $0 + start }, code: code)
            if iterations > 0 { for (filter, _) in terms { filter.splat(range: sub, rows: target, part: part) } }
            start = sub.upperBound
          }
          withExtendedLifetime(fresh) {}
        }
        observe?(0, Marginals(copying: qb, width: width, height: height, labels: labels))
        guard iterations > 0 else { return }
        for (filter, _) in terms { filter.finishSplat(threads: threads) }
        for iteration in 1...iterations {
          let last = iteration == iterations
          let store = (last && !labelsOnly) || observe != nil
          if !last { for (filter, _) in terms { filter.beginSplat(parts: parts, threads: threads) } }
          parallelRanges(n, threads: threads, grain: grain) { part, range in
            if !last { for (filter, _) in terms { filter.clear(part: part) } }
            let acc = VectorBuffer(count: block * nv)
            let message = VectorBuffer(count: block * nv)
            let fresh = VectorBuffer(count: block * nv)
            var start = range.lowerBound
            while start < range.upperBound {
              let sub = start..<min(start + block, range.upperBound)
              Self.logits(terms, pixels: sub, unary: negU + start * nv, vectors: nv, labels: labels,
                          into: acc.base, scratch: message.base)
              if last && labelsOnly {
                // The argmax of the logits is the argmax of their softmax.
                Self.argmax(acc.base, pixels: sub.count, labels: labels, into: labelPointer! + start)
                if store {
                  Self.softmax(acc.base, into: qb + start * nv, pixels: sub.count, vectors: nv, labels: labels,
                               lastMask: mask, shifts: shifts.map { $0 + start }, code: code)
                }
              } else {
                let target = store ? qb + start * nv : fresh.base
                Self.softmax(acc.base, into: target, pixels: sub.count, vectors: nv, labels: labels,
                             lastMask: mask, shifts: shifts.map { $0 + start }, code: code)
                if !last { for (filter, _) in terms { filter.splat(range: sub, rows: target, part: part) } }
              }
              start = sub.upperBound
            }
            withExtendedLifetime((acc, message, fresh)) {}
          }
          if !last { for (filter, _) in terms { filter.finishSplat(threads: threads) } }
          observe?(iteration, Marginals(copying: qb, width: width, height: height, labels: labels))
        }
      }
    }
    withExtendedLifetime(q) { finish(q.base, labelOutput) }
  }
}
