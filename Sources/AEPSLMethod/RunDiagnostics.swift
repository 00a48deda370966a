import Foundation

/// Something in a run that went wrong in a way a user would not see from the final score:
/// what happened (with the numbers), the likely cause, and the option to change.
public struct RunWarning: Sendable, Equatable, Codable, CustomStringConvertible {
  public enum Kind: String, Sendable, Codable {
    case classifierDidNotLearn = "classifier-did-not-learn"
    case stoppingRuleCouldNotJudge = "stopping-rule-could-not-judge"
    case finalModelBelowEarlier = "final-model-below-earlier"
    case stepErasedNothing = "step-erased-nothing"
    case boundBelowWeak = "bound-below-weak"
    case classificationBranchDidNotLearn = "classification-branch-did-not-learn"
  }

  public var kind: Kind
  public var what: String
  public var likelyCause: String
  public var option: String

  /// One line for the console and the run summary.
  public var description: String { "WARNING: \(what) Likely cause: \(likelyCause) Try: \(option)" }
}

/// Pure checks over a run's numbers that say when a stage went wrong (issue 13). They read
/// only loss curves, image-level label frequencies and validation scores, never a mask.
public enum RunDiagnostics {
  /// The loss of a classifier that ignores the image and answers each class's frequency
  /// `f_c` in the training labels: the level a loss curve falls to without any learning.
  /// MSE (summed over classes, halved): sum f(1 - f) / 2; BCE (averaged over classes):
  /// mean of -f log f - (1 - f) log(1 - f).
  public static func constantPredictorLoss(labelFrequencies f: [Double], loss: ClassificationLoss) -> Double {
    switch loss {
    case .mse: return f.map { $0 * (1 - $0) }.reduce(0, +) / 2
    case .bce:
      func h(_ p: Double) -> Double { p <= 0 || p >= 1 ? 0 : -p * log(p) - (1 - p) * log(1 - p) }
      return f.isEmpty ? 0 : f.map(h).reduce(0, +) / Double(f.count)
    }
  }

  /// Each class's share of images, from the images' label lists.
  public static func labelFrequencies(labels: [[Int]], classes: Int) -> [Double] {
    var counts = [Double](repeating: 0, count: classes)
    for l in labels { for c in Set(l) where c < classes { counts[c] += 1 } }
    return counts.map { $0 / Double(max(1, labels.count)) }
  }

  /// A step's classifier did not learn when its final loss is not clearly below the
  /// constant predictor's (`learnedFraction`: the final loss must be under this share of
  /// it), or, without that reference, when the loss fell by less than `minimumDrop` of its
  /// first epoch's. With a validation accuracy and the accuracy of answering "absent"
  /// everywhere, a classifier no better than that did not learn either.
  public static func classifierLearning(step: Int, curve: [Float], constantLoss: Double?,
                                        validationAccuracy: Double? = nil, absentAccuracy: Double? = nil,
                                        learnedFraction: Double = 0.85, minimumDrop: Double = 0.2) -> RunWarning? {
    guard let first = curve.first, let last = curve.last, first.isFinite, last.isFinite else { return nil }
    var reasons: [String] = []
    if let constantLoss, constantLoss > 0, Double(last) > learnedFraction * constantLoss {
      reasons.append(String(format: "its final loss %.4f is %.0f%% of the %.4f of answering each class's frequency regardless of the image",
                            last, 100 * Double(last) / constantLoss, constantLoss))
    } else if constantLoss == nil, first > 0, Double(first - last) < minimumDrop * Double(first) {
      reasons.append(String(format: "its loss went from %.4f to only %.4f", first, last))
    }
    if let validationAccuracy, let absentAccuracy, validationAccuracy <= absentAccuracy + 0.01 {
      reasons.append(String(format: "its validation label accuracy %.1f%% is no better than the %.1f%% of answering \"absent\" everywhere",
                            100 * validationAccuracy, 100 * absentAccuracy))
    }
    guard !reasons.isEmpty else { return nil }
    return RunWarning(
      kind: .classifierDidNotLearn,
      what: "erasing step \(step)'s classifier did not learn: " + reasons.joined(separator: "; ") + ".",
      likelyCause: "too few or too weak updates for a network trained from scratch (many classes need more; SGD and the "
        + "paper's squared-error loss on sigmoids give small steps), or training crops that often leave out the labelled "
        + "objects (crop size well under the image size), so its CAMs mark arbitrary regions.",
      option: "more updates (erase.minIterationsPerClass, erase.schedule.minIterations), erase.loss \"bce\" with "
        + "erase.schedule.optimizer \"adam\" (the tiny default), or a working resolution that brings the images to the "
        + "crop size (--image-side, erase.cropSize).")
  }

