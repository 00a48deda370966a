import AEPSLData
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation

/// Refines per-pixel class probabilities into labels, given the image: the dense CRF in
/// the command-line tool (AEPSLCRF, which this module does not depend on). Arguments: the
/// RGB image, `labels` planes of probabilities channel-major ([labels][height][width]),
/// and `labels`. Returns one label per pixel.
public typealias ProbabilityRefiner = @Sendable (_ image: Image, _ probabilities: [Float], _ labels: Int) throws -> [UInt8]

/// How class confidences weight the score maps at inference (docs/METHOD.md 1.4):
///
///     w_0 = 1;  w_c = v_c if v_c >= threshold, else 0   (c = 1...C)
///     p'_k(u) = w_k p_k(u) / sum_j w_j p_j(u)           (p = softmax of the scores)
///
/// Background is never weighted; a class whose confidence is below the threshold can no
/// longer win any pixel. p' is renormalised so the CRF's unary -ln p' sees probabilities;
/// that changes no argmax.
public enum ConfidenceWeighting {
  /// The weight of each of the `confidences.count + 1` planes, background first.
  public static func weights(confidences: [Float], threshold: Float) -> [Float] {
    [1] + confidences.map { $0 >= threshold ? $0 : 0 }
  }

  /// Weights `probabilities` ([labels][pixels], channel-major) in place and renormalises
  /// every pixel. A pixel whose weighted sum is 0 (every class zeroed and p_0 underflowed)
  /// becomes background.
  public static func apply(_ probabilities: inout [Float], labels: Int, weights: [Float]) {
    precondition(weights.count == labels && probabilities.count % labels == 0,
                 "ConfidenceWeighting: \(weights.count) weights, \(probabilities.count) values for \(labels) labels")
    let pixels = probabilities.count / labels
    probabilities.withUnsafeMutableBufferPointer { p in
      for q in 0..<pixels {
        var sum: Float = 0
        for k in 0..<labels {
          p[k * pixels + q] *= weights[k]
          sum += p[k * pixels + q]
        }
        if sum > 0 {
          let inv = 1 / sum
          for k in 0..<labels { p[k * pixels + q] *= inv }
        } else {
          for k in 0..<labels { p[k * pixels + q] = k == 0 ? 1 : 0 }
        }
      }
    }
  }

  /// The most probable label of every pixel; ties go to the lower label.
  public static func argmax(_ probabilities: [Float], labels: Int) -> [UInt8] {
    let pixels = probabilities.count / labels
    var out = [UInt8](repeating: 0, count: pixels)
    for q in 0..<pixels {
      var best = probabilities[q], label = 0
      for k in 1..<max(labels, 1) where probabilities[k * pixels + q] > best {
        best = probabilities[k * pixels + q]
        label = k
      }
      out[q] = UInt8(label)
    }
    return out
  }
}

/// Full-image inference with a trained segmenter (docs/METHOD.md 1.4): the image is padded at
/// the bottom and right (with the mean pixel, 0 after normalisation) so the network's grid
/// fits it exactly, the scores are upsampled bilinearly on that grid and cropped back to
/// the image, turned into probabilities, weighted by the thresholded class confidences,
/// and refined (the dense CRF) or taken by argmax. Any image size works.
public struct SegmentationInference {
  public let model: Segmenter
  public let grid: ScoreGrid
  /// Confidences below this are set to 0 (the paper's p = 0.1).
  public var threshold: Float
  /// Whether the classification branch was trained; without it (plain DeepLab), no
  /// weighting is done.
  public var weighting: Bool
  public var normalization: PixelNormalization = .imageNet
  /// The working resolution the segmenter was trained at (`Augmentation.longerSide`): the
  /// image is resized to it, and the probabilities back to the image's size; nil: as is.
  public var longerSide: Int?

  public init(model: Segmenter, threshold: Float, weighting: Bool, longerSide: Int? = nil) {
    self.model = model
    grid = ScoreGrid(spec: model.spec)
    self.threshold = threshold
    self.weighting = weighting
    self.longerSide = longerSide
  }

  public struct Output {
    /// (classes + 1) planes of the image's size, channel-major, weighted and renormalised.
    public var probabilities: [Float]
    /// v_c = sigmoid of the classification branch, before thresholding.
    public var confidences: [Float]
    public var labels: Int
  }

  public func probabilities(_ image: Image) -> Output {
    let original = image.converted(toChannels: 3)
    let base = Augmentation.workingScale(longerSide: longerSide, width: original.width, height: original.height)
    guard base != 1 else { return probabilitiesAtOwnSize(original) }
    let rgb = original.resized(width: max(1, Int((Double(original.width) * base).rounded())),
                               height: max(1, Int((Double(original.height) * base).rounded())))
    var out = probabilitiesAtOwnSize(rgb)
    // Probabilities resized bilinearly stay probabilities (convex combinations).
    out.probabilities = resizeBilinear(out.probabilities, channels: out.labels, height: rgb.height, width: rgb.width,
                                       toHeight: original.height, toWidth: original.width, alignCorners: false)
    return out
  }

