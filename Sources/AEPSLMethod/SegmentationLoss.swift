import AEPSLData
import AEPSLEngine
import Foundation

/// Where the cells of a segmenter's score map sit on its input, so that labels can be
/// sampled at the right pixels for training and scores put back at the right pixels at
/// inference.
///
/// Two geometries occur. DeepLab's VGG-16 pools with odd windows and symmetric padding
/// (3x3, pad 1, ceil mode): an input of 8k + 1 pixels gives k + 1 cells and cell i is
/// centred on pixel 8i, the "align corners" grid (DeepLab's 321 -> 41). The tiny network
/// halves with 2x2 windows: an input of 8k gives k cells and cell i covers pixels
/// 8i ..< 8i + 8, centred on 8i + 3.5, the "half-pixel" grid.
public struct ScoreGrid: Sendable, Equatable {
  /// Input pixels per cell (the output stride).
  public let stride: Int
  public let alignCorners: Bool

  public init(stride: Int, alignCorners: Bool) {
    self.stride = stride
    self.alignCorners = alignCorners
  }

  public init(spec: BackboneSpec) {
    var stride = 1, corners = false
    for case let .maxPool(_, kernel, s, padding, _) in spec.layers where s > 1 {
      stride *= s
      if kernel == 2 * padding + 1 { corners = true }
    }
    self.init(stride: stride, alignCorners: corners)
  }

  /// The input side a full image is padded to so that the grid fits it exactly: a multiple
  /// of the stride (half-pixel) or a multiple plus one (align corners).
  public func paddedSide(_ side: Int) -> Int {
    if alignCorners { return (max(side, 2) - 1 + stride - 1) / stride * stride + 1 }
    return (side + stride - 1) / stride * stride
  }

  /// The input pixel whose label cell `cell` of `cells` takes (nearest neighbour):
  /// round(i (in - 1) / (cells - 1)) on the align-corners grid, which is exactly pixel 8i
  /// for DeepLab's 8k + 1 crops (what its label "Interp" layer picks); the pixel under the
  /// cell centre, floor((i + 0.5) in / cells), on the half-pixel grid.
  public func sourcePixel(cell: Int, cells: Int, pixels: Int) -> Int {
    if alignCorners {
      guard cells > 1 else { return 0 }
      return min(pixels - 1, Int((Double(cell) * Double(pixels - 1) / Double(cells - 1)).rounded()))
    }
    return min(pixels - 1, Int((Double(cell) + 0.5) * Double(pixels) / Double(cells)))
  }

  /// Samples `count` planes of `height` x `width` values down to `cells` rows and columns.
  /// Labels are picked, never blended, so no label appears that was not there.
  public func downsample<T>(_ values: [T], count: Int, height: Int, width: Int,
                            toHeight h: Int, toWidth w: Int) -> [T] {
    precondition(values.count == count * height * width, "ScoreGrid: \(values.count) values for \(count) planes of \(width)x\(height)")
    let rows = (0..<h).map { sourcePixel(cell: $0, cells: h, pixels: height) }
    let columns = (0..<w).map { sourcePixel(cell: $0, cells: w, pixels: width) }
    var out: [T] = []
    out.reserveCapacity(count * h * w)
    for n in 0..<count {
      for y in rows {
        let base = (n * height + y) * width
        for x in columns { out.append(values[base + x]) }
      }
    }
    return out
  }
}

extension Augmentation.Placement {
  /// Which output pixels show the image (false where the crop is padding), row-major.
  public var imageMask: [Bool] {
    var mask = [Bool](repeating: false, count: width * height)
    for y in 0..<height where top + y < scaledHeight {
      for x in 0..<width {
        let s = left + (flipped ? width - 1 - x : x)
        if s < scaledWidth { mask[y * width + x] = true }
      }
    }
    return mask
  }
}

