import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the segmenter learns from.
public enum Supervision: String, Sendable, Codable, CaseIterable {
  /// The pseudo masks of the run (or --masks): weakly supervised, the method.
  case weak
  /// The ground-truth masks of the training split: the fully supervised upper bound. The
  /// only place training reads training-set ground truth.
  case full
}

/// Where the PSL+ round starts from.
public enum PlusInitialisation: String, Sendable, Codable, CaseIterable {
  /// The same initialisation as the first round (DESIGN.md 1.3: retrain).
  case same
  /// The first round's trained network (fine-tune it on the refined masks).
  case firstRound = "first-round"
}

/// Which pixels of the PSL+ masks are left at 255 (ignore) besides those labelled with a
/// class the image does not have.
public enum PlusUncertainPixels: String, Sendable, Codable, CaseIterable {
  /// None: every pixel keeps the refined label (DESIGN.md 1.3 as the paper states it).
  case keep
  /// Pixels where the refinement (the dense CRF) changed the network's own label (the
  /// argmax of the weighted probabilities): the two disagree, so neither is trusted, and the
  /// online mask decides there, as many WSSS codebases ignore uncertain pixels. Measured with
  /// `tiny` on the synthetic set (PSL+ from round 1, masks from `CRFParameters.plusMasks`,
  /// 6.8% of pixels ignored): val mIoU 70.8 with the CRF against 77.6 with `keep`, and 54.6
  /// against 61.1 without; the ignored pixels are where the CRF corrects the network, which
  /// is what PSL+ should learn. Not the default.
  case crfChanged = "crf-changed"
}

/// Everything the segmentation stage depends on (DESIGN.md 1.3).
///
/// Defaults follow DeepLab-LargeFOV where they apply: SGD momentum 0.9, weight decay 5e-4,
/// poly decay with power 0.9, new layers (score layer and classification branch) at 10x
/// the base rate for weights and 20x for biases when the backbone comes from ImageNet
/// (`--init`; 1x/2x when everything trains from scratch, as in the erasing stage).
/// - `largefov`: lr 0.001, crop 321, scales 0.5-1.5 (DeepLab's), 20 epochs (DeepLab v2's
///   20k iterations of 10 images is about 19 passes over VOC train_aug), batch 4 rather
///   than DeepLab's 10 so that a step fits a CPU's memory and time (the same as erasing).
/// - `tiny`: from scratch with batch norm, lr 0.05, batch 16, crop 128, scales 0.75-1.25,
///   weight decay 1e-4, 12 epochs: a few minutes on the 800 synthetic training images.
///   Measured there (one seed, val mIoU without / with the CRF): lr 0.02 and 0.05 gave
///   51.2 / 72.2 and 50.9 / 74.4 on the AE masks, but on the denser PSL+ masks 0.02 left
///   the classification branch undertrained (32.5 against 47.3 without the CRF).
public struct SegmentationConfiguration: Sendable, Codable, Equatable {
  /// Dataset in the VOC layout; nil: the one the erasing stage used.
  public var dataset: String?
  /// Training split; nil: the erasing stage's (or "train").
  public var split: String?
  public var net: String
  /// ImageNet weights for `largefov`: "imagenet" (downloaded once, `PretrainedWeights`) or a
  /// VGG-16 .safetensors file; convolutions and fc6/fc7 as DeepLab built them (`VGG16Import`).
  public var initWeights: String?
  /// Pseudo masks <id>.png; nil: RUN/masks.
  public var masks: String?
  /// Prohibitive segmentation learning (online mask + classification branch); false: plain
  /// DeepLab on the masks.
  public var psl: Bool
  /// One more round on the CRF-refined predictions of the first (PSL+).
  public var pslPlus = false
  public var supervision = Supervision.weak
  public var classificationLoss = ClassificationLoss.mse
  public var schedule: TrainingSchedule
  public var batchSize: Int
  public var cropSize: Int
  public var minScale: Float
  public var maxScale: Float
  /// Learning-rate multiplier of the new layers' weights (score layer, classification
  /// branch); their biases get twice this. nil: DeepLab's 10 when the backbone comes from
  /// ImageNet (`initWeights`), 1 when everything trains from scratch (measured on the
  /// synthetic set with `tiny`: 10 kept the classification loss near chance, 0.52 after 12
  /// epochs against 0.28 with 1).
  public var headLRMultiplier: Float?
  var effectiveHeadLRMultiplier: Float { headLRMultiplier ?? (initWeights != nil ? 10 : 1) }
  /// PSL+: where the second round starts from. nil: the same initialisation as round 1
  /// when that is ImageNet (`initWeights`, the paper's setting); round 1's network when
  /// training from scratch. Measured with `tiny` on the synthetic set (val mIoU without /
  /// with the CRF): from scratch again, the classification branch learnt two of the six
  /// classes too slowly on the dense PSL+ masks, the online mask then taught background on
  /// them, and PSL+ fell to 46.0 / 48.6 against PSL's 51.2 / 74.3; from round 1 it reached
  /// 66.0 / 74.3 (plain DeepLab from scratch on the same masks: 63.0 / 72.2). These masks
  /// came from the CRF with unscaled spatial deviations; with `CRFParameters.plusMasks`
  /// (now the default) PSL+ from round 1 reaches 61.1 / 77.6 (PSL 51.2 / 74.3).
  public var plusInit: PlusInitialisation?
  var effectivePlusInit: PlusInitialisation { plusInit ?? (initWeights != nil ? .same : .firstRound) }
  /// PSL+: confidences below this are zeroed when predicting the training set.
  public var confidenceThreshold: Float = 0.1
  /// PSL+: the second round's base learning rate; nil: the first round's.
  public var plusLearningRate: Float?
  /// PSL+: which pixels of the refined predictions are left at 255 (`keep`: none, measured
  /// better; see `PlusUncertainPixels.crfChanged`).
  public var plusUncertain = PlusUncertainPixels.keep
  public var seed: UInt64 = 0
  /// A training image or pseudo mask that cannot be used (missing, corrupt, of another
  /// size, holding labels that are no class): stop (`fail`) or leave the image out (`skip`).
  public var onBadImage = BadImagePolicy.fail
  /// The working resolution (`EraseConfiguration.imageSide`): images are resized so that
  /// their longer side is this before training crops are taken; the checkpoint records it,
  /// and prediction resizes to it and back. nil: each image's own size.
  public var imageSide: Int?

