/// The knobs of the fully connected CRF (docs/METHOD.md section 1.5), with DeepLab's defaults:
/// 10 mean-field iterations, a Gaussian (smoothness) kernel with sxy 3 and weight 3, a
/// bilateral (appearance) kernel with sxy 80, srgb 13 and weight 10, Potts compatibility,
/// symmetric kernel normalisation, unary = -ln(max(p, 1e-5)).
public struct CRFParameters: Sendable, Equatable, Codable {
  /// Mean-field iterations.
  public var iterations: Int = 10
  /// Standard deviation of the Gaussian kernel, in pixels.
  public var gaussianSXY: Float = 3
  /// Potts weight of the Gaussian kernel (0 turns it off).
  public var gaussianWeight: Float = 3
  /// Spatial standard deviation of the bilateral kernel, in pixels.
  public var bilateralSXY: Float = 80
  /// Colour standard deviation of the bilateral kernel, in 8-bit RGB levels.
  public var bilateralSRGB: Float = 13
  /// Potts weight of the bilateral kernel (0 turns it off).
  public var bilateralWeight: Float = 10
  /// Probabilities are clamped to at least this before -ln (pydensecrf's `unary_from_softmax`).
  public var probabilityFloor: Float = 1e-5
  /// How the Gaussian kernel is filtered: on the permutohedral lattice as densecrf does, or
  /// by an exact separable blur.
  public var gaussianFilter: SpatialFilter = .lattice
  /// Half-width of the separable blur in standard deviations (used by `.separable` only).
  public var truncation: Float = 4
  /// Kernel normalisation of both kernels (densecrf's NormalizationType).
  public var normalization: KernelNormalization = .symmetric
  /// Whether `gaussianSXY` and `bilateralSXY` are given for an image whose longer side is
  /// `referenceSide` pixels and scale with each image (sxy x longer side / referenceSide,
  /// see `forImage`), rather than being fixed numbers of pixels. DeepLab's spatial
  /// deviations were chosen on PASCAL VOC, whose images are at most 500 px: on a 128 px
  /// image a bilateral sxy of 80 px spans the whole image. AffinityNet's `crf_inference`
  /// divides both by a scale factor in the same way. On VOC-sized images either setting is
  /// DeepLab's CRF.
  ///
  /// Off by default, so the test-time CRF is DeepLab's: on small images, scaling helps
  /// networks whose raw predictions are already good and hurts those trained on sparse
  /// pseudo masks, whose blobs the whole-image bilateral kernel of the unscaled CRF pulls
  /// onto the objects (RESULTS.md, "Prohibitive segmentation learning", has the figures).
  /// The CRF that makes PSL+ masks scales (`CRFParameters.plusMasks` in AEPSLPipeline).
  public var scaleWithImage: Bool = false
  /// The longer image side, in pixels, for which the spatial deviations are given when
  /// `scaleWithImage` is on: 500, PASCAL VOC's, on which DeepLab chose them.
  public var referenceSide: Float = 500

  public init() {}

  /// The parameters for one `width` x `height` image with the spatial deviations in that
  /// image's pixels: unchanged when `scaleWithImage` is off, else `gaussianSXY` and
  /// `bilateralSXY` times max(width, height) / `referenceSide` (and `scaleWithImage` off,
  /// so that applying this twice changes nothing).
  public func forImage(width: Int, height: Int) -> CRFParameters {
    guard scaleWithImage else { return self }
    var p = self
    let factor = Float(max(width, height)) / referenceSide
    p.gaussianSXY = gaussianSXY * factor
    p.bilateralSXY = bilateralSXY * factor
    p.scaleWithImage = false
    return p
  }

  /// Checks ranges; the message names the option.
  public func validate() throws {
    func check(_ ok: Bool, _ message: String) throws { if !ok { throw CRFError.badParameter(message) } }
    try check(iterations >= 0, "iterations must be at least 0, got \(iterations)")
    try check(gaussianSXY > 0 && gaussianSXY.isFinite, "gaussian sxy must be positive, got \(gaussianSXY)")
    try check(bilateralSXY > 0 && bilateralSXY.isFinite, "bilateral sxy must be positive, got \(bilateralSXY)")
    try check(bilateralSRGB > 0 && bilateralSRGB.isFinite, "bilateral srgb must be positive, got \(bilateralSRGB)")
    try check(gaussianWeight >= 0 && gaussianWeight.isFinite, "gaussian weight must be at least 0, got \(gaussianWeight)")
    try check(bilateralWeight >= 0 && bilateralWeight.isFinite, "bilateral weight must be at least 0, got \(bilateralWeight)")
    try check(probabilityFloor > 0 && probabilityFloor < 1, "probability floor must be in (0, 1), got \(probabilityFloor)")
    try check(truncation >= 1 && truncation.isFinite, "truncation must be at least 1 standard deviation, got \(truncation)")
    try check(referenceSide > 0 && referenceSide.isFinite, "reference side must be positive, got \(referenceSide)")
  }
}

/// How a purely spatial Gaussian kernel is evaluated.
public enum SpatialFilter: String, Sendable, Equatable, Codable, CaseIterable {
  /// Permutohedral lattice in 2-D, as densecrf's `addPairwiseGaussian` (an approximation).
  case lattice
  /// Exact Gaussian, truncated at `truncation` standard deviations, as two 1-D passes.
  case separable
}

/// densecrf's kernel normalisations. With row sums n_i = sum_j k(f_i, f_j), the filtered
/// message is m_i = post_i * sum_j k(f_i, f_j) * pre_j * Q_j.
public enum KernelNormalization: String, Sendable, Equatable, Codable, CaseIterable {
  /// pre = post = 1 / sqrt(n) (densecrf's NORMALIZE_SYMMETRIC; DeepLab's default).
  case symmetric
  /// pre = 1 / n, post = 1 (NORMALIZE_BEFORE).
  case before
  /// pre = 1, post = 1 / n (NORMALIZE_AFTER).
  case after
  /// pre = post = 1 (NO_NORMALIZATION).
  case none
}

/// The label compatibility mu(l, l') of a pairwise term: its energy is
/// sum_{i,j} mu(x_i, x_j) k(f_i, f_j).
public enum LabelCompatibility: Sendable, Equatable {
  /// mu(l, l') = w [l != l']. In the mean-field update this is the same (up to a per-pixel
  /// constant that the softmax removes) as densecrf's PottsCompatibility(w), which adds
  /// w * (K Q)_l to the logit of l.
  case potts(weight: Float)
  /// A full labels x labels matrix, row-major: mu(l, l') = matrix[l * labels + l'].
  case matrix([Float])

  /// Whether every term of this compatibility is zero (the potential does nothing).
  var isZero: Bool {
    switch self {
    case .potts(let w): return w == 0
    case .matrix(let m): return m.allSatisfy { $0 == 0 }
    }
  }
}

public enum CRFError: Error, CustomStringConvertible, Equatable {
  case badParameter(String)
  case badInput(String)

  public var description: String {
    switch self {
    case .badParameter(let message): return "CRF parameter: \(message)"
    case .badInput(let message): return "CRF input: \(message)"
    }
  }
}
