import AEPSLCRF
import AEPSLData
import AEPSLFiles
import AEPSLImaging
import AEPSLMethod
import AEPSLReport
import Foundation

/// The stages of `aepsl run`, in order (docs/METHOD.md 4).
public enum PipelineStage: String, CaseIterable, Sendable, Codable {
  case synth, erase, masks, trainSeg = "train-seg", predict, eval, report
}

/// From tags to masks in one call: synth (when no dataset is given) -> erase -> masks ->
/// train-seg (PSL, PSL+, and the bounds asked for) -> predict -> eval -> report.
///
/// Resuming: a stage is done when its outputs carry their manifests. Before a stage runs,
/// the outputs of every later stage are deleted, so that nothing downstream survives from
/// older inputs: deleting one stage's output (or changing its options in the config) redoes
/// that stage and those after it only, even if the rerun is itself interrupted.
public struct Pipeline {
  public let run: URL
  public let config: RunConfiguration
  public var progress: ProgressReporter.Options
  public var log: (String) -> Void

  public init(run: URL, config: RunConfiguration, progress: ProgressReporter.Options = .init(),
              log: @escaping (String) -> Void = { print($0) }) {
    self.run = run
    self.config = config
    self.progress = progress
    self.log = log
  }

  public var configFile: URL { run.appendingPathComponent("config.json") }
  public var datasetDirectory: URL {
    config.dataset.map { URL(fileURLWithPath: $0) } ?? run.appendingPathComponent("dataset", isDirectory: true)
  }
  var masksDirectory: URL { run.appendingPathComponent("masks", isDirectory: true) }
  var camOnlyMasksDirectory: URL { run.appendingPathComponent("masks-cam-only", isDirectory: true) }
  var predictDirectory: URL { run.appendingPathComponent("predict", isDirectory: true) }
  var predictionsRoot: URL { run.appendingPathComponent("predictions", isDirectory: true) }
  var metricsDirectory: URL { run.appendingPathComponent("metrics", isDirectory: true) }
  var reportFile: URL { run.appendingPathComponent("report/index.html") }
  var segmentation: SegmentationLayout { SegmentationLayout(run: run) }

  /// The segmenters the run trains: (variant, configuration). The final one is PSL+ (or PSL).
  var segmenters: [(variant: String, config: SegmentationConfiguration)] {
    var weak = config.segmentation
    weak.supervision = .weak
    weak.psl = true
    var list = [(weak.pslPlus ? SegmentationConfiguration.plusVariant : "psl", weak)]
    if config.ablation {
      var plain = weak
      plain.psl = false
      plain.pslPlus = false
      list.append(("deeplab", plain))
    }
    if config.upperBound && trainingHasGroundTruth {
      var full = weak
      full.supervision = .full
      full.psl = false
      full.pslPlus = false
      list.append(("full", full))
    }
    return list
  }

  /// The variants predicted and scored on the evaluation split.
  var scoredVariants: [String] {
    var names = ["psl"]
    if config.segmentation.pslPlus { names.append(SegmentationConfiguration.plusVariant) }
    return names + segmenters.dropFirst().map(\.variant)
  }

  /// Whether every image of the training split has a ground-truth mask: the fully
  /// supervised upper bound needs them. A dataset of tagged images alone (the method's
  /// purpose) has none, and the run goes on without the bound.
  var trainingHasGroundTruth: Bool {
    guard let dataset = try? VOCDataset(root: datasetDirectory), let ids = try? dataset.imageIDs(split: config.erase.split),
          !ids.isEmpty else { return false }
    return ids.allSatisfy { dataset.maskURL($0) != nil }
  }

  /// Whether the dataset has a list for `split`.
  func lists(_ split: String) -> Bool {
    guard let dataset = try? VOCDataset(root: datasetDirectory) else { return false }
    return FileManager.default.fileExists(atPath: dataset.listURL(split: split).path)
  }

  var finalVariant: String {
    config.finalModel == SegmentationConfiguration.plusVariant && config.segmentation.pslPlus ? SegmentationConfiguration.plusVariant : "psl"
  }

