import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation

public enum SegmentationStage {
  /// Trains (or resumes) the segmenter of `config` into RUN/seg/<variant>/, then with
  /// `pslPlus` the second round into RUN/seg/psl-plus/. A finished round is never redone;
  /// one finished with other settings is an error (delete it to retrain).
  ///
  /// With a `communicator` of K ranks (mpirun): each round trains data-parallel (shares of
  /// every global batch, sync batch norm, summed gradients), PSL+ predicts the training set
  /// split across the ranks, and rank 0 alone logs and writes checkpoints, loss curves and
  /// manifests (the run directory must be one shared file system).
  @discardableResult
  public static func run(_ config: SegmentationConfiguration, run: URL, refinement: Refinement = .argmax,
                         progress: ProgressReporter.Options = .init(),
                         log: @escaping (String) -> Void = { print($0) },
                         communicator: Communicator = SingleProcess()) throws -> [SegmentationRound] {
    let log = communicator.rootOnly(log)
    let progress = progress.onlyOn(communicator)
    guard let spec = config.spec else {
      throw AEPSLError(file: config.net, problem: "is not a network", fix: "Use one of: \(BackboneSpec.names.joined(separator: ", ")).")
    }
    if config.pslPlus && (config.supervision != .weak || !config.psl) {
      throw AEPSLError(file: run.path, problem: "PSL+ is a second round of weakly supervised PSL",
                        fix: "Use --psl-plus only with --psl on and --supervision weak.")
    }
    let layout = SegmentationLayout(run: run)
    sweepTemporaries(layout.root, stage: "train-seg", log: log)
    let (dataset, split) = try resolveDataset(config, run: run)
    var config = config
    config.schedule = config.schedule(classes: dataset.classes.count)
    let listed = try dataset.classificationSet(split: split, onBadImage: config.onBadImage)
    guard listed.count > 0 else {
      throw AEPSLError(file: dataset.listURL(split: split).path, problem: "lists no labelled image",
                        fix: "Check the split name and the annotations.")
    }
    if !listed.skippedUnlabeled.isEmpty { log("train-seg: \(listed.skippedUnlabeled.count) images without labels are skipped") }

    // Round 1: PSL, DeepLab, or the fully supervised upper bound.
    let first = config.firstVariant
    let masks: MaskSource
    switch config.supervision {
    case .full:
      log("train-seg: FULLY SUPERVISED upper bound: training on the ground-truth masks of split '\(split)', not on pseudo masks")
      masks = .groundTruth
    case .weak:
      let dir = config.masks.map { URL(fileURLWithPath: $0) } ?? RunLayout(run: run).masks
      if config.masks == nil, try StageManifest.read(from: dir) == nil {
        throw AEPSLError(file: dir.path, problem: "holds no finished pseudo masks",
                          fix: "Run `aepsl masks --run \(run.path)` first, or give --masks DIR.")
      }
      masks = .directory(dir.standardizedFileURL)
    }
    let set = try checkTrainingImages(listed, dataset: dataset, masks: masks, policy: config.onBadImage, progress: progress)
    if !set.skipped.isEmpty { log("train-seg: \(set.skipped.count) bad images or masks skipped (listed in the manifest)") }
    // When the masks were made is part of what shaped the round: new masks are noticed.
    var extra: [String: String] = [:]
    if case .directory(let dir) = masks { extra["masks_made"] = StageManifest.madeAt(dir) }
    var rounds = [try trainRound(variant: first, config: config, spec: spec, dataset: dataset, split: split, set: set,
                                 masks: masks, extra: extra, layout: layout, progress: progress, log: log,
                                 communicator: communicator)]
    guard config.pslPlus else { return rounds }

    // PSL+: the first round's refined predictions of the training set become S.
    let plusMasks = try predictTrainingSet(from: rounds[0], config: config, set: set, dataset: dataset,
                                           refinement: refinement, layout: layout, progress: progress, log: log,
                                           communicator: communicator)
    let start = config.effectivePlusInit == .firstRound ? rounds[0].checkpoint : nil
    var plusExtra = ["confidence": "\(config.confidenceThreshold)", "refinement": refinement.description,
                     "masks_made": StageManifest.madeAt(plusMasks), "plus_init": config.effectivePlusInit.rawValue]
    // Named only when not the original rule, so that earlier runs are still recognised.
    if config.plusUncertain != .keep { plusExtra["uncertain"] = config.plusUncertain.rawValue }
    var plusConfig = config
    if let lr = config.plusLearningRate { plusConfig.schedule.learningRate = lr }
    if let epochs = config.plusEpochs { (plusConfig.schedule.epochs, plusConfig.schedule.minIterations) = (epochs, nil) }
    rounds.append(try trainRound(variant: .pslPlus, config: plusConfig, spec: spec, dataset: dataset,
                                 split: split, set: set, masks: .directory(plusMasks), extra: plusExtra,
                                 start: start, layout: layout, progress: progress, log: log, communicator: communicator))
    return rounds
  }

