import AEPSLCRF
import AEPSLDistributed
import AEPSLEngine
import AEPSLImaging
import AEPSLMethod
import AEPSLPipeline
import ArgumentParser
import Foundation


extension Supervision: ExpressibleByArgument {}
extension PlusInitialisation: ExpressibleByArgument {}
extension PlusUncertainPixels: ExpressibleByArgument {}


/// `aepsl train-seg`: prohibitive segmentation learning (docs/METHOD.md 1.3).
struct TrainSegCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train-seg",
    abstract: "Train the segmenter on the pseudo masks: PSL, PSL+, plain DeepLab, or the fully supervised upper bound.",
    discussion: """
      The segmenter has C+1 score maps at output stride 8 and a classification branch (global \
      average pooling, linear, sigmoid) giving class confidences v. With --psl on (default) the \
      loss is cls(v, y) + CE(f, S) + CE(f, S'), where S is the pseudo mask and S' the online \
      mask: per pixel the argmax over background and the image's own classes of p' (p = \
      softmax(f), p'_0 = p_0, p'_c = v_c p_c), without gradient. Masks are sampled at the \
      score cells (nearest neighbour), as DeepLab shrinks its labels; 255 and crop padding are \
      ignored. --psl off trains plain DeepLab, CE(f, S) only; the classification branch is then \
      not trained and predict does no confidence weighting. --psl-plus then predicts the \
      training set with the trained network (confidence weighting, dense CRF with its spatial \
      deviations scaled to the image as for VOC's 500 px, see --crf-scale-with-image), turns labels \
      outside {background} and the image's classes into 255, and trains again on those \
      masks: from the same initialisation with --init (the paper), from the first round's \
      network when training from scratch (see --plus-init). --supervision full trains on the training split's \
      ground-truth masks instead: the fully supervised upper bound (RUN/seg/full).

      Defaults (DeepLab-LargeFOV's where they apply): momentum 0.9, poly decay power 0.9, \
      new layers (score layer, classification branch) at 10x/20x the base rate for \
      weights/biases with --init (1x/2x from scratch). largefov: lr 0.001, batch 4 (DeepLab \
      uses 10; 4 fits a CPU), crop 321, scales 0.5-1.5, 20 epochs, weight decay 5e-4. tiny: \
      lr 0.05, batch 16, crop 128, scales 0.75-1.25, 12 epochs but at least 1,800 updates and \
      300 per class (6,000 for 20 classes; the config's segmentation.minIterationsPerClass), \
      weight decay 1e-4 (several minutes on the synthetic set).

      Writes RUN/seg/<variant>/{segmenter.safetensors, loss.csv, manifest.json} with variant \
      psl, deeplab (--psl off), full or full-psl, and psl-plus (with RUN/seg/psl-plus-masks/). \
      Every training image and its mask are decoded once before training: a bad one (missing, \
      corrupt, of another size, with labels that are no class) stops the stage, or with \
      --on-bad-image skip is left out and listed in the manifest. \
      Each variant resumes where it stopped (after its last finished epoch, or at the batch \
      where Ctrl-C stopped it); a finished one is never redone. \
      Next: aepsl predict --run RUN --dataset DIR --split val --out DIR
      """)

  @OptionGroup var runDirectory: RunOption
  @OptionGroup var dataset: RunDatasetOption

  @Option(help: "Training split. Default: the erasing stage's, else train.")
  var split: String?

  @Option(help: "Pseudo masks <id>.png. Default: RUN/masks.")
  var masks: String?

  @Option(help: "on: PSL (online mask + classification branch); off: plain DeepLab on the masks. Default: on for weak supervision, off for full.")
  var psl: Switch?

  @Flag(name: .customLong("psl-plus"), help: "After the PSL round, retrain on its CRF-refined predictions of the training set (PSL+).")
  var pslPlus = false

  @Option(help: "weak: pseudo masks; full: the training split's ground-truth masks (upper bound).")
  var supervision = Supervision.weak

  @Option(help: "Weight decay. Default: 1e-4 for tiny, 5e-4 for largefov.")
  var weightDecay: Float?

  @Option(help: "Smallest random scale. Default: 0.75 for tiny, 0.5 for largefov.")
  var minScale: Float?

  @Option(help: "Largest random scale. Default: 1.25 for tiny, 1.5 for largefov.")
  var maxScale: Float?

  @Option(name: .customLong("head-lr-mult"), help: "Learning-rate multiplier of the new layers' weights (score layer, classification branch); biases get twice it. Default: 10 with --init, 1 from scratch.")
  var headLRMultiplier: Float?

  @Option(help: """
    PSL+: start the second round from the same initialisation as the first (same) or from the \
    first round's network (first-round). Default: same with --init, first-round from scratch \
    (a second round from a new random initialisation barely learns some classes from the \
    masks; RESULTS.md has the figures).
    """)
  var plusInit: PlusInitialisation?

  @Option(name: .customLong("plus-lr"), help: "PSL+: base learning rate of the second round. Default: the first round's (--lr).")
  var plusLR: Float?

  @Option(name: .customLong("plus-epochs"), help: """
    PSL+: epochs of the second round, exactly. Default: the first round's schedule (--epochs, \
    or tiny's 12 epochs but at least 1,800 updates and 300 per class).
    """)
  var plusEpochs: Int?

  @OptionGroup var confidence: ConfidenceOption

  @Option(help: """
    PSL+: keep every refined label, or leave at 255 (ignore) the pixels where the dense CRF \
    changed the network's label (crf-changed).
    """)
  var plusUncertain = SegmentationConfiguration(net: "tiny").plusUncertain

  @OptionGroup var training: TrainingOptions<SegmentationDefaults>
  @OptionGroup var crf: CRFOptions
  @OptionGroup var badImages: BadImageOptions
  @OptionGroup var compute: ComputeOptions
  @OptionGroup var progress: ProgressOptions

  func validate() throws {
    if let plusLR { try Check.positive(plusLR, "--plus-lr") }
    if let plusEpochs { try Check.atLeast(1, plusEpochs, "--plus-epochs") }
    if let weightDecay, weightDecay < 0 { throw ValidationError("--weight-decay must not be negative.") }
    let c = configuration
    guard c.minScale > 0 && c.minScale <= c.maxScale else {
      throw ValidationError("--min-scale must be positive and at most --max-scale (\(c.minScale) vs \(c.maxScale)).")
    }
    if pslPlus && (supervision != .weak || !c.psl) {
      throw ValidationError("--psl-plus is a second round of weakly supervised PSL: it needs --psl on and --supervision weak.")
    }
    if supervision == .full && masks != nil {
      throw ValidationError("--masks and --supervision full exclude each other (full uses the ground-truth masks).")
    }
  }

  var configuration: SegmentationConfiguration {
    var c = SegmentationConfiguration(net: training.net, supervision: supervision, psl: psl?.isOn)
    c.dataset = dataset.path
    c.split = split
    c.initWeights = training.initWeights
    c.masks = masks
    c.pslPlus = pslPlus
    if let loss = training.clsLoss { c.classificationLoss = loss }
    training.apply(schedule: &c.schedule, batchSize: &c.batchSize, cropSize: &c.cropSize)
    if let weightDecay { c.schedule.weightDecay = weightDecay }
    if let minScale { c.minScale = minScale }
    if let maxScale { c.maxScale = maxScale }
    c.headLRMultiplier = headLRMultiplier
    c.plusInit = plusInit
    c.confidenceThreshold = confidence.confidence
    c.plusUncertain = plusUncertain
    c.plusLearningRate = plusLR
    c.plusEpochs = plusEpochs
    c.seed = compute.seed
    c.onBadImage = badImages.onBadImage
    if let side = training.imageSide { c.imageSide = side }
    return c
  }

  func run() throws {
    compute.apply()
    let (rounds, root) = try runStage { communicator in
      try SegmentationStage.run(configuration, run: runDirectory.url,
                                refinement: crf.plusMasksRefinement(threads: compute.threads), progress: progress.options,
                                communicator: communicator)
    }
    // Only rank 0 of an mpirun job prints.
    guard root else { return }
    for round in rounds {
      let last = round.curve.last?.terms
      print(String(format: "%@: final loss %.4f -> %@", round.variant.rawValue, last?.total ?? .nan, round.checkpoint.path)
            + (round.variant.isUpperBound ? "  (FULLY SUPERVISED upper bound)" : ""))
    }
    let model = rounds.last?.variant ?? .psl
    print("Next: aepsl predict --run \(runDirectory.path) --model \(model) --dataset DATASET --split val --out \(runDirectory.path)/pred/\(model)")
  }
}

/// The training defaults `aepsl train-seg --help` states (SegmentationConfiguration's).
enum SegmentationDefaults: TrainingDefaults {
  static let help = TrainingHelp(
    epochs: "Epochs, exactly. Default: 12 for tiny, or more to make at least 1,800 updates and 300 per class (36 epochs of 800 images with 6 classes, 120 with 20); 20 for largefov.",
    batchSize: "16 for tiny, 4 for largefov",
    learningRate: "Base learning rate (poly decay, power 0.9). Default: 0.05 for tiny, 0.001 for largefov.",
    classificationLoss: "mse (the paper's)",
    imageSideUse: "training crops and prediction (the checkpoint records it for aepsl predict)")
}