  /// The stopping rule compares each step's final loss with step 1's. It cannot judge when
  /// step 1 itself did not converge (its loss fell by less than `minimumDrop` of its first
  /// epoch's), or when step 1's curve is noisy at its end (the last `tail` epochs move by
  /// more than `noise` of their mean, up and down), or when no step ever stopped and every
  /// later step ended within `flat` of step 1 (the ratio never discriminated).
  public static func stoppingRule(curves: [[Float]], stopRatio: Float, stopped: Bool,
                                  minimumDrop: Double = 0.2, tail: Int = 3, noise: Double = 0.1,
                                  flat: Double = 0.05) -> RunWarning? {
    guard let step1 = curves.first, let first = step1.first, let last = step1.last, first > 0 else { return nil }
    var reasons: [String] = []
    if Double(first - last) < minimumDrop * Double(first) {
      reasons.append(String(format: "step 1's loss barely fell (%.4f to %.4f), so its final loss is no converged reference", first, last))
    }
    let end = Array(step1.suffix(tail))
    if end.count == tail, tail >= 2 {
      let mean = Double(end.reduce(0, +)) / Double(tail)
      let rises = zip(end, end.dropFirst()).contains { $1 > $0 }
      let spread = Double(end.max()! - end.min()!)
      if rises, mean > 0, spread > noise * mean {
        reasons.append(String(format: "step 1's last %d epochs are noisy (%@), moving by %.0f%% of their mean", tail,
                              end.map { String(format: "%.4f", $0) }.joined(separator: ", "), 100 * spread / mean))
      }
    }
    if !stopped, curves.count > 1, let reference = step1.last,
       curves.dropFirst().allSatisfy({ ($0.last.map { abs(Double($0 / reference) - 1) } ?? 1) < flat }) {
      reasons.append(String(format: "no step stopped and every later step ended within %.0f%% of step 1's loss, "
                              + "so a ratio of %.2f never separated them", 100 * flat, stopRatio))
    }
    guard !reasons.isEmpty else { return nil }
    return RunWarning(
      kind: .stoppingRuleCouldNotJudge,
      what: "the stopping rule could not judge which erasing steps to merge: " + reasons.joined(separator: "; ") + ".",
      likelyCause: "the classifiers did not train to convergence, so the loss ratio says nothing about what erasing removed.",
      option: "train step 1 to convergence first (more erase.minIterationsPerClass or erase.schedule.minIterations), or set "
        + "erase.maxSteps (--max-steps) to the steps to merge.")
  }

  /// A merged erasing step whose CAMs marked no pixel of any training image that earlier
  /// steps had not erased (`newlyErasedFraction` 0): it adds nothing to the object regions,
  /// and erasing ended there.
  public static func erasedNothing(step: Int, newlyErasedFraction: Double, erasedFraction: Double) -> RunWarning? {
    guard newlyErasedFraction == 0 else { return nil }
    return RunWarning(
      kind: .stepErasedNothing,
      what: String(format: "erasing step %d erased nothing new: its CAMs' regions were empty or already erased on every "
                     + "training image, and the object regions cover %.1f%% of the pixels after it.", step, 100 * erasedFraction),
      likelyCause: "a classifier whose scores for the labelled classes come from no positive evidence in the image (all-zero "
        + "CAMs: it did not learn, from too few updates or an initialisation that does not suit the images), or one that "
        + "still looks where earlier steps erased.",
      option: "more updates (erase.schedule.epochs, erase.minIterationsPerClass), or other initial weights (erase.initWeights).")
  }

