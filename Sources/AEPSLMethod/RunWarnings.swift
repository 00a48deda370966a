import AEPSLData
import AEPSLFiles
import Foundation

/// The warnings of a run (RUN/warnings.json): `RunDiagnostics` applied to the run's own files.
/// They read loss curves, the training split's image-level labels and validation scores,
/// never a mask.
public enum RunWarnings {
  /// A step 1 classifier whose final loss is above this share of the constant predictor's
  /// did not learn: every later step and the stopping rule are measured against it.
  public static let firstStepLearnedFraction = 0.85
  /// A later merged step must only end clearly below chance: erasing removes the evidence it
  /// could use, so its loss ends higher than step 1's by design (the demo's third step ends
  /// at 0.85 of the constant predictor's loss, and its regions still improve the masks).
  public static let laterStepLearnedFraction = 0.95

  /// Everything the run's files show so far: erasing's warnings once erasing has finished,
  /// each PSL round's classification branch once it has trained, and the final model's once
  /// the evaluation split is scored.
  public static func collect(run: URL, finalModel: ModelVariant) -> [RunWarning] {
    erasing(run: run) + segmentation(run: run) + scores(run: run, finalModel: finalModel)
  }

  /// Erasing: each merged step's classifier against the loss of answering each class's
  /// frequency in the training labels (a step that was not merged failed to converge, which
  /// is what stopped erasing, and is not checked), and the ratio stopping rule.
  public static func erasing(run: URL) -> [RunWarning] {
    let layout = EraseLayout(run: run)
    guard let manifest = try? StageManifest.read(from: layout.root), let summary = try? EraseStage.decodeSummary(manifest),
          let config = try? EraseStage.configuration(run: run), !summary.finalLosses.isEmpty else { return [] }
    let curves = (1...summary.finalLosses.count).map { readCurve(layout.lossCurve($0)) }
    let constant = constantLoss(config)
    var warnings: [RunWarning] = []
    for step in summary.mergedSteps where step >= 1 && step <= curves.count {
      let fraction = step == 1 ? firstStepLearnedFraction : laterStepLearnedFraction
      // Without the labels, only step 1's curve can say whether it moved at all.
      guard constant != nil || step == 1 else { continue }
      if let w = RunDiagnostics.classifierLearning(step: step, curve: curves[step - 1], constantLoss: constant,
                                                   learnedFraction: fraction) {
        warnings.append(w)
      }
    }
    for step in summary.mergedSteps {
      guard let notes = try? StageManifest.read(from: layout.step(step))?.notes,
            let new = notes["newly_erased_fraction"].flatMap(Double.init), let all = notes["erased_fraction"].flatMap(Double.init),
            let w = RunDiagnostics.erasedNothing(step: step, newlyErasedFraction: new, erasedFraction: all) else { continue }
      warnings.append(w)
    }
    // The ratio rule compares every step with step 1; the chance rule (stopChanceFraction)
    // compares with the constant predictor, which no step 1 can fool.
    if config.stopChanceFraction == nil,
       let w = RunDiagnostics.stoppingRule(curves: curves, stopRatio: config.stopRatio,
                                           stopped: summary.mergedSteps.count < summary.finalLosses.count) {
      warnings.append(w)
    }
    return warnings
  }

  /// Each finished PSL round's classification branch against the loss of answering each
  /// class's frequency in its training labels (dataset, split and loss from its manifest).
  public static func segmentation(run: URL) -> [RunWarning] {
    let layout = SegmentationLayout(run: run)
    return [ModelVariant.psl, .pslPlus].compactMap { variant in
      guard let manifest = try? StageManifest.read(from: layout.directory(variant)),
            let final = manifest.notes["final_classification"].flatMap(Double.init),
            let path = manifest.parameters["dataset"], let split = manifest.parameters["split"],
            let loss = manifest.parameters["cls_loss"].flatMap(ClassificationLoss.init(rawValue:)),
            let constant = constantLoss(dataset: path, split: split, loss: loss) else { return nil }
      return RunDiagnostics.classificationBranch(model: variant.rawValue, finalLoss: final, constantLoss: constant)
    }
  }

  /// The final model against the earlier round, and the weak models against the fully
  /// supervised bound, on the evaluation split (RUN/metrics).
  public static func scores(run: URL, finalModel: ModelVariant) -> [RunWarning] {
    let layout = RunLayout(run: run)
    func valMIoU(_ variant: ModelVariant) -> Double? {
      guard let data = try? Data(contentsOf: layout.metricsFile(.model(variant))),
            let report = try? JSONDecoder().decode(EvaluationReport.self, from: data) else { return nil }
      return report.meanIoU * 100
    }
    let scores: [(model: String, valMIoU: Double)] = [ModelVariant.psl, .pslPlus].compactMap { variant in
      valMIoU(variant).map { (variant.rawValue, $0) }
    }
    let final = RunDiagnostics.finalModel(finalModel.rawValue, scores: scores)
    let bound = valMIoU(.full).flatMap { RunDiagnostics.upperBound($0, weak: scores) }
    return [final, bound].compactMap { $0 }
  }

  /// The constant predictor's loss for the erasing configuration's training labels, or nil
  /// when they cannot be read.
  static func constantLoss(_ config: EraseConfiguration) -> Double? {
    constantLoss(dataset: config.dataset, split: config.split, loss: config.loss)
  }

  /// The constant predictor's `loss` for the image labels of `split` of the dataset at `path`.
  static func constantLoss(dataset path: String, split: String, loss: ClassificationLoss) -> Double? {
    guard let dataset = try? VOCDataset(root: URL(fileURLWithPath: path)),
          let set = try? dataset.classificationSet(split: split, onBadImage: .skip), set.count > 0 else { return nil }
    let frequencies = RunDiagnostics.labelFrequencies(labels: set.samples.map(\.labels), classes: dataset.classes.count)
    return RunDiagnostics.constantPredictorLoss(labelFrequencies: frequencies, loss: loss)
  }

  /// The loss column of an erasing step's loss.csv ("epoch,loss"); empty when unreadable.
  static func readCurve(_ url: URL) -> [Float] {
    guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
    return text.split(whereSeparator: \.isNewline).dropFirst().compactMap { line in
      line.split(separator: ",").last.flatMap { Float($0.trimmingCharacters(in: .whitespaces)) }
    }
  }

  /// RUN/warnings.json, atomically: a JSON list, empty when nothing went wrong.
  public static func write(_ warnings: [RunWarning], to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try writeFileAtomically(try encoder.encode(warnings), to: url)
  }

  /// The warnings a run wrote; nil when it wrote none (a run made before them).
  public static func read(from url: URL) throws -> [RunWarning]? {
    guard FileManager.default.fileExists(atPath: url.path) else { return nil }
    do {
      return try JSONDecoder().decode([RunWarning].self, from: Data(contentsOf: url))
    } catch {
      throw AEPSLError(file: url.path, problem: "is not a list of run warnings (\(error))",
                        fix: "Delete it; `aepsl run` writes it again from the run's files.")
    }
  }
}
