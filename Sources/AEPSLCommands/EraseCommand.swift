import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import AEPSLMethod
import ArgumentParser
import Foundation

extension ErasingRule: ExpressibleByArgument {}
extension LaterRegions: ExpressibleByArgument {}
extension ClassificationLoss: ExpressibleByArgument {}


extension OptimizerKind: ExpressibleByArgument {}

struct EraseCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "erase",
    abstract: "Adversarial erasing: train classifiers in turn on ever more erased images and mine object regions.",
    discussion: """
      Each step trains a fresh classifier (same initialisation as step 1) on the current images, \
      computes the class activation map of every labelled class of every training image, erases the \
      discriminative region (sets it to the training set's mean pixel) and records the loss curve. \
      A step whose final loss exceeds --stop-chance-fraction of the loss of a classifier that ignores \
      the images (answering each class's training frequency) found nothing left to learn: erasing stops \
      and the steps before it are merged (--stop-ratio: the paper's rule, against step 1's loss). Writes RUN/erase/step-N/{classifier.safetensors, loss.csv, \
      cams/<id>.npy, erased/<id>.png, manifest.json} and RUN/erase/manifest.json. Finished steps are \
      never redone. Next: aepsl masks --run RUN
      """)

  @OptionGroup var dataset: DatasetOption
  @OptionGroup var runDirectory: NewRunOption

  @Option(help: "Split (ImageSets/Segmentation/<split>.txt) to mine.")
  var split = "train"

  @Option(help: "Most erasing steps.")
  var maxSteps = 4

  @Option(help: "How a CAM becomes the region to erase: max-ratio (CAM >= (1 - delta) x max) or top-fraction.")
  var eraseRule = ErasingRule.maxRatio

  @Option(help: "delta of the erasing rule.")
  var delta: Float = 0.2

  @Option(help: "Which parts of a later step's regions are erased and mined: all, or touching (only the connected parts within one CAM cell of what earlier steps mined for the same class). Default: \(EraseConfiguration(dataset: "").laterRegions.rawValue).")
  var laterRegions = EraseConfiguration(dataset: "").laterRegions

  @Option(help: "A step whose final-epoch loss exceeds this share of a constant predictor's loss stops erasing (RESULTS.md: how the default was chosen).")
  var stopChanceFraction: Float = EraseConfiguration(dataset: "").stopChanceFraction ?? 0.88

  @Option(help: "Stop by the paper's rule instead: a step whose final-epoch loss exceeds this times step 1's stops erasing (off when absent; 1.3 measured on the demo).")
  var stopRatio: Float?

  @Option(help: "Comma-separated scales of the working resolution whose CAMs are averaged. Default: 0.5,1,1.5,2 for tiny, 1 for largefov.")
  var camScales: String?

  @Flag(inversion: .prefixedNo, help: "Also average the CAMs of horizontally flipped images. Default: on for tiny, off for largefov.")
  var camFlip: Bool?

  @Option(help: "Optimizer of the classifiers: sgd or adam. Default: adam for tiny, sgd for largefov.")
  var optimizer: OptimizerKind?

  @OptionGroup var training: TrainingOptions<EraseDefaults>
  @OptionGroup var badImages: BadImageOptions
  @OptionGroup var compute: ComputeOptions
  @OptionGroup var progress: ProgressOptions

  func validate() throws {
    try Check.atLeast(1, maxSteps, "--max-steps")
    guard delta > 0 && delta < 1 else { throw ValidationError("--delta must be in (0, 1), got \(delta).") }
    if let stopRatio, !(stopRatio > 1) { throw ValidationError("--stop-ratio must be above 1, got \(stopRatio).") }
    guard stopChanceFraction > 0 && stopChanceFraction < 1 else {
      throw ValidationError("--stop-chance-fraction must be in (0, 1), got \(stopChanceFraction).")
    }
    if let camScales, parsedScales == nil {
      throw ValidationError("--cam-scales must be positive numbers separated by commas, got '\(camScales)'.")
    }
  }

  var parsedScales: [Float]? {
    guard let camScales else { return nil }
    let v = camScales.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
    guard !v.isEmpty, v.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
    return v.map { $0! }
  }

  var configuration: EraseConfiguration {
    var c = EraseConfiguration(dataset: dataset.path, net: training.net)
    c.split = split
    c.initWeights = training.initWeights
    c.maxSteps = maxSteps
    c.rule = eraseRule
    c.delta = delta
    c.laterRegions = laterRegions
    c.stopChanceFraction = stopChanceFraction
    if let stopRatio { (c.stopRatio, c.stopChanceFraction) = (stopRatio, nil) }
    if let loss = training.clsLoss { c.loss = loss }
    training.apply(schedule: &c.schedule, batchSize: &c.batchSize, cropSize: &c.cropSize)
    if let optimizer { c.schedule.optimizer = optimizer == .sgd ? nil : optimizer }
    if let scales = parsedScales { c.camScales = scales }
    if let camFlip { c.camFlip = camFlip }
    if let side = training.imageSide { c.imageSide = side }
    c.seed = compute.seed
    c.onBadImage = badImages.onBadImage
    return c
  }

  func run() throws {
    compute.apply()
    let (summary, root) = try runStage { communicator in
      try EraseStage.run(configuration, run: runDirectory.url, progress: progress.options,
                         communicator: communicator)
    }
    guard root else { return }
    print("Merged steps: \(summary.mergedSteps.map(String.init).joined(separator: ", ")) (\(summary.reason))")
    print("Next: aepsl masks --run \(runDirectory.path)")
  }
}

/// The training defaults `aepsl erase --help` states (EraseConfiguration's).
enum EraseDefaults: TrainingDefaults {
  static let help = TrainingHelp(
    epochs: "Epochs per step, exactly. Default: 8 for tiny, or more to make at least 200 updates and 33 per class; 5 for largefov.",
    batchSize: "32 for tiny, 4 for largefov", learningRate: "Base learning rate (poly decay). Default: 0.001.",
    classificationLoss: "bce for tiny, mse (the paper's) for largefov",
    imageSideUse: "training crops, CAMs and predictions")
}
