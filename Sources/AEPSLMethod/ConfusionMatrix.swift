/// The one confusion matrix every score in aepsl comes from: rows are ground truth, columns
/// predictions, label 255 in either ignored (docs/METHOD.md 1.6: mIoU is defined once).
public struct ConfusionMatrix: Sendable, Equatable, Codable {
  /// Number of classes including background (C + 1).
  public let classes: Int
  /// counts[truth * classes + predicted]
  public private(set) var counts: [Int]

  /// Labelled pixels (truth != 255) a prediction left at 255, per ground-truth class.
  public private(set) var unlabelled: [Int]

  public init(classes: Int) {
    self.classes = classes
    counts = Array(repeating: 0, count: classes * classes)
    unlabelled = Array(repeating: 0, count: classes)
  }

  public static let ignore: UInt8 = 255

  /// Adds one image. A predicted 255 on a labelled pixel counts as "no class": the pixel
  /// stays in the ground-truth row's total (so it lowers recall) without entering a column.
  public mutating func add(truth: [UInt8], predicted: [UInt8]) {
    precondition(truth.count == predicted.count, "truth \(truth.count) and prediction \(predicted.count) pixels differ")
    for (t, p) in zip(truth, predicted) where t != Self.ignore {
      precondition(Int(t) < classes, "ground-truth label \(t) for \(classes) classes")
      if p == Self.ignore { unlabelled[Int(t)] += 1; continue }
      precondition(Int(p) < classes, "predicted label \(p) for \(classes) classes")
      counts[Int(t) * classes + Int(p)] += 1
    }
  }

  public mutating func merge(_ other: ConfusionMatrix) {
    precondition(other.classes == classes)
    for i in counts.indices { counts[i] += other.counts[i] }
    for i in 0..<classes { unlabelled[i] += other.unlabelled[i] }
  }

  public func count(truth: Int, predicted: Int) -> Int { counts[truth * classes + predicted] }

  /// Ground-truth pixels of a class (its row, plus pixels predicted 255).
  public func truthTotal(_ c: Int) -> Int { (0..<classes).reduce(unlabelled[c]) { $0 + count(truth: c, predicted: $1) } }
  public func predictedTotal(_ c: Int) -> Int { (0..<classes).reduce(0) { $0 + count(truth: $1, predicted: c) } }

  /// IoU of each class; nil for a class absent from both truth and prediction.
  public func intersectionOverUnion() -> [Double?] {
    (0..<classes).map { c in
      let tp = count(truth: c, predicted: c)
      let union = truthTotal(c) + predictedTotal(c) - tp
      return union == 0 ? nil : Double(tp) / Double(union)
    }
  }

  /// Mean IoU over the classes present (in truth or prediction).
  public func meanIoU() -> Double {
    let present = intersectionOverUnion().compactMap { $0 }
    return present.isEmpty ? 0 : present.reduce(0, +) / Double(present.count)
  }

  /// Correct pixels over labelled pixels.
  public func pixelAccuracy() -> Double {
    let correct = (0..<classes).reduce(0) { $0 + count(truth: $1, predicted: $1) }
    let total = (0..<classes).reduce(0) { $0 + truthTotal($1) }
    return total == 0 ? 0 : Double(correct) / Double(total)
  }

  /// For pseudo masks: of the pixels a mask labels (not 255), the fraction labelled right.
  public func precision() -> Double {
    let labelled = counts.reduce(0, +)
    let correct = (0..<classes).reduce(0) { $0 + count(truth: $1, predicted: $1) }
    return labelled == 0 ? 0 : Double(correct) / Double(labelled)
  }

  /// For pseudo masks: the fraction of ground-truth-labelled pixels the mask labels at all.
  public func coverage() -> Double {
    let labelled = counts.reduce(0, +)
    let total = labelled + unlabelled.reduce(0, +)
    return total == 0 ? 0 : Double(labelled) / Double(total)
  }
}