  public init(net: String = "tiny", supervision: Supervision = .weak, psl: Bool? = nil) {
    self.net = net
    self.supervision = supervision
    // The upper bound is plain DeepLab on ground truth unless asked otherwise.
    self.psl = psl ?? (supervision == .weak)
    if net == "largefov" {
      schedule = TrainingSchedule(epochs: 20, learningRate: 0.001)
      batchSize = 4; cropSize = 321; minScale = 0.5; maxScale = 1.5
    } else {
      // At least 600 updates (12 epochs of the 800 synthetic images; RESULTS.md: on 400
      // images PSL reached 54.3 val mIoU in 12 epochs, 73.0 in 24).
      schedule = TrainingSchedule(epochs: 12, learningRate: 0.05, weightDecay: 1e-4, minIterations: 600)
      batchSize = 16; cropSize = 128; minScale = 0.75; maxScale = 1.25
    }
  }

  var spec: BackboneSpec? { BackboneSpec.named(net) }

  /// The directory name of the first round: psl, deeplab (PSL off), full (ground truth),
  /// full-psl.
  public var firstVariant: String {
    switch (supervision, psl) {
    case (.weak, true): return "psl"
    case (.weak, false): return "deeplab"
    case (.full, false): return "full"
    case (.full, true): return "full-psl"
    }
  }

  public static let plusVariant = "psl-plus"
}

/// Files of the segmentation stage inside a run directory: RUN/seg/<variant>/ per trained
/// network, each its own resumable stage.
public struct SegmentationLayout: Sendable {
  public let root: URL
  public init(run: URL) { root = run.appendingPathComponent("seg", isDirectory: true) }
  public func directory(_ variant: String) -> URL { root.appendingPathComponent(variant, isDirectory: true) }
  /// The trained network (parameters and batch-norm statistics), written when training ends.
  public func checkpoint(_ variant: String) -> URL { directory(variant).appendingPathComponent("segmenter.safetensors") }
  /// Per epoch: total loss and each term.
  public func lossCurve(_ variant: String) -> URL { directory(variant).appendingPathComponent("loss.csv") }
  /// Training state after the last finished epoch (with momentum), for resuming; removed
  /// once the variant is done.
  public func trainingState(_ variant: String) -> URL { directory(variant).appendingPathComponent("training-state.safetensors") }
  /// PSL+ masks: the first round's CRF-refined predictions of the training set.
  public var plusMasks: URL { root.appendingPathComponent("psl-plus-masks", isDirectory: true) }
}

/// The mean loss terms of one epoch.
public struct SegmentationEpoch: Sendable, Equatable {
  public var epoch: Int
  public var terms: SegmentationLossTerms
  /// Of the cells S labels (not 255), the fraction where the online mask S' agrees (PSL).
  public var onlineAgreement: Float?
  public var learningRate: Float

  static let csvHeader = "epoch,total,classification,segmentation,online,online_agreement,learning_rate"

  var csvRow: String {
    "\(epoch),\(terms.total),\(terms.classification),\(terms.segmentation),\(terms.online),"
      + "\(onlineAgreement.map { "\($0)" } ?? ""),\(learningRate)"
  }

  init(epoch: Int, terms: SegmentationLossTerms, onlineAgreement: Float?, learningRate: Float) {
    self.epoch = epoch
    self.terms = terms
    self.onlineAgreement = onlineAgreement
    self.learningRate = learningRate
  }