  /// The dataset and split: given, or the erasing stage's (recorded with an absolute path).
  static func resolveDataset(_ config: SegmentationConfiguration, run: URL) throws -> (VOCDataset, String) {
    let erase = try EraseStage.configuration(run: run)
    guard let path = config.dataset ?? erase?.dataset else {
      throw AEPSLError(file: run.path, problem: "has no erasing stage to take the dataset from",
                        fix: "Give --dataset DIR.")
    }
    return (try VOCDataset(root: URL(fileURLWithPath: path)), config.split ?? erase?.split ?? "train")
  }

  /// Every parameter that shaped a round. `pslPlus`, the confidence threshold and the CRF
  /// are left out of the first round's: they only shape the second, so asking for PSL+
  /// later reuses a finished first round.
  static func parameterTable(_ c: SegmentationConfiguration, variant: ModelVariant, dataset: VOCDataset, split: String,
                             set: ClassificationSet, masks: MaskSource, extra: [String: String]) -> [String: String] {
    var table = [
      "variant": variant.rawValue, "dataset": dataset.root.path, "split": split, "net": c.net, "init": c.initWeights.map(absolutePath) ?? "",
      "masks": masks.description, "supervision": c.supervision.rawValue, "psl": c.psl ? "on" : "off",
      "cls_loss": c.psl ? c.classificationLoss.rawValue : "none", "epochs": "\(c.schedule.epochs)",
      "lr": "\(c.schedule.learningRate)", "momentum": "\(c.schedule.momentum)", "weight_decay": "\(c.schedule.weightDecay)",
      "poly_power": "\(c.schedule.polyPower)", "batch_size": "\(c.batchSize)", "crop_size": "\(c.cropSize)",
      "scales": "\(c.minScale)-\(c.maxScale)", "seed": "\(c.seed)",
      "head_lr_multiplier": "\(c.effectiveHeadLRMultiplier)",
      "image_side": c.workingSide.map { "\($0)" } ?? "own size",
      "min_iterations": c.schedule.minIterations.map { "\($0)" } ?? "none",
      // Which images trained: a bad image skipped, or one repaired, changes the round.
      "images": fingerprint(of: set.ids),
    ]
    table.merge(extra) { $1 }
    return table
  }