/// The terms of one evaluation of the segmentation loss.
public struct SegmentationLossTerms: Sendable, Equatable {
  /// Classification loss of the confidences v against the image labels (0 when unused).
  public var classification: Float = 0
  /// CE(f, S): pixel cross-entropy against the pseudo (or ground-truth) mask.
  public var segmentation: Float = 0
  /// CE(f, S'): pixel cross-entropy against the online mask (0 when unused).
  public var online: Float = 0
  public var total: Float { classification + segmentation + online }

  public init(classification: Float = 0, segmentation: Float = 0, online: Float = 0) {
    self.classification = classification
    self.segmentation = segmentation
    self.online = online
  }
}

/// The training loss of the segmenter (docs/METHOD.md 1.3), on score maps at the network's
/// output resolution (targets are downsampled to it, as DeepLab does; see `ScoreGrid`):
///
///     PSL:      L = cls(v, y) + CE(f, S) + CE(f, S')
///     DeepLab:  L = CE(f, S)                (--psl off; the classification branch is not trained)
///
/// CE is the mean pixel softmax cross-entropy over the pixels whose target is not 255;
/// the terms are summed with weight 1 each, as the paper does. S' carries no gradient.
public struct SegmentationLoss: Sendable, Equatable {
  /// The online mask and the classification term: PSL. Off: plain DeepLab.
  public var prohibitive: Bool
  public var classification: ClassificationLoss

  public init(prohibitive: Bool, classification: ClassificationLoss = .mse) {
    self.prohibitive = prohibitive
    self.classification = classification
  }

  public struct Result {
    public let terms: SegmentationLossTerms
    public let dScores: Tensor
    public let dLogits: Tensor
    /// The online mask S' (N * h * w), when PSL computed one.
    public let onlineMask: [UInt8]?
  }

  /// `scores` [N, C + 1, h, w] and `logits` [N, C] from the segmenter; `targets` [N, C]
  /// multi-hot; `mask` N * h * w labels (0...C or 255) already at score resolution;
  /// `valid` marks the cells that show the image (padding: false), for the online mask.
  ///
  /// Data-parallel training: `globalCounts` sums this rank's [images, labelled cells of S,
  /// labelled cells of S'] over the ranks; each term and its gradient are then this rank's
  /// part of the whole batch's mean (its count over the global count), so the terms and
  /// gradients summed over the ranks are those of one process on the whole batch.
  public func callAsFunction(scores: Tensor, logits: Tensor, targets: Tensor, mask: [UInt8], imageLabels: [[Int]],
                             valid: [Bool]? = nil, globalCounts: (([Double]) -> [Double])? = nil) -> Result {
    let seg = Loss.softmaxCrossEntropy(logits: scores, labels: mask)
    let online = prohibitive ? OnlineMask.labels(scores: scores, confidences: OnlineMask.confidences(logits: logits),
                                                 imageLabels: imageLabels, valid: valid) : nil
    var shares: [Float] = [1, 1, 1]
    if let globalCounts {
      let local = [Double(logits.shape[0]), Double(mask.count { $0 != Loss.ignoreLabel }),
                   Double(online?.count { $0 != Loss.ignoreLabel } ?? 0)]
      let global = globalCounts(local)
      shares = zip(local, global).map { $1 > 0 ? Float($0 / $1) : 0 }
      if shares[1] != 1 { scale(seg.gradient, by: shares[1]) }
    }
    guard let online else {
      return Result(terms: SegmentationLossTerms(segmentation: seg.value * shares[1]), dScores: seg.gradient,
                    dLogits: Tensor(shape: logits.shape), onlineMask: nil)
    }
    let ce = Loss.softmaxCrossEntropy(logits: scores, labels: online)
    let cls = classification(logits: logits, targets: targets)
    if shares[2] != 1 { scale(ce.gradient, by: shares[2]) }
    if shares[0] != 1 { scale(cls.gradient, by: shares[0]) }
    let dScores = seg.gradient
    dScores.add(ce.gradient)
    return Result(terms: SegmentationLossTerms(classification: cls.value * shares[0], segmentation: seg.value * shares[1],
                                               online: ce.value * shares[2]),
                  dScores: dScores, dLogits: cls.gradient, onlineMask: online)
  }
}