  func probabilitiesAtOwnSize(_ rgb: Image) -> Output {
    let (w, h) = (rgb.width, rgb.height)
    let (pw, ph) = (grid.paddedSide(w), grid.paddedSide(h))
    let x = Tensor(shape: [1, 3, ph, pw])
    let plain = normalization.tensor(rgb)
    for c in 0..<3 {
      for y in 0..<h { (x.data + (c * ph + y) * pw).update(from: plain.data + (c * h + y) * w, count: w) }
    }
    let (scoresOut, logits) = model.forward(x, training: false)
    let scores = scoresOut.nchw()
    let (labels, sh, sw) = (scores.shape[1], scores.shape[2], scores.shape[3])
    let up = resizeBilinear(scores.values, channels: labels, height: sh, width: sw, toHeight: ph, toWidth: pw,
                            alignCorners: grid.alignCorners)
    // Crop to the image, then softmax over the labels.
    var p = [Float](repeating: 0, count: labels * h * w)
    for k in 0..<labels {
      for y in 0..<h {
        for xx in 0..<w { p[(k * h + y) * w + xx] = up[(k * ph + y) * pw + xx] }
      }
    }
    let plane = h * w
    p.withUnsafeMutableBufferPointer { b in
      for q in 0..<plane {
        var m = -Float.infinity
        for k in 0..<labels { m = max(m, b[k * plane + q]) }
        var s: Float = 0
        for k in 0..<labels { let e = expf(b[k * plane + q] - m); b[k * plane + q] = e; s += e }
        for k in 0..<labels { b[k * plane + q] /= s }
      }
    }
    let v = OnlineMask.confidences(logits: logits).values
    if weighting {
      ConfidenceWeighting.apply(&p, labels: labels, weights: ConfidenceWeighting.weights(confidences: v, threshold: threshold))
    }
    return Output(probabilities: p, confidences: v, labels: labels)
  }

  /// The label map of `image`: the refiner's (the CRF) when given, else the argmax.
  public func labelMap(_ image: Image, refiner: ProbabilityRefiner?) throws -> LabelMap {
    let rgb = image.converted(toChannels: 3)
    let out = probabilities(rgb)
    let labels = try refiner?(rgb, out.probabilities, out.labels)
      ?? ConfidenceWeighting.argmax(out.probabilities, labels: out.labels)
    return LabelMap(width: rgb.width, height: rgb.height, labels: labels)
  }
}

/// What a checkpoint written by `aepsl train-seg` says about itself (its metadata).
public struct SegmenterInfo: Sendable, Equatable {
  public var net: String
  public var classNames: [String]
  public var variant: String
  /// Whether the classification branch was trained (its confidences mean something).
  public var classificationTrained: Bool
  /// The working resolution it was trained at (`SegmentationConfiguration.imageSide`).
  public var imageSide: Int?

  var metadata: [String: String] {
    ["net": net, "classes": "\(classNames.count)", "class_names": classNames.joined(separator: ","),
     "variant": variant, "classification_branch": classificationTrained ? "trained" : "untrained"]
      .merging(imageSide.map { ["image_side": "\($0)"] } ?? [:]) { $1 }
  }

  init(net: String, classNames: [String], variant: String, classificationTrained: Bool) {
    self.net = net
    self.classNames = classNames
    self.variant = variant
    self.classificationTrained = classificationTrained
  }

  /// Reads the metadata of `url` (a segmenter checkpoint).
  public init(checkpoint url: URL) throws {
    let file = try SafetensorsFile(contentsOf: url)
    let m = file.metadata
    guard let net = m["net"], let count = m["classes"].flatMap(Int.init), let names = m["class_names"] else {
      throw AEPSLError(file: url.path, problem: "lacks the metadata (net, classes) that `aepsl train-seg` writes",
                        fix: "Give a segmenter.safetensors written by `aepsl train-seg`.")
    }
    let list = names.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    guard list.count == count else {
      throw AEPSLError(file: url.path, problem: "names \(list.count) classes but says it has \(count)",
                        fix: "Retrain it with `aepsl train-seg`.")
    }
    self.init(net: net, classNames: list, variant: m["variant"] ?? "", classificationTrained: m["classification_branch"] == "trained")
    imageSide = m["image_side"].flatMap(Int.init)
  }

  /// Inference with this segmenter at the resolution it was trained at.
  public func inference(from url: URL, threshold: Float) throws -> SegmentationInference {
    SegmentationInference(model: try load(from: url), threshold: threshold, weighting: classificationTrained, longerSide: imageSide)
  }

  /// The network of the checkpoint with its weights loaded.
  public func load(from url: URL) throws -> Segmenter {
    guard let spec = BackboneSpec.named(net) else {
      throw AEPSLError(file: url.path, problem: "names the network '\(net)', which this version does not know",
                        fix: "Use a checkpoint of one of: \(BackboneSpec.names.joined(separator: ", ")).")
    }
    let model = Segmenter(spec: spec, classes: classNames.count, seed: 0)
    try Checkpoint.load(from: url, into: model.parameters, buffers: model.buffers)
    return model
  }
}