  init?(csvRow row: Substring) {
    let f = row.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    guard f.count == 7, let e = Int(f[0]), let c = Float(f[2]), let s = Float(f[3]), let o = Float(f[4]),
          let lr = Float(f[6]) else { return nil }
    self.init(epoch: e, terms: SegmentationLossTerms(classification: c, segmentation: s, online: o),
              onlineAgreement: Float(f[5]), learningRate: lr)
  }
}

/// One trained network of the stage.
public struct SegmentationRound: Sendable {
  public var variant: String
  public var directory: URL
  public var checkpoint: URL
  public var curve: [SegmentationEpoch]
}

/// How predicted probabilities become labels when PSL+ predicts the training set: the
/// dense CRF, handed in by the command-line tool, or nil for the argmax. `description`
/// goes into manifests.
public struct Refinement: Sendable {
  public var refine: ProbabilityRefiner?
  public var description: String
  public init(refine: ProbabilityRefiner?, description: String) {
    self.refine = refine
    self.description = description
  }
  public static let argmax = Refinement(refine: nil, description: "none (argmax)")
}

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
      throw MethodError(file: config.net, problem: "is not a network", fix: "Use one of: \(BackboneSpec.names.joined(separator: ", ")).")
    }
    if config.pslPlus && (config.supervision != .weak || !config.psl) {
      throw MethodError(file: run.path, problem: "PSL+ is a second round of weakly supervised PSL",
                        fix: "Use --psl-plus only with --psl on and --supervision weak.")
    }
    let layout = SegmentationLayout(run: run)
    sweepTemporaries(layout.root, stage: "train-seg", log: log)
    let (dataset, split) = try resolveDataset(config, run: run)
    let listed = try dataset.classificationSet(split: split, onBadImage: config.onBadImage)
    guard listed.count > 0 else {
      throw MethodError(file: dataset.listURL(split: split).path, problem: "lists no labelled image",
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
      let dir = config.masks.map { URL(fileURLWithPath: $0) } ?? run.appendingPathComponent("masks", isDirectory: true)
      if config.masks == nil, try StageManifest.read(from: dir) == nil {
        throw MethodError(file: dir.path, problem: "holds no finished pseudo masks",
                          fix: "Run `aepsl masks --run \(run.path)` first, or give --masks DIR.")
      }
      masks = .directory(dir.standardizedFileURL)
    }
    let set = try checkTrainingImages(listed, dataset: dataset, masks: masks, policy: config.onBadImage, progress: progress)
    if !set.skipped.isEmpty { log("train-seg: \(set.skipped.count) bad images or masks skipped (listed in the manifest)") }
    // When the masks were made is part of what shaped the round: new masks are noticed.
    var extra: [String: String] = [:]
    if case .directory(let dir) = masks { extra["masks_made"] = madeAt(dir) }
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
                     "masks_made": madeAt(plusMasks), "plus_init": config.effectivePlusInit.rawValue]
    // Named only when not the original rule, so that earlier runs are still recognised.
    if config.plusUncertain != .keep { plusExtra["uncertain"] = config.plusUncertain.rawValue }
    var plusConfig = config
    if let lr = config.plusLearningRate { plusConfig.schedule.learningRate = lr }
    rounds.append(try trainRound(variant: SegmentationConfiguration.plusVariant, config: plusConfig, spec: spec, dataset: dataset,
                                 split: split, set: set, masks: .directory(plusMasks), extra: plusExtra,
                                 start: start, layout: layout, progress: progress, log: log, communicator: communicator))
    return rounds
  }

  /// The dataset and split: given, or the erasing stage's.
  static func resolveDataset(_ config: SegmentationConfiguration, run: URL) throws -> (VOCDataset, String) {
    let erase = try StageManifest.read(from: EraseLayout(run: run).root)
    guard let path = config.dataset ?? erase?.parameters["dataset"] else {
      throw MethodError(file: run.path, problem: "has no erasing stage to take the dataset from",
                        fix: "Give --dataset DIR.")
    }
    let split = config.split ?? erase?.parameters["split"] ?? "train"
    let root = URL(fileURLWithPath: path)
    if config.dataset == nil && !FileManager.default.fileExists(atPath: root.path) {
      // The erasing stage records the path as it was given, possibly relative to another
      // working directory.
      throw MethodError(file: EraseLayout(run: run).root.appendingPathComponent(StageManifest.fileName).path,
                        problem: "names the dataset '\(path)', which is not there from \(FileManager.default.currentDirectoryPath)",
                        fix: "Give --dataset DIR.")
    }
    return (try VOCDataset(root: root), split)
  }

  enum MaskSource {
    case directory(URL)
    case groundTruth

    var description: String {
      switch self {
      case .directory(let url): return url.path
      case .groundTruth: return "ground truth (SegmentationClass)"
      }
    }
  }

  /// Every parameter that shaped a round. `pslPlus`, the confidence threshold and the CRF
  /// are left out of the first round's: they only shape the second, so asking for PSL+
  /// later reuses a finished first round.
  static func parameterTable(_ c: SegmentationConfiguration, variant: String, dataset: VOCDataset, split: String,
                             set: ClassificationSet, masks: MaskSource, extra: [String: String]) -> [String: String] {
    var table = [
      "variant": variant, "dataset": dataset.root.path, "split": split, "net": c.net, "init": c.initWeights ?? "",
      "masks": masks.description, "supervision": c.supervision.rawValue, "psl": c.psl ? "on" : "off",
      "cls_loss": c.psl ? c.classificationLoss.rawValue : "none", "epochs": "\(c.schedule.epochs)",
      "lr": "\(c.schedule.learningRate)", "momentum": "\(c.schedule.momentum)", "weight_decay": "\(c.schedule.weightDecay)",
      "poly_power": "\(c.schedule.polyPower)", "batch_size": "\(c.batchSize)", "crop_size": "\(c.cropSize)",
      "scales": "\(c.minScale)-\(c.maxScale)", "seed": "\(c.seed)",
      "head_lr_multiplier": "\(c.effectiveHeadLRMultiplier)",
      "image_side": c.imageSide.map { "\($0)" } ?? "own size",
      "min_iterations": c.schedule.minIterations.map { "\($0)" } ?? "none",
      // Which images trained: a bad image skipped, or one repaired, changes the round.
      "images": fingerprint(of: set.ids),
    ]
    table.merge(extra) { $1 }
    return table
  }

  /// The manifest of a finished stage in `directory` if its parameters are `parameters`;
  /// nil when unfinished; an error when it was made with other settings.
  static func finished(_ directory: URL, parameters: [String: String], elsewhere: String = "use another --run") throws -> StageManifest? {
    guard let done = try StageManifest.read(from: directory) else { return nil }
    guard done.parameters == parameters else {
      let keys = Set(done.parameters.keys).union(parameters.keys).sorted()
      let changes = keys.filter { done.parameters[$0] != parameters[$0] }
        .map { "\($0) \(done.parameters[$0] ?? "-") -> \(parameters[$0] ?? "-")" }
      throw MethodError(file: directory.path, problem: "was made with other settings (\(changes.joined(separator: ", ")))",
                        fix: "Delete \(directory.path) to redo it with the new settings, or \(elsewhere).")
    }
    return done
  }

  static func trainRound(variant: String, config: SegmentationConfiguration, spec: BackboneSpec, dataset: VOCDataset,
                         split: String, set: ClassificationSet, masks: MaskSource, extra: [String: String],
                         start: URL? = nil, layout: SegmentationLayout, progress: ProgressReporter.Options,
                         log: (String) -> Void, communicator: Communicator = SingleProcess()) throws -> SegmentationRound {
    let dir = layout.directory(variant)
    let parameters = parameterTable(config, variant: variant, dataset: dataset, split: split, set: set, masks: masks, extra: extra)
    if try finished(dir, parameters: parameters) != nil {
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
                                 longerSide: config.imageSide),
      shuffle: true, dropLast: source.count > config.batchSize, labelMaps: true, seed: config.seed)
    (options.replica, options.replicas) = (communicator.rank, communicator.size)
    let loader = BatchLoader(source: source, classes: classes, options: options)
    log("train-seg: \(variant): \(source.count) images, \(classes) classes, \(config.net), masks from \(masks.description)"
        + (config.psl ? ", PSL (online mask + classification branch)" : ", plain DeepLab (classification branch not trained)"))

    var info = SegmenterInfo(net: config.net, classNames: dataset.classes.names, variant: variant, classificationTrained: config.psl)
    info.imageSide = config.imageSide
    let schedule = config.schedule.resolved(batchesPerEpoch: loader.batchesPerEpoch)
    if schedule.epochs > config.schedule.epochs {
      log("train-seg: \(variant): \(schedule.epochs) epochs rather than \(config.schedule.epochs), for at least \(config.schedule.minIterations ?? 0) iterations")
    }
    let curve = try trainSegmenter(
      model, trainable: trainable, loader: loader, schedule: schedule,
      loss: SegmentationLoss(prohibitive: config.psl, classification: config.classificationLoss),
      stage: "train-seg \(variant)", state: layout.trainingState(variant),
      fingerprint: parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ";"),
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
               variant, last.total, last.classification, last.segmentation, last.online, layout.checkpoint(variant).path))
    return SegmentationRound(variant: variant, directory: dir, checkpoint: layout.checkpoint(variant), curve: curve)
  }

  /// Training images with their masks, read on the loader's threads. Every image and mask
  /// has passed `checkTrainingImages` before training starts.
  static func trainingSource(set: ClassificationSet, dataset: VOCDataset, masks: MaskSource) throws -> SampleSource {
    switch masks {
    case .groundTruth:
      // The fully supervised upper bound: the one training path that reads ground truth.
      return set.source { id in try dataset.groundTruthMask(id) }
    case .directory(let dir):
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw MethodError(file: dir.path, problem: "is not a directory of masks", fix: "Give --masks a directory of <id>.png pseudo masks.")
      }
      let classes = UInt8(set.classes.count)
      return set.source { id in
        let url = dir.appendingPathComponent("\(id).png")
        guard FileManager.default.fileExists(atPath: url.path) else {
          throw MethodError(file: url.path, problem: "is missing: the training image '\(id)' has no pseudo mask",
                            fix: "Write a mask per training image (`aepsl masks`), give another --masks directory, "
                              + "or pass --on-bad-image skip to train without the images that have none.")
        }
        let map = try LabelMap(contentsOf: url)
        if let bad = map.labels.first(where: { $0 > classes && $0 != LabelMap.ignore }) {
          throw MethodError(file: url.path, problem: "holds label \(bad), but the dataset has \(classes) classes",
                            fix: "Masks hold 0 (background), 1...\(classes) or 255 (ignore); regenerate them for this dataset.")
        }
        return map
      }
    }
  }

  /// Decodes every training image and its mask once, two at a time, before any training: a
  /// missing, corrupt or oversized image, a missing mask, a mask of another size or one
  /// holding a label that is no class stops the stage under `fail` (the first in list order,
  /// naming the file) and is left out and listed under `skip`. Training then meets no bad
  /// file on the loader's threads, where an error would end the run mid-epoch.
  static func checkTrainingImages(_ set: ClassificationSet, dataset: VOCDataset, masks: MaskSource, policy: BadImagePolicy,
                                  progress: ProgressReporter.Options) throws -> ClassificationSet {
    if case .directory(let dir) = masks, policy == .fail {
      // One message with the count is more useful than the first missing file alone.
      let missing = set.ids.filter { !FileManager.default.fileExists(atPath: dir.appendingPathComponent("\($0).png").path) }
      if let id = missing.first {
        throw MethodError(file: dir.appendingPathComponent("\(id).png").path,
                          problem: "is missing (\(missing.count) of \(set.count) training images have no mask)",
                          fix: "Write a mask per training image (`aepsl masks`), give another --masks directory, "
                            + "or pass --on-bad-image skip to train without them.")
      }
    }
    let source = try trainingSource(set: set, dataset: dataset, masks: masks)
    let bar = ProgressReporter("checking training images and masks", total: source.count, unit: "images", options: progress)
    let problems = ErrorSlots(count: source.count)
    let workers = 2
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
      for i in stride(from: worker, to: source.count, by: workers) {
        if Interruption.requested != nil { return }
        do {
          let sample = try source.load(i)
          if let map = sample.labelMap, map.width != sample.image.width || map.height != sample.image.height {
            throw MethodError(file: "\(masks.description)/\(sample.id).png",
                              problem: "is \(map.width)x\(map.height) but its image is \(sample.image.width)x\(sample.image.height)",
                              fix: "Make the mask at its image's size, or regenerate the masks for this dataset.")
          }
        } catch {
          problems.set(i, error)
        }
        bar.advance()
      }
    }
    try Interruption.check(stage: "train-seg", detail: "nothing was trained yet")
    bar.finish()
    var bad: [SkippedImage] = []
    for i in 0..<source.count {
      guard let error = problems.get(i) else { continue }
      let file = (error as? MethodError)?.file ?? set.samples[i].imageURL.path
      guard policy == .skip else {
        if let e = error as? MethodError { throw e }
        throw badImageError(error, file: file)
      }
      bad.append(SkippedImage(id: set.samples[i].id, file: file, reason: (error as? MethodError)?.problem ?? problemText(error)))
    }
    let kept = set.excluding(bad)
    guard kept.count > 0 else {
      throw MethodError(file: dataset.root.path, problem: "has no usable training image (all \(bad.count) are bad)",
                        fix: "Run with --on-bad-image fail to see the first problem, and fix the images or masks.")
    }
    return kept
  }

  /// Where training stands: finished epochs' rows, and within the epoch under way the next
  /// batch and the running sums. Saved with the weights so a resumed run continues exactly.
  struct Position {
    var curve: [SegmentationEpoch] = []
    var batch = 0
    var sums = (cls: 0.0, seg: 0.0, online: 0.0)
    var count = 0
    var agree = 0
    var labelled = 0

    var epoch: Int { curve.count + 1 }

    var metadata: [String: String] {
      ["curve": curve.map(\.csvRow).joined(separator: "\n"), "epoch": "\(epoch)", "batch": "\(batch)",
       "sums": "\(sums.cls),\(sums.seg),\(sums.online)", "counts": "\(count),\(agree),\(labelled)"]
    }

    init() {}

    init(metadata m: [String: String]) {
      curve = (m["curve"] ?? "").split(separator: "\n").compactMap { SegmentationEpoch(csvRow: $0) }
      batch = Int(m["batch"] ?? "") ?? 0
      let s = (m["sums"] ?? "").split(separator: ",").compactMap { Double($0) }
      let c = (m["counts"] ?? "").split(separator: ",").compactMap { Int($0) }
      if s.count == 3 && c.count == 3 {
        sums = (s[0], s[1], s[2])
        (count, agree, labelled) = (c[0], c[1], c[2])
      } else {
        batch = 0
      }
    }
  }

  /// Trains `model` (only `trainable` is updated) and returns the mean loss terms of every
  /// epoch. After every epoch, and when a stop is asked for (`Interruption`), the
  /// parameters, batch-norm statistics, momentum and position go to `state` atomically; a
  /// run stopped or killed later resumes from there and ends with the same weights as an
  /// uninterrupted one (data order, augmentation and dropout depend only on the seed, the
  /// epoch and the iteration).
  ///
  /// Stops with `NonFiniteLossError` on a NaN or infinite loss or gradient, before the bad
  /// update is applied.
  ///
  /// Data-parallel with `communicator` as `trainClassifier` is: shares of each global batch,
  /// sync batch norm, summed gradients, rank 0 alone saves; ranks stop together.
  static func trainSegmenter(_ model: Segmenter, trainable: [Parameter], loader: BatchLoader, schedule: TrainingSchedule,
                             loss: SegmentationLoss, stage: String, state: URL, fingerprint: String = "",
                             progress: ProgressReporter.Options, log: (String) -> Void,
                             communicator: Communicator = SingleProcess()) throws -> [SegmentationEpoch] {
    precondition(loader.options.replicas == communicator.size && loader.options.replica == communicator.rank,
                 "trainSegmenter: the loader must serve this rank's share")
    let sgd = SGD(parameters: trainable, learningRate: schedule.learningRate, momentum: schedule.momentum,
                  weightDecay: schedule.weightDecay)
    // Summed with the gradients: the three loss terms (this rank's parts), the online mask's
    // agreement counts, and whether this rank was asked to stop.
    let parallel = DataParallel(communicator: communicator, parameters: trainable, extras: 6)
    try parallel.checkBatch(size: loader.options.batchSize, images: loader.source.count)
    parallel.synchronizeBatchNorm(model.backbone)
    defer { model.backbone.synchronizeBatchNorm(nil) }
    let globalCounts: (([Double]) -> [Double])? = communicator.isDistributed ? { communicator.allreduceSum($0) } : nil
    var stopAgreed = false
    let perEpoch = loader.batchesPerEpoch
    let policy = LearningRateSchedule.poly(maxIterations: schedule.epochs * perEpoch, power: schedule.polyPower)
    let grid = ScoreGrid(spec: model.spec)
    let dropoutSeeds = SeededGenerator(seed: loader.options.seed).split("segmenter dropout by iteration")
    var position = Position()
    if FileManager.default.fileExists(atPath: state.path) {
      // Only a state saved with the same settings is resumed; the settings are compared
      // before anything is loaded.
      if (try? SafetensorsFile(contentsOf: state))?.metadata["settings"] == fingerprint {
        position = Position(metadata: try Checkpoint.load(from: state, into: model.parameters, buffers: model.buffers + sgd.state))
        log("\(stage): resuming after epoch \(position.curve.count) of \(schedule.epochs)"
            + (position.batch > 0 ? ", batch \(position.batch)" : ""))
      } else {
        log("\(stage): \(state.path) was saved with other settings (or is damaged); training from the start")
      }
    }
    func save() throws {
      guard communicator.isRoot else { return }
      try Checkpoint.save(parameters: model.parameters, buffers: model.buffers + sgd.state,
                          metadata: position.metadata.merging(["settings": fingerprint]) { $1 }, to: state)
    }
    while position.epoch <= schedule.epochs {
      let epoch = position.epoch
      let bar = ProgressReporter("\(stage) epoch \(epoch)/\(schedule.epochs)",
                                 total: min(loader.source.count, perEpoch * loader.options.batchSize), unit: "images", options: progress)
      if position.count > 0 { bar.advance(by: position.count) }
      let batches = loader.epoch(epoch, from: position.batch)
      while true {
        if communicator.isDistributed ? stopAgreed : Interruption.requested != nil {
          batches.cancel()
          if Interruption.requested == nil { Interruption.request(SIGTERM) }
          try save()
          try Interruption.check(stage: stage, detail: "the training state at epoch \(epoch), batch \(position.batch) is saved in \(state.path)")
        }
        guard let batch = try batches.next() else { break }
        let iteration = (epoch - 1) * perEpoch + batch.number
        sgd.learningRate = policy.rate(base: schedule.learningRate, iteration: iteration)
        var dropoutSeed = dropoutSeeds.split("\(iteration)")
        model.backbone.reseedDropout(dropoutSeed.next(), firstSample: batch.firstInBatch)
        let (scores, logits) = model.forward(batch.images, training: true)
        let (n, h, w) = (batch.count, scores.shape[2], scores.shape[3])
        let mask = grid.downsample(batch.labelMaps!, count: n, height: batch.height, width: batch.width, toHeight: h, toWidth: w)
        let valid = grid.downsample(batch.placements.flatMap(\.imageMask), count: n, height: batch.height, width: batch.width,
                                    toHeight: h, toWidth: w)
        let result = loss(scores: scores, logits: logits, targets: batch.targets, mask: mask, imageLabels: batch.labels,
                          valid: valid, globalCounts: globalCounts)
        guard result.terms.total.isFinite else {
          throw NonFiniteLossError(stage: stage, epoch: epoch, iteration: iteration, what: "loss", checkpoint: state.path)
        }
        model.backward(dScores: result.dScores, dLogits: result.dLogits)
        var labelled = 0, agree = 0
        if let online = result.onlineMask {
          for (s, o) in zip(mask, online) where s != Loss.ignoreLabel {
            labelled += 1
            if s == o { agree += 1 }
          }
        }
        let summed = parallel.sum([result.terms.classification, result.terms.segmentation, result.terms.online,
                                   Float(agree), Float(labelled), Interruption.requested != nil ? 1 : 0])
        stopAgreed = summed[5] > 0
        guard gradientsAreFinite(sgd.parameters) else {
          throw NonFiniteLossError(stage: stage, epoch: epoch, iteration: iteration, what: "gradient", checkpoint: state.path)
        }
        sgd.step()
        let b = Double(batch.globalCount)
        position.batch = batch.number + 1
        position.sums.cls += Double(summed[0]) * b
        position.sums.seg += Double(summed[1]) * b
        position.sums.online += Double(summed[2]) * b
        position.count += batch.globalCount
        position.labelled += Int(summed[4])
        position.agree += Int(summed[3])
        let s = position.sums
        bar.advance(by: batch.globalCount, note: String(format: "loss %.4f", (s.cls + s.seg + s.online) / Double(max(position.count, 1))))
      }
      let c = Double(max(position.count, 1))
      let row = SegmentationEpoch(
        epoch: epoch,
        terms: SegmentationLossTerms(classification: Float(position.sums.cls / c), segmentation: Float(position.sums.seg / c),
                                     online: Float(position.sums.online / c)),
        onlineAgreement: loss.prohibitive ? Float(position.agree) / Float(max(position.labelled, 1)) : nil,
        learningRate: sgd.learningRate)
      bar.finish(note: String(format: "loss %.4f (classification %.4f, segmentation %.4f, online %.4f)",
                              row.terms.total, row.terms.classification, row.terms.segmentation, row.terms.online))
      var next = Position()
      next.curve = position.curve + [row]
      position = next
      // Once an epoch rank 0's state is copied to all ranks, so they cannot drift apart.
      broadcast(model.parameters.map(\.value) + (model.buffers + sgd.state).map(\.value), from: communicator)
      try save()
    }
    if let report = parallel.report { log("\(stage): \(report)") }
    return Array(position.curve.prefix(schedule.epochs))
  }

  /// PSL+: predicts every training image with the first round's network (confidence
  /// weighting, then `refinement`, the dense CRF), and keeps only labels the image may
  /// hold: background and its own classes. A pixel given any other class becomes 255
  /// (ignore), not background: the prediction is known to be wrong there, and calling it
  /// background would teach background on what is most likely an object of the image;
  /// ignored, it is left to the online mask, which can only choose the image's classes.
  /// With `plusUncertain` `.crfChanged`, pixels whose refined label differs from the
  /// network's argmax become 255 too (`ignoreChanged`).
  static func predictTrainingSet(from round: SegmentationRound, config: SegmentationConfiguration, set: ClassificationSet,
                                 dataset: VOCDataset, refinement: Refinement, layout: SegmentationLayout,
                                 progress: ProgressReporter.Options, log: (String) -> Void,
                                 communicator: Communicator = SingleProcess()) throws -> URL {
    let out = layout.plusMasks
    var parameters = ["checkpoint": round.checkpoint.path, "checkpoint_trained": trainedAt(round.checkpoint),
                      "confidence": "\(config.confidenceThreshold)",
                      "refinement": refinement.description, "dataset": dataset.root.path,
                      "images": "\(set.count)", "outside_labels": "255"]
    if config.plusUncertain != .keep { parameters["uncertain"] = config.plusUncertain.rawValue }
    if try finished(out, parameters: parameters) != nil {
      log("train-seg: PSL+ masks already in \(out.path)")
      return out
    }
    let started = Date()
    try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
    let info = try SegmenterInfo(checkpoint: round.checkpoint)
    let inference = try info.inference(from: round.checkpoint, threshold: config.confidenceThreshold)
    // Rank r of K predicts images r, r + K, ...
    let shard = Shard.whole.split(across: communicator)
    let mine = set.samples.indices.filter(shard.contains).map { set.samples[$0] }
    let bar = ProgressReporter("PSL+ masks", total: mine.count, unit: "images", options: progress)
    var outside = 0, changed = 0, pixels = 0
    for sample in mine {
      defer { bar.advance() }
      try Interruption.check(stage: "PSL+ masks", detail: "the masks written so far are kept in \(out.path)")
      let target = out.appendingPathComponent("\(sample.id).png")
      if FileManager.default.fileExists(atPath: target.path) { continue }
      let rgb = try dataset.image(sample.id).converted(toChannels: 3)
      let p = inference.probabilities(rgb)
      let argmax = ConfidenceWeighting.argmax(p.probabilities, labels: p.labels)
      var labels = try refinement.refine?(rgb, p.probabilities, p.labels) ?? argmax
      if config.plusUncertain == .crfChanged {
        let (kept, count) = ignoreChanged(labels, from: argmax)
        labels = kept
        changed += count
      }
      let (mask, removed) = restrict(LabelMap(width: rgb.width, height: rgb.height, labels: labels), to: sample.labels)
      outside += removed
      pixels += mask.labels.count
      try mask.write(to: target)
    }
    bar.finish()
    if communicator.isDistributed {
      let sums = communicator.allreduceSum([Double(outside), Double(changed), Double(pixels)])
      (outside, changed, pixels) = (Int(sums[0]), Int(sums[1]), Int(sums[2]))
    }
    guard communicator.isRoot else {
      communicator.barrier()
      return out
    }
    defer { communicator.barrier() }
    let total = Double(max(pixels, 1))
    var notes = ["outside_label_fraction": "\(Double(outside) / total)",
                 "rule": "labels outside {0} and the image's classes become 255"]
    if config.plusUncertain == .crfChanged {
      notes["changed_fraction"] = "\(Double(changed) / total)"
      notes["rule"]! += "; pixels whose refined label differs from the network's argmax become 255"
    }
    try StageManifest(stage: "psl-plus-masks", parameters: parameters, inputs: [round.checkpoint.path], startedAt: started,
                      notes: notes).write(to: out)
    log(String(format: "train-seg: PSL+ masks in %@ (%.2f%% of pixels predicted a class the image does not have -> 255)",
               out.path, 100 * Double(outside) / total)
        + (config.plusUncertain == .crfChanged
           ? String(format: " (%.2f%% changed by the refinement -> 255)", 100 * Double(changed) / total) : ""))
    return out
  }

  /// When the stage in `directory` finished, from its manifest ("" when it has none): a
  /// derived artefact records it so that a retrained source is noticed, and a copied run
  /// directory (new file times) is not mistaken for one.
  static func madeAt(_ directory: URL) -> String {
    guard let manifest = try? StageManifest.read(from: directory) else { return "" }
    return ISO8601DateFormatter().string(from: manifest.finishedAt)
  }

  /// `madeAt` of the directory holding a checkpoint.
  public static func trainedAt(_ checkpoint: URL) -> String { madeAt(checkpoint.deletingLastPathComponent()) }

  /// PSL+'s uncertain pixels: where `refined` differs from `argmax` (the network's own
  /// labels) the label becomes 255. Returns the labels and how many changed.
  public static func ignoreChanged(_ refined: [UInt8], from argmax: [UInt8]) -> ([UInt8], Int) {
    precondition(refined.count == argmax.count, "ignoreChanged: \(refined.count) refined labels, \(argmax.count) argmax labels")
    var out = refined
    var count = 0
    for i in 0..<out.count where out[i] != argmax[i] {
      out[i] = LabelMap.ignore
      count += 1
    }
    return (out, count)
  }

  /// Labels other than 0 and the image's classes (0-based `labels`, mask values c + 1)
  /// become 255. Returns the mask and how many pixels changed.
  public static func restrict(_ map: LabelMap, to labels: [Int]) -> (LabelMap, Int) {
    var allowed = [Bool](repeating: false, count: 256)
    allowed[0] = true
    allowed[Int(LabelMap.ignore)] = true
    for c in labels where c + 1 < 255 { allowed[c + 1] = true }
    var out = map
    var changed = 0
    out.withUnsafeMutableLabels { l in
      for i in 0..<l.count where !allowed[Int(l[i])] {
        l[i] = LabelMap.ignore
        changed += 1
      }
    }
    return (out, changed)
  }

  static func writeLossCurve(_ curve: [SegmentationEpoch], to url: URL) throws {
    let text = ([SegmentationEpoch.csvHeader] + curve.map(\.csvRow)).joined(separator: "\n") + "\n"
    try writeFileAtomically(Data(text.utf8), to: url)
  }

  public static func readLossCurve(_ url: URL) throws -> [SegmentationEpoch] {
    guard let text = try? String(contentsOf: url, encoding: .utf8) else {
      throw MethodError(file: url.path, problem: "cannot be read", fix: "Delete its directory to retrain that network.")
    }
    return text.split(separator: "\n").dropFirst().compactMap { SegmentationEpoch(csvRow: $0) }
  }
}
