import AEPSLData
import AEPSLEngine
import Foundation

/// Everything the adversarial-erasing stage depends on (docs/METHOD.md 1.1). Written to the
/// stage's manifest; a run's config.json can set each field.
public struct EraseConfiguration: Sendable, Codable, Equatable {
  public var dataset: String
  public var split = "train"
  public var net = "tiny"
  /// ImageNet weights for `largefov`: "imagenet" (downloaded once, `PretrainedWeights`) or a
  /// VGG-16 .safetensors file; convolutions and fc6/fc7 as DeepLab built them (`VGG16Import`).
  public var initWeights: String?
  public var maxSteps = 4
  public var rule = ErasingRule.maxRatio
  public var delta: Float = 0.2
  /// Which parts of a later step's regions are erased and mined (`LaterRegions`): `touching`,
  /// since the paper's `all` mines background clutter at later steps (RESULTS.md, "Later
  /// steps' regions"; measured with `tiny` only).
  public var laterRegions = LaterRegions.touching
  /// The paper's stopping rule, used when `stopChanceFraction` is nil: a step whose
  /// final-epoch loss exceeds this times step 1's did not converge, erasing stops and the
  /// steps before it are merged. The paper gives no number (RESULTS.md: how 1.3 was chosen).
  public var stopRatio: Float = 1.3
  /// The stopping rule: each step's final loss is compared with the loss of answering every
  /// class's training frequency regardless of the image (`RunDiagnostics
  /// .constantPredictorLoss`), not with step 1's, which cannot judge when step 1 learned
  /// little or very well. A step whose final loss exceeds this share of it found no evidence
  /// left, and erasing stops (nil: `stopRatio`; RESULTS.md: how 0.88 was chosen).
  public var stopChanceFraction: Float? = 0.88
  /// bce for `tiny` (a network trained from scratch learns its tags with it and Adam where the
  /// paper's mse and SGD did not: RESULTS.md, "Classifiers that learn"); mse for `largefov`.
  public var loss: ClassificationLoss
  public var schedule: TrainingSchedule
  /// The classifiers train for at least this many updates per class (nil: the schedule's
  /// `minIterations` alone): each class needs about as many updates to be told apart from the
  /// others, so a dataset of 20 classes trains longer than the demo's 6.
  public var minIterationsPerClass: Int?
  public var batchSize: Int
  /// Training crops are this square size (padded with the mean pixel when smaller).
  public var cropSize: Int
  public var minScale: Float
  public var maxScale: Float
  /// The scales (of the working resolution) whose CAMs are averaged, and whether the
  /// horizontally flipped image's are too. `tiny`: 0.5, 1, 1.5 and 2 with flips, as CAM
  /// codebases do: its regions are more precise and PSL+ was better on val (RESULTS.md,
  /// "CAMs from several scales"); `largefov`: 1 without flips (not measured, and at VOC's
  /// size fifteen times the pixels would make the CAMs a large share of the run).
  public var camScales: [Float]
  /// The working resolution of training crops and CAMs (CAMs come back at the image's own
  /// size): by default the crop size, so that a crop shows the whole image its tags describe.
  public var imageSide = WorkingResolution.crop
  /// The working resolution's longer side in pixels (nil: each image's own size).
  public var workingSide: Int? { imageSide.longerSide(crop: cropSize) }
  public var camFlip: Bool
  public var seed: UInt64 = 0
  /// A missing, corrupt, too small or too large training image stops the stage (`fail`) or
  /// is left out and listed in the manifest and in erase/skipped_images.json (`skip`).
  public var onBadImage = BadImagePolicy.fail

  /// Defaults by network: `tiny` trains from scratch on small images, `largefov` fine-tunes
  /// ImageNet weights on DeepLab's 321x321 crops.
  public init(dataset: String, net: String = "tiny") {
    self.dataset = dataset
    self.net = net
    // tiny: at least 200 updates (8 epochs of the 800 synthetic images; RESULTS.md: CAM-only
    // masks on 400 images after 8 epochs and after 200 updates), and 33 per class (the demo's
    // 6 classes keep their 200), with Adam.
    var tiny = TrainingSchedule(epochs: 8, learningRate: 0.001, weightDecay: 1e-4, minIterations: 200)
    tiny.optimizer = .adam
    (schedule, batchSize, cropSize, minScale, maxScale) = NetworkTrainingDefaults(
      net: net, largefov: TrainingSchedule(epochs: 5, learningRate: 0.001), tiny: tiny, tinyBatchSize: 32).fields
    (loss, minIterationsPerClass) = net == "largefov" ? (.mse, nil) : (.bce, 33)
    (camScales, camFlip) = net == "largefov" ? ([1], false) : ([0.5, 1, 1.5, 2], true)
  }

  /// The schedule a step trains with on `classes` classes and `batchesPerEpoch` batches: at
  /// least `minIterations`, and `minIterationsPerClass` per class, when the epochs were not
  /// given exactly (`minIterations` nil).
  public func schedule(classes: Int, batchesPerEpoch: Int) -> TrainingSchedule {
    schedule.withMinimum(perClass: minIterationsPerClass, classes: classes).resolved(batchesPerEpoch: batchesPerEpoch)
  }

  var spec: BackboneSpec? { BackboneSpec.named(net) }

  /// An image's regions step by step under this rule, delta and `laterRegions`, with a reach
  /// of one CAM cell at the working resolution.
  public func stepRegions(labels: Int, width: Int, height: Int) -> StepRegions {
    let scale = Augmentation.workingScale(longerSide: workingSide, width: width, height: height)
    return StepRegions(labels: labels, width: width, height: height, rule: rule, delta: delta, later: laterRegions,
                       reach: StepRegions.cell(outputStride: spec?.outputStride ?? 8, workingScale: scale))
  }

  /// A rendering of every field for the manifest and for comparing settings. Nested values
  /// are JSON with sorted keys: a dictionary's own order changes from process to process.
  var parameterTable: [String: String] {
    guard let data = try? JSONEncoder().encode(self),
          let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
    // Nested values (the schedule, the CAM scales) as sorted JSON: the same settings give
    // the same text in every process.
    return object.mapValues { value in
      guard value is [String: Any] || value is [Any],
            let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) else { return "\(value)" }
      return String(decoding: data, as: UTF8.self)
    }
  }
}