  static func trainRound(variant: ModelVariant, config: SegmentationConfiguration, spec: BackboneSpec, dataset: VOCDataset,
                         split: String, set: ClassificationSet, masks: MaskSource, extra: [String: String],
                         start: URL? = nil, layout: SegmentationLayout, progress: ProgressReporter.Options,
                         log: @escaping (String) -> Void, communicator: Communicator = SingleProcess()) throws -> SegmentationRound {
    let dir = layout.directory(variant)
    let parameters = parameterTable(config, variant: variant, dataset: dataset, split: split, set: set, masks: masks, extra: extra)
    if try StageManifest.finished(in: dir, parameters: parameters) != nil {
      let curve = try readLossCurve(layout.lossCurve(variant))
      log("train-seg: \(variant) already done (final loss \(curve.last.map { String(format: "%.4f", $0.terms.total) } ?? "?")); "
          + "delete \(dir.path) to redo it")
      return SegmentationRound(variant: variant, directory: dir, checkpoint: layout.checkpoint(variant), curve: curve)
    }
    let started = Date()
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let classes = dataset.classes.count
    let source = try trainingSource(set: set, dataset: dataset, masks: masks)

    let model = Segmenter(spec: spec, classes: classes, seed: config.seed, headLRMultiplier: config.effectiveHeadLRMultiplier)
    if let path = config.initWeights { try VGG16Import.load(from: PretrainedWeights.resolve(path), into: model.parameters) }
    if let start {
      try Checkpoint.load(from: start, into: model.parameters, buffers: model.buffers)
      log("train-seg: \(variant) starts from \(start.path)")
    }
    // Without PSL the classification branch is not trained at all (no loss, no update, no
    // weight decay): round 1 is then exactly DeepLab, and inference does no weighting.
    let trainable = config.psl ? model.parameters : model.backbone.parameters + model.scoreLayer.parameters
    var options = BatchLoader.Options(
      batchSize: config.batchSize,
      augmentation: Augmentation(scales: config.minScale...config.maxScale, crop: config.cropSize, randomCrop: true, flip: true,
                                 longerSide: config.workingSide),
      shuffle: true, dropLast: source.count > config.batchSize, labelMaps: true, seed: config.seed)
    (options.replica, options.replicas) = (communicator.rank, communicator.size)
    let loader = BatchLoader(source: source, classes: classes, options: options)
    log("train-seg: \(variant): \(source.count) images, \(classes) classes, \(config.net), masks from \(masks.description)"
        + (config.psl ? ", PSL (online mask + classification branch)" : ", plain DeepLab (classification branch not trained)"))

    var info = SegmenterInfo(net: config.net, classNames: dataset.classes.names, variant: variant.rawValue, classificationTrained: config.psl)
    info.imageSide = config.workingSide
    let schedule = config.schedule.resolved(batchesPerEpoch: loader.batchesPerEpoch)
    if schedule.epochs > config.schedule.epochs {
      log("train-seg: \(variant): \(schedule.epochs) epochs rather than \(config.schedule.epochs), for at least \(config.schedule.minIterations ?? 0) iterations")
    }
    let curve = try trainSegmenter(
      model, trainable: trainable, loader: loader, schedule: schedule,
      loss: SegmentationLoss(prohibitive: config.psl, classification: config.classificationLoss),
      stage: "train-seg \(variant)", state: layout.trainingState(variant),
      fingerprint: settingsText(parameters),
      progress: progress, log: log, communicator: communicator)
    let last = curve.last?.terms ?? SegmentationLossTerms()
    guard communicator.isRoot else {
      // Rank 0 writes the round; the others go on once it is on disk.
      communicator.barrier()
      return SegmentationRound(variant: variant, directory: dir, checkpoint: layout.checkpoint(variant), curve: curve)
    }
    try Checkpoint.save(parameters: model.parameters, buffers: model.buffers,
                        metadata: info.metadata.merging(["supervision": config.supervision.rawValue]) { $1 },
                        to: layout.checkpoint(variant))
    try writeLossCurve(curve, to: layout.lossCurve(variant))
    var notes = [
      "final_loss": "\(last.total)", "final_classification": "\(last.classification)",
      "final_segmentation": "\(last.segmentation)", "final_online": "\(last.online)",
      "classification_branch": config.psl ? "trained" : "not trained (plain DeepLab: no weighting at inference)",
      "images": "\(source.count)", "classes": dataset.classes.names.joined(separator: ","),
      "label_targets": "masks sampled at the score cells (nearest, ScoreGrid), as DeepLab shrinks its labels",
    ]
    notes.merge(SkippedImage.manifestNotes(set.skipped)) { $1 }
    if config.supervision == .full {
      notes["fully_supervised_upper_bound"] = "true: trained on the ground-truth masks of the training split"
    }
    try StageManifest(stage: "train-seg", parameters: parameters, inputs: [dataset.root.path, masks.description],
                      startedAt: started, notes: notes).write(to: dir)
    try? FileManager.default.removeItem(at: layout.trainingState(variant))
    communicator.barrier()
    log(String(format: "train-seg: %@ done, final loss %.4f (classification %.4f, segmentation %.4f, online %.4f) -> %@",
               variant.rawValue, last.total, last.classification, last.segmentation, last.online, layout.checkpoint(variant).path))
    return SegmentationRound(variant: variant, directory: dir, checkpoint: layout.checkpoint(variant), curve: curve)
  }

  /// `StageManifest.madeAt` of the directory holding a checkpoint.
  public static func trainedAt(_ checkpoint: URL) -> String { StageManifest.madeAt(checkpoint.deletingLastPathComponent()) }
}
