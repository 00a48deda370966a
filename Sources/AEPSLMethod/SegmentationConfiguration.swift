import AEPSLData
import AEPSLEngine
import Foundation

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
  /// The same initialisation as the first round (docs/METHOD.md 1.3: retrain).
  case same
  /// The first round's trained network (fine-tune it on the refined masks).
  case firstRound = "first-round"
}

/// Which pixels of the PSL+ masks are left at 255 (ignore) besides those labelled with a
/// class the image does not have.
public enum PlusUncertainPixels: String, Sendable, Codable, CaseIterable {
  /// None: every pixel keeps the refined label (docs/METHOD.md 1.3 as the paper states it).
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

/// Everything the segmentation stage depends on (docs/METHOD.md 1.3).
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
  /// Every round trains for at least this many updates per class (nil: the schedule's
  /// `minIterations` alone). `tiny`: 300, so the demo's 6 classes keep their 1,800 and 20
  /// classes get 6,000: with 1,800 the classification branch of a segmenter trained from
  /// scratch had not learned 20 classes, its low confidences made the online mask call the
  /// image's own objects background, and PSL fell well under plain DeepLab on the same
  /// masks (RESULTS.md, "A classification branch that learns"). The bound trains as long.
  public var minIterationsPerClass: Int?
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
  /// PSL+: the second round's epochs, exactly (no minimum of updates); nil: the first round's
  /// schedule. A second round that starts from the first round's network is a fine-tune and
  /// may need fewer updates than one trained from the start.
  public var plusEpochs: Int?
  /// PSL+: which pixels of the refined predictions are left at 255 (`keep`: none, measured
  /// better; see `PlusUncertainPixels.crfChanged`).
  public var plusUncertain = PlusUncertainPixels.keep
  public var seed: UInt64 = 0
  /// A training image or pseudo mask that cannot be used (missing, corrupt, of another
  /// size, holding labels that are no class): stop (`fail`) or leave the image out (`skip`).
  public var onBadImage = BadImagePolicy.fail
  /// The working resolution (`EraseConfiguration.imageSide`): images are resized to it before
  /// training crops are taken; the checkpoint records it in pixels, and prediction resizes
  /// to it and back.
  public var imageSide = WorkingResolution.crop
  /// The working resolution's longer side in pixels (nil: each image's own size).
  public var workingSide: Int? { imageSide.longerSide(crop: cropSize) }

  public init(net: String = "tiny", supervision: Supervision = .weak, psl: Bool? = nil) {
    self.net = net
    self.supervision = supervision
    // The upper bound is plain DeepLab on ground truth unless asked otherwise.
    self.psl = psl ?? (supervision == .weak)
    // tiny: at least 1,800 updates (36 epochs of the 800 synthetic images): trained from
    // scratch, a segmenter learns the background first and small or downscaled objects last,
    // and 600 left the fully supervised bound under the weak models (RESULTS.md, "Segmenters
    // that finish learning").
    (schedule, batchSize, cropSize, minScale, maxScale) = NetworkTrainingDefaults(
      net: net, largefov: TrainingSchedule(epochs: 20, learningRate: 0.001),
      tiny: TrainingSchedule(epochs: 12, learningRate: 0.05, weightDecay: 1e-4, minIterations: 1800), tinyBatchSize: 16).fields
    minIterationsPerClass = net == "largefov" ? nil : 300
  }

  /// The schedule of every round on `classes` classes: at least `minIterations` updates and
  /// `minIterationsPerClass` per class, unless the epochs were given exactly.
  public func schedule(classes: Int) -> TrainingSchedule {
    schedule.withMinimum(perClass: minIterationsPerClass, classes: classes)
  }

  var spec: BackboneSpec? { BackboneSpec.named(net) }

  /// The directory name of the first round: psl, deeplab (PSL off), full (ground truth),
  /// full-psl.
  public var firstVariant: ModelVariant {
    switch (supervision, psl) {
    case (.weak, true): return .psl
    case (.weak, false): return .deeplab
    case (.full, false): return .full
    case (.full, true): return .fullPSL
    }
  }
}