  // MARK: - Which stages are done, and what each one writes

  /// The files and directories a stage writes (deleted when it must be redone).
  func outputs(of stage: PipelineStage) -> [URL] {
    switch stage {
    case .synth: return config.dataset == nil ? [datasetDirectory] : []
    case .erase: return [EraseLayout(run: run).root]
    case .masks: return [masksDirectory, camOnlyMasksDirectory]
    case .trainSeg: return [segmentation.root]
    case .predict: return [predictDirectory, predictionsRoot]
    case .eval: return [metricsDirectory]
    case .report: return [reportFile.deletingLastPathComponent()]
    }
  }

  func isDone(_ stage: PipelineStage) -> Bool {
    let fm = FileManager.default
    func manifest(_ dir: URL) -> Bool { fm.fileExists(atPath: dir.appendingPathComponent(StageManifest.fileName).path) }
    switch stage {
    case .synth: return fm.fileExists(atPath: datasetDirectory.appendingPathComponent("synth.json").path) || config.dataset != nil
    case .erase: return manifest(EraseLayout(run: run).root)
    case .masks: return manifest(masksDirectory) && manifest(camOnlyMasksDirectory)
    case .trainSeg:
      let variants = segmenters.map(\.variant) + (config.segmentation.pslPlus ? ["psl"] : [])
      return variants.allSatisfy { manifest(segmentation.directory($0)) }
    case .predict:
      return manifest(predictDirectory)
        && (!lists(config.evalSplit) || scoredVariants.allSatisfy { manifest(predictionsRoot.appendingPathComponent($0)) })
    case .eval:
      return manifest(metricsDirectory)
    case .report: return fm.fileExists(atPath: reportFile.path)
    }
  }

  /// Which sections of the configuration each stage depends on: a change in one redoes it.
  static func sections(of stage: PipelineStage) -> [String] {
    switch stage {
    case .synth: return ["dataset", "synth"]
    case .erase: return ["net", "seed", "erase"]
    case .masks: return ["masks"]
    case .trainSeg: return ["segmentation", "upperBound", "ablation", "plusCRF", "useCRF"]
    case .predict: return ["confidence", "crf", "useCRF", "evalSplit", "finalModel"]
    case .eval: return []
    case .report: return ["reportSamples"]
    }
  }

  // MARK: - Running

  /// Runs every stage from the first that is not done (or from `from`), and returns the
  /// report's path.
  @discardableResult
  public func execute(from: PipelineStage? = nil) throws -> URL {
    try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
    let changed = try changedStage()
    try writeFileAtomically(config.encoded(), to: configFile)
    let stages = PipelineStage.allCases
    var mustRedo = [from, changed].compactMap { $0 }.map { stages.firstIndex(of: $0)! }.min() ?? stages.count
    for (index, stage) in stages.enumerated() {
      if index < mustRedo && isDone(stage) {
        log("run: \(stage.rawValue) already done")
        continue
      }
      mustRedo = min(mustRedo, index)
      // Nothing after this stage may survive from older inputs, even if this run is killed.
      for later in stages[(index + 1)...] {
        for url in outputs(of: later) where FileManager.default.fileExists(atPath: url.path) {
          try FileManager.default.removeItem(at: url)
        }
      }
      if index == mustRedo, from != nil || changed != nil {
        for url in outputs(of: stage) where FileManager.default.fileExists(atPath: url.path) {
          try FileManager.default.removeItem(at: url)
        }
      }
      let started = Date()
      log("run: \(stage.rawValue) ...")
      try perform(stage)
      log(String(format: "run: %@ done in %.0f s", stage.rawValue, Date().timeIntervalSince(started)))
    }
    return reportFile
  }

