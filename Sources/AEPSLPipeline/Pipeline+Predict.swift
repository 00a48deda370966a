import AEPSLCRF
import AEPSLData
import AEPSLFiles
import AEPSLMethod
import Foundation

/// The predict and eval stages of `aepsl run`: the evaluation split (val), where defaults are
/// chosen, and the held-out split (test), where results are reported.
extension Pipeline {
  /// The final model into RUN/predict (with overlays), every scored one into RUN/predictions,
  /// and, when the dataset lists the held-out split, every scored one into RUN/predictions-test.
  func predict() throws {
    try predictEvaluationSplit()
    guard let heldOut = heldOutSplit else {
      if let split = config.predict.testSplit, !split.isEmpty, split != config.predict.split {
        log("run: the dataset lists no held-out split '\(split)' (ImageSets/Segmentation/\(split).txt): scored on '\(config.predict.split)' only")
      }
      return
    }
    for variant in scoredVariants {
      var p = predictConfiguration(variant, output: layout.testPredictions(variant))
      p.split = heldOut
      try PredictStage.run(p, refinement: refinement, progress: progress, log: log)
    }
  }

  func predictEvaluationSplit() throws {
    guard lists(config.predict.split) else {
      // Nothing to predict or score on; the trained segmenters are the result.
      log("run: the dataset has no split '\(config.predict.split)' (ImageSets/Segmentation/\(config.predict.split).txt): nothing to predict; "
          + "use `aepsl predict --run \(run.path) --images DIR --out DIR` on your images")
      try FileManager.default.createDirectory(at: layout.predict, withIntermediateDirectories: true)
      try StageManifest(stage: "predict", parameters: ["split": config.predict.split], inputs: [], startedAt: Date(),
                        notes: ["skipped": "the dataset has no split '\(config.predict.split)'"]).write(to: layout.predict)
      return
    }
    for variant in scoredVariants {
      try PredictStage.run(predictConfiguration(variant, output: layout.predictions(variant)), refinement: refinement,
                           progress: progress, log: log)
    }
    // The final model's label maps are among those just made: only its overlays are new.
    var final = predictConfiguration(finalVariant, output: layout.predict)
    final.overlay = true
    if scoredVariants.contains(finalVariant) { final.sameLabelsIn = layout.predictions(finalVariant).path }
    try PredictStage.run(final, refinement: refinement, progress: progress, log: log)
  }

  /// `variant`'s segmenter on the evaluation split into `output`, without overlays.
  func predictConfiguration(_ variant: ModelVariant, output: URL) -> PredictConfiguration {
    var p = PredictConfiguration(checkpoint: layout.segmentation.checkpoint(variant).path, output: output.path)
    p.dataset = datasetDirectory.path
    p.split = config.predict.split
    p.confidenceThreshold = config.predict.confidence
    p.onBadImage = config.onBadImage
    return p
  }

  /// What the eval stage scores: the CAM-only and AE masks on the training split, the final
  /// predictions and every scored model on the evaluation split, and every scored model on
  /// the held-out split when there is one.
  var evaluationEntries: [EvaluationConfiguration.Entry] {
    let trainSplit = config.erase.split, evalSplit = config.predict.split
    var entries: [EvaluationConfiguration.Entry] = [
      .init(name: .camOnly, predictions: layout.camOnlyMasks, split: trainSplit),
      .init(name: .aeMasks, predictions: layout.masks, split: trainSplit),
      .init(name: .predict, predictions: layout.predict, split: evalSplit),
    ]
    entries += scoredVariants.map { .init(name: .model($0), predictions: layout.predictions($0), split: evalSplit) }
    if let heldOut = heldOutSplit {
      entries += scoredVariants.map { .init(name: .test($0), predictions: layout.testPredictions($0), split: heldOut) }
    }
    return entries
  }

  /// The dense CRF of docs/METHOD.md 1.4 with the configured parameters, or plain argmax.
  var refinement: Refinement {
    guard config.useCRF else { return .argmax }
    return .denseCRF(config.predict.crf, threads: threads)
  }

  /// The dense CRF that makes the PSL+ masks (`plusCRF`), or plain argmax.
  var plusRefinement: Refinement {
    guard config.useCRF else { return .argmax }
    return .denseCRF(config.plusCRF, threads: threads)
  }
}