  /// The final model is worse on val than an earlier one (`scores`: model name to val
  /// mIoU, in training order) by more than `margin` mIoU points.
  public static func finalModel(_ final: String, scores: [(model: String, valMIoU: Double)],
                                margin: Double = 0.5) -> RunWarning? {
    guard let finalScore = scores.first(where: { $0.model == final })?.valMIoU,
          let best = scores.filter({ $0.model != final && !(ModelVariant(rawValue: $0.model)?.isUpperBound ?? false) }).max(by: { $0.valMIoU < $1.valMIoU }),
          best.valMIoU > finalScore + margin else { return nil }
    return RunWarning(
      kind: .finalModelBelowEarlier,
      what: String(format: "the final model (%@) scores %.2f val mIoU, below %@'s %.2f.", final, finalScore, best.model, best.valMIoU),
      likelyCause: "the later round trained on masks worse than the ones it replaced (PSL+ retrains on the first round's "
        + "CRF-refined predictions; when those are poor, it learns their errors), or segmenters stopped before they "
        + "learned the objects (small objects and many classes need more updates).",
      option: "predict.finalModel \"\(best.model)\" (the model that goes to RUN/predict), segmentation.pslPlus false, "
        + "or more updates (segmentation.minIterationsPerClass, segmentation.schedule.minIterations).")
  }

  /// A PSL round's classification branch did not learn the image labels when its final
  /// classification loss is above `learnedFraction` of the constant predictor's. Its
  /// confidences weight the image's own classes against the unweighted background, in the
  /// online mask and at test time, so low ones turn objects into background. The share is
  /// loose: branches that learned end far below it, those that did not far above
  /// (RESULTS.md, "A classification branch that learns").
  public static func classificationBranch(model: String, finalLoss: Double, constantLoss: Double,
                                          learnedFraction: Double = 0.25) -> RunWarning? {
    guard constantLoss > 0, finalLoss.isFinite, finalLoss > learnedFraction * constantLoss else { return nil }
    return RunWarning(
      kind: .classificationBranchDidNotLearn,
      what: String(format: "%@'s classification branch did not learn the image labels: its final classification loss %.4f "
                     + "is %.0f%% of the %.4f of answering each class's frequency regardless of the image.",
                   model, finalLoss, 100 * finalLoss / constantLoss, constantLoss),
      likelyCause: "too few updates for the number of classes (a segmenter trained from scratch learns 20 classes more "
        + "slowly than 6): its low confidences for the image's own classes make the online mask, and the weighting at "
        + "test time, call their objects background.",
      option: "more updates (segmentation.minIterationsPerClass, segmentation.schedule.minIterations).")
  }

  /// The fully supervised bound, trained on the ground-truth masks with the same schedule,
  /// should score above every weakly supervised model on val. When one beats it by more than
  /// `margin` mIoU points, the bound is no bound, and the weak / full ratio says nothing.
  public static func upperBound(_ bound: Double, weak scores: [(model: String, valMIoU: Double)],
                                margin: Double = 0.5) -> RunWarning? {
    guard let best = scores.filter({ !(ModelVariant(rawValue: $0.model)?.isUpperBound ?? false) })
      .max(by: { $0.valMIoU < $1.valMIoU }), best.valMIoU > bound + margin else { return nil }
    return RunWarning(
      kind: .boundBelowWeak,
      what: String(format: "the fully supervised upper bound scores %.2f val mIoU, below %@'s %.2f: it is no upper bound, "
                     + "and weak / full says nothing.", bound, best.model, best.valMIoU),
      likelyCause: "the segmenters stopped before they learned the objects: trained from scratch on exact masks of small "
        + "objects, the bound learns the background first and needs more updates than the schedule gave (the weak "
        + "models' larger pseudo masks hide this).",
      option: "more updates for every segmenter (segmentation.minIterationsPerClass, segmentation.schedule.minIterations, "
        + "or segmentation.schedule.epochs).")
  }
}
