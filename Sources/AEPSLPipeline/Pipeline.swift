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
  /// Threads of the dense CRF (the engine's are set by the caller, `ComputeThreads.set`).
  public var threads: Int

  public init(run: URL, config: RunConfiguration, progress: ProgressReporter.Options = .init(),
              threads: Int = crfDefaultThreads, log: @escaping (String) -> Void = { print($0) }) {
    self.run = run
    self.config = config
    self.progress = progress
    self.threads = threads
    self.log = log
  }

  public var layout: RunLayout { RunLayout(run: run) }
  public var configFile: URL { layout.configFile }
  public var datasetDirectory: URL {
    config.dataset.map { URL(fileURLWithPath: $0) } ?? layout.synthDataset
  }

  /// The segmenters the run trains: (variant, configuration). The final one is PSL+ (or PSL).
  var segmenters: [(variant: ModelVariant, config: SegmentationConfiguration)] {
    var weak = config.segmentation
    weak.supervision = .weak
    weak.psl = true
    var list: [(variant: ModelVariant, config: SegmentationConfiguration)] = [(weak.pslPlus ? .pslPlus : .psl, weak)]
    if config.ablation {
      var plain = weak
      plain.psl = false
      plain.pslPlus = false
      list.append((.deeplab, plain))
    }
    if config.upperBound && trainingHasGroundTruth {
      var full = weak
      full.supervision = .full
      full.psl = false
      full.pslPlus = false
      list.append((.full, full))
    }
    return list
  }

  /// The variants predicted and scored on the evaluation split (and the held-out split).
  var scoredVariants: [ModelVariant] {
    var names: [ModelVariant] = [.psl]
    if config.segmentation.pslPlus { names.append(.pslPlus) }
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

  /// The held-out split every scored model is predicted and scored on besides the evaluation
  /// split: `predict.testSplit` when the dataset lists it and it is not the evaluation split.
  var heldOutSplit: String? {
    guard let split = config.predict.testSplit, !split.isEmpty, split != config.predict.split, lists(split) else { return nil }
    return split
  }

  var finalVariant: ModelVariant {
    config.predict.finalModel == .pslPlus && config.segmentation.pslPlus ? .pslPlus : .psl
  }

  // MARK: - Which stages are done, and what each one writes

  /// The files and directories a stage writes (deleted when it must be redone).
  func outputs(of stage: PipelineStage) -> [URL] {
    switch stage {
    case .synth: return config.dataset == nil ? [datasetDirectory] : []
    case .erase: return [layout.erase.root, layout.warningsFile]
    case .masks: return [layout.masks, layout.camOnlyMasks]
    case .trainSeg: return [layout.segmentation.root]
    case .predict: return [layout.predict, layout.predictionsRoot, layout.testPredictionsRoot]
    case .eval: return [layout.metrics]
    case .report: return [layout.report]
    }
  }

  func isDone(_ stage: PipelineStage) -> Bool {
    let fm = FileManager.default
    func manifest(_ dir: URL) -> Bool { fm.fileExists(atPath: dir.appendingPathComponent(StageManifest.fileName).path) }
    switch stage {
    case .synth: return fm.fileExists(atPath: datasetDirectory.appendingPathComponent("synth.json").path) || config.dataset != nil
    case .erase: return manifest(layout.erase.root)
    case .masks: return manifest(layout.masks) && manifest(layout.camOnlyMasks)
    case .trainSeg:
      let variants = segmenters.map(\.variant) + (config.segmentation.pslPlus ? [.psl] : [])
      return variants.allSatisfy { manifest(layout.segmentation.directory($0)) }
    case .predict:
      return manifest(layout.predict) && (!lists(config.predict.split) || scoredVariants.allSatisfy { manifest(layout.predictions($0)) })
        && (heldOutSplit == nil || scoredVariants.allSatisfy { manifest(layout.testPredictions($0)) })
    case .eval:
      return manifest(layout.metrics)
    case .report: return fm.fileExists(atPath: layout.reportPage.path)
    }
  }

  /// A part of the configuration a stage depends on, compared as typed values.
  struct Section {
    let name: String
    let same: (RunConfiguration, RunConfiguration) -> Bool

    static func field<T: Equatable>(_ name: String, _ path: KeyPath<RunConfiguration, T>) -> Section {
      Section(name: name) { $0[keyPath: path] == $1[keyPath: path] }
    }
  }

  /// Which sections of the configuration each stage depends on: a change in one redoes it.
  static func sections(of stage: PipelineStage) -> [Section] {
    switch stage {
    // The generator's settings matter only to a run on the embedded dataset.
    case .synth: return [.field("dataset", \.dataset), Section(name: "synth") { $0.dataset != nil || $0.synth == $1.synth }]
    case .erase: return [.field("net", \.net), .field("seed", \.seed), .field("erase", \.erase)]
    case .masks: return [.field("masks", \.masks)]
    case .trainSeg:
      return [.field("segmentation", \.segmentation), .field("upperBound", \.upperBound), .field("ablation", \.ablation),
              .field("plusCRF", \.plusCRF), .field("useCRF", \.useCRF)]
    case .predict: return [.field("predict", \.predict), .field("useCRF", \.useCRF)]
    case .eval: return []
    case .report: return [.field("reportSamples", \.reportSamples)]
    }
  }

  // MARK: - Running

  /// Runs every stage from the first that is not done (or from `from`), and returns the
  /// report's path.
  @discardableResult
  public func execute(from: PipelineStage? = nil) throws -> URL {
    try checkDataset()
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
      if stage != .report { try updateWarnings() }
    }
    // A run finished before warnings were written gets them too.
    if !FileManager.default.fileExists(atPath: layout.warningsFile.path) { try updateWarnings() }
    return layout.reportPage
  }

  /// A given dataset must open and list the training split before anything is created: a
  /// wrong path is an error naming it, not a run folder left behind.
  func checkDataset() throws {
    guard let path = config.dataset else { return }
    let fix = "Give --dataset the directory that holds JPEGImages/, Annotations/ and ImageSets/Segmentation/, "
      + "or leave --dataset out to use the embedded synthetic dataset."
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw AEPSLError(file: path, problem: "is not a directory", fix: fix)
    }
    let dataset: VOCDataset
    do {
      dataset = try VOCDataset(root: URL(fileURLWithPath: path))
    } catch {
      throw AEPSLError(file: path, problem: "is not a dataset in the VOC layout (\(error))", fix: fix)
    }
    let list = dataset.listURL(split: config.erase.split)
    guard FileManager.default.fileExists(atPath: list.path) else {
      throw AEPSLError(file: list.path, problem: "is missing: the dataset has no training split '\(config.erase.split)'",
                        fix: "Check --dataset, or set \"erase\": {\"split\": ...} in the --config file to a split the dataset lists.")
    }
  }

  /// The earliest stage whose configuration sections differ from the last run's config.json.
  func changedStage() throws -> PipelineStage? {
    guard let data = try? Data(contentsOf: configFile) else { return nil }
    let old: RunConfiguration
    do {
      old = try JSONDecoder().decode(RunConfiguration.self, from: data)
    } catch {
      throw AEPSLError(file: configFile.path,
                        problem: "is not the configuration this version writes (\(RunConfiguration.describe(error)))",
                        fix: "Delete it to keep the finished stages as they are, or use another --run directory.")
    }
    for stage in PipelineStage.allCases {
      for section in Self.sections(of: stage) where !section.same(old, config) {
        log("run: option '\(section.name)' changed since the last run: redoing \(stage.rawValue) and what follows")
        return stage
      }
    }
    return nil
  }

  func perform(_ stage: PipelineStage) throws {
    switch stage {
    case .synth:
      guard config.dataset == nil else { return }
      let c = config.synth
      log("run: writing the synthetic dataset (\(c.trainCount) train, \(c.valCount) val, \(c.testTotal) test images) to \(datasetDirectory.path)")
      _ = try SyntheticDataset(configuration: config.synth).write(to: datasetDirectory)
    case .erase:
      var erase = config.erase
      erase.dataset = datasetDirectory.path
      try EraseStage.run(erase, run: run, progress: progress, log: log)
    case .masks:
      var masks = config.masks
      masks.output = layout.masks.path
      masks.steps = nil
      try MaskStage.run(masks, run: run, progress: progress, log: log)
      masks.steps = 1
      masks.output = layout.camOnlyMasks.path
      try MaskStage.run(masks, run: run, progress: progress, log: log)
    case .trainSeg:
      try trainSegmenters()
    case .predict:
      try predict()
    case .eval:
      try EvaluationStage.run(EvaluationConfiguration(dataset: datasetDirectory, entries: evaluationEntries), run: run,
                              progress: progress, log: log)
    case .report:
      try RunReport.write(run: run, options: ReportOptions(dataset: datasetDirectory.path, samples: config.reportSamples), log: log)
    }
  }

  func trainSegmenters() throws {
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
  }
}
