import AEPSLFiles
import AEPSLData
import AEPSLEngine
import AEPSLImaging
import Foundation

/// How well an erasing classifier names the classes of images it did or did not train on:
/// the measure a loss curve alone cannot give (a loss can fall to the loss of always
/// answering each class's frequency, and the classifier still knows nothing).
public struct ClassifierScore: Sendable, Codable, Equatable {
  public var images: Int
  /// Mean over classes (those with at least one positive image) of the average precision
  /// of ranking the images by the class's score.
  public var meanAveragePrecision: Double
  /// The share of (image, class) decisions that are right at a score of 0.5.
  public var labelAccuracy: Double
  /// The share of images whose every class decision is right at 0.5.
  public var exactMatch: Double
  /// The same decisions' share when every class is answered "absent": what a classifier
  /// that learned nothing about the images reaches.
  public var absentAccuracy: Double

  /// Scores from per-image probabilities [images][classes] and label lists.
  public static func score(probabilities: [[Float]], labels: [[Int]], classes: Int) -> ClassifierScore {
    precondition(probabilities.count == labels.count, "one probability row per label list")
    let n = probabilities.count
    var right = 0, exact = 0, positives = 0
    for (p, l) in zip(probabilities, labels) {
      let truth = Set(l)
      positives += truth.count
      var all = true
      for c in 0..<classes {
        let ok = (p[c] >= 0.5) == truth.contains(c)
        if ok { right += 1 } else { all = false }
      }
      if all { exact += 1 }
    }
    var aps: [Double] = []
    for c in 0..<classes {
      let ranked = (0..<n).sorted { probabilities[$0][c] > probabilities[$1][c] }
      let relevant = ranked.map { labels[$0].contains(c) }
      let total = relevant.filter { $0 }.count
      guard total > 0 else { continue }
      var hits = 0, sum = 0.0
      for (rank, isPositive) in relevant.enumerated() where isPositive {
        hits += 1
        sum += Double(hits) / Double(rank + 1)
      }
      aps.append(sum / Double(total))
    }
    let decisions = Double(max(1, n * classes))
    return ClassifierScore(images: n, meanAveragePrecision: aps.isEmpty ? 0 : aps.reduce(0, +) / Double(aps.count),
                           labelAccuracy: Double(right) / decisions, exactMatch: Double(exact) / Double(max(1, n)),
                           absentAccuracy: Double(n * classes - positives) / decisions)
  }

  /// Scores the classifier in `checkpoint` (an erase step's classifier.safetensors) on the
  /// images of `split`, each whole, resized to the working resolution `longerSide` (nil: its
  /// own size), as the CAMs see them.
  public static func evaluate(checkpoint: URL, net: String, dataset: VOCDataset, split: String,
                              longerSide: Int?) throws -> ClassifierScore {
    guard let spec = BackboneSpec.named(net) else {
      throw AEPSLError(file: net, problem: "is not a network", fix: "Use one of: \(BackboneSpec.names.joined(separator: ", ")).")
    }
    let set = try dataset.classificationSet(split: split)
    let classes = dataset.classes.count
    let model = Classifier(spec: spec, classes: classes, seed: 0)
    try Checkpoint.load(from: checkpoint, into: model.parameters, buffers: model.buffers)
    var probabilities: [[Float]] = []
    for sample in set.samples {
      var image = try readRGBImage(sample.imageURL)
      let scale = Augmentation.workingScale(longerSide: longerSide, width: image.width, height: image.height)
      if scale != 1 {
        image = image.resized(width: max(8, Int((Double(image.width) * scale).rounded())),
                              height: max(8, Int((Double(image.height) * scale).rounded())))
      }
      let logits = model.forward(PixelNormalization.imageNet.tensor(image), training: false)
      probabilities.append((0..<classes).map { 1 / (1 + exp(-logits.data[$0])) })
    }
    return score(probabilities: probabilities, labels: set.samples.map(\.labels), classes: classes)
  }
}