  /// The earliest stage whose configuration sections differ from the last run's config.json.
  func changedStage() throws -> PipelineStage? {
    guard let data = try? Data(contentsOf: configFile) else { return nil }
    guard let old = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
      throw AEPSLError(file: configFile.path, problem: "is not the JSON this version writes",
                          fix: "Delete it (and the run's stages) or use another --run directory.")
    }
    let new = try JSONSerialization.jsonObject(with: config.encoded()) as! [String: Any]
    for stage in PipelineStage.allCases {
      for key in Self.sections(of: stage) where !same(old[key], new[key]) {
        log("run: option '\(key)' changed since the last run: redoing \(stage.rawValue) and what follows")
        return stage
      }
    }
    return nil
  }

  func same(_ a: Any?, _ b: Any?) -> Bool {
    switch (a, b) {
    case (nil, nil): return true
    case let (a?, b?):
      let options: JSONSerialization.WritingOptions = [.sortedKeys, .fragmentsAllowed]
      return (try? JSONSerialization.data(withJSONObject: a, options: options)) == (try? JSONSerialization.data(withJSONObject: b, options: options))
    default: return false
    }
  }

  func perform(_ stage: PipelineStage) throws {
    switch stage {
    case .synth:
      guard config.dataset == nil else { return }
      log("run: writing the synthetic dataset (\(config.synth.trainCount) + \(config.synth.valCount) images) to \(datasetDirectory.path)")
      try SyntheticDataset(configuration: config.synth).write(to: datasetDirectory)
    case .erase:
      var erase = config.erase
      erase.dataset = datasetDirectory.path
      try EraseStage.run(erase, run: run, progress: progress, log: log)
    case .masks:
      var masks = config.masks
      masks.output = masksDirectory.path
      masks.steps = nil
      try MaskStage.run(masks, run: run, progress: progress, log: log)
      masks.steps = 1
      masks.output = camOnlyMasksDirectory.path
      try MaskStage.run(masks, run: run, progress: progress, log: log)
    case .trainSeg:
      if config.upperBound && !trainingHasGroundTruth {
        log("run: the training split '\(config.erase.split)' has no ground-truth mask for every image: "
            + "the fully supervised upper bound is left out (set \"upperBound\": false to say so)")
      }
      for (variant, seg) in segmenters {
        var seg = seg
        seg.dataset = datasetDirectory.path
        log("run: training \(variant)\(seg.supervision == .full ? " (FULLY SUPERVISED upper bound)" : "")")
        try SegmentationStage.run(seg, run: run, refinement: plusRefinement, progress: progress, log: log)
      }
    case .predict:
      guard lists(config.evalSplit) else {
        // Nothing to predict or score on; the trained segmenters are the result.
        log("run: the dataset has no split '\(config.evalSplit)' (ImageSets/Segmentation/\(config.evalSplit).txt): nothing to predict; "
            + "use `aepsl predict --run \(run.path) --images DIR --out DIR` on your images")
        try FileManager.default.createDirectory(at: predictDirectory, withIntermediateDirectories: true)
        try StageManifest(stage: "predict", parameters: ["split": config.evalSplit], inputs: [], startedAt: Date(),
                          notes: ["skipped": "the dataset has no split '\(config.evalSplit)'"]).write(to: predictDirectory)
        return
      }
      var final = PredictConfiguration(checkpoint: segmentation.checkpoint(finalVariant).path, output: predictDirectory.path)
      final.dataset = datasetDirectory.path
      final.split = config.evalSplit
      final.confidenceThreshold = config.confidence
      final.overlay = true
      final.onBadImage = config.onBadImage
      try PredictStage.run(final, refinement: refinement, progress: progress, log: log)
      for variant in scoredVariants {
        var p = final
        p.checkpoint = segmentation.checkpoint(variant).path
        p.output = predictionsRoot.appendingPathComponent(variant).path
        p.overlay = false
        try PredictStage.run(p, refinement: refinement, progress: progress, log: log)
      }
    case .eval:
      let started = Date()
      let dataset = try VOCDataset(root: datasetDirectory)
      try FileManager.default.createDirectory(at: metricsDirectory, withIntermediateDirectories: true)
      let trainSplit = config.erase.split
      let table: [(name: String, predictions: URL, split: String)] =
        [("cam", camOnlyMasksDirectory, trainSplit), ("ae-masks", masksDirectory, trainSplit), ("predict", predictDirectory, config.evalSplit)]
        + scoredVariants.map { ($0, predictionsRoot.appendingPathComponent($0), config.evalSplit) }
      // Only images with a ground-truth mask are scored: a dataset of tagged images alone
      // has none, and is still a complete run.
      var notScored: [String: String] = [:]
      for (name, predictions, split) in table {
        guard lists(split), let manifest = try StageManifest.read(from: predictions), manifest.notes["skipped"] == nil else {
          notScored[name] = "no predictions for split '\(split)'"
          continue
        }
        let ids = try dataset.imageIDs(split: split).filter { !manifest.skippedIDs.contains($0) }
        let withTruth = ids.filter { dataset.maskURL($0) != nil }
        guard !withTruth.isEmpty else {
          notScored[name] = "no image of split '\(split)' has a ground-truth mask"
          log("run: \(name) not scored: \(notScored[name]!)")
          continue
        }
        if withTruth.count < ids.count {
          log("run: \(name): \(ids.count - withTruth.count) of \(ids.count) images of split '\(split)' have no ground-truth mask and are not scored")
        }
        let report = try Evaluation.labelMaps(predictions: predictions, dataset: dataset, split: split, ids: withTruth, progress: progress)
        try report.write(to: metricsDirectory.appendingPathComponent("\(name).json"))
      }
      try StageManifest(stage: "eval", parameters: [:], inputs: table.map(\.predictions.path), startedAt: started,
                        notes: ["not_scored": notScored.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "\n")])
        .write(to: metricsDirectory)
      log("run: scores in \(metricsDirectory.path)")
    case .report:
      try RunReport.write(run: run, options: ReportOptions(dataset: datasetDirectory.path, samples: config.reportSamples), log: log)
    }
  }

  /// The dense CRF of docs/METHOD.md 1.4 with the configured parameters, or plain argmax.
  var refinement: Refinement {
    guard config.useCRF else { return .argmax }
    return .denseCRF(config.crf)
  }

  /// The dense CRF that makes the PSL+ masks (`plusCRF`), or plain argmax.
  var plusRefinement: Refinement {
    guard config.useCRF else { return .argmax }
    return .denseCRF(config.plusCRF)
  }

  /// The mIoU table printed at the end of a run: name, split, mIoU, from RUN/metrics.
  public func summaryTable() -> String {
    var lines = ["mIoU (%)                                   split   mIoU"]
    let rows: [(String, String, String)] = [
      ("cam", "CAM only (pseudo masks from step 1)", config.erase.split),
      ("ae-masks", "AE pseudo masks (merged steps)", config.erase.split),
      ("psl", "AE-PSL" + (finalVariant == "psl" ? " (final)" : ""), config.evalSplit),
      (SegmentationConfiguration.plusVariant, "AE-PSL+" + (finalVariant == "psl" ? "" : " (final)"), config.evalSplit),
      ("deeplab", "DeepLab on AE masks (ablation)", config.evalSplit),
      ("full", "FULLY SUPERVISED upper bound", config.evalSplit),
    ]
    var weak: Double?, full: Double?
    for (name, label, split) in rows {
      guard let data = try? Data(contentsOf: metricsDirectory.appendingPathComponent("\(name).json")),
            let report = try? JSONDecoder().decode(EvaluationReport.self, from: data) else { continue }
      let value = report.meanIoU * 100
      if name == finalVariant { weak = value }
      if name == "full" { full = value }
      lines.append(label.padding(toLength: 43, withPad: " ", startingAt: 0) + split.padding(toLength: 8, withPad: " ", startingAt: 0)
                   + String(format: "%5.2f", value))
    }
    if lines.count == 1 { lines.append("(nothing scored: the dataset has no ground-truth masks for these splits)") }
    if config.upperBound && !trainingHasGroundTruth {
      lines.append("(no fully supervised upper bound: the training split has no ground-truth mask for every image)")
    }
    if let weak, let full, full > 0 {
      lines.append(String(format: "weak / full supervision: %.1f%%", 100 * weak / full))
    }
    return lines.joined(separator: "\n")
  }
}
