import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import AEPSLMethod
import ArgumentParser
import Foundation

extension ErasingRule: ExpressibleByArgument {}
extension ClassificationLoss: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}

/// --quiet and --log-json, for every command with long loops.
struct ProgressOptions: ParsableArguments {
  @Flag(help: "Print no progress lines.")
  var quiet = false

  @Option(name: .customLong("log-json"), help: "Append one JSON object per progress report to this file.")
  var logJSON: String?

  var options: ProgressReporter.Options { .init(quiet: quiet, jsonLog: logJSON.map { URL(fileURLWithPath: $0) }) }
}

struct EraseCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "erase",
    abstract: "Adversarial erasing: train classifiers in turn on ever more erased images and mine object regions.",
    discussion: """
      Each step trains a fresh classifier (same initialisation as step 1) on the current images, \
      computes the class activation map of every labelled class of every training image, erases the \
      discriminative region (sets it to the training set's mean pixel) and records the loss curve. \
      A step whose final loss exceeds --stop-ratio times step 1's did not converge: erasing stops \
      and the steps before it are merged. Writes RUN/erase/step-N/{classifier.safetensors, loss.csv, \
      cams/<id>.npy, erased/<id>.png, manifest.json} and RUN/erase/manifest.json. Finished steps are \
      never redone. Next: aepsl masks --run RUN
      """)

  @Option(help: "Dataset in the PASCAL VOC layout.")
  var dataset: String

  @Option(name: .customLong("run"), help: "Run directory (created if missing).")
  var runDirectory: String

  @Option(help: "Split (ImageSets/Segmentation/<split>.txt) to mine.")
  var split = "train"

  @Option(help: "Network: tiny or largefov.")
  var net = "tiny"

  @Option(name: .customLong("init"), help: "torchvision VGG-16 weights (.safetensors) for largefov.")
  var initWeights: String?

  @Option(help: "Most erasing steps.")
  var maxSteps = 4

  @Option(help: "How a CAM becomes the region to erase: max-ratio (CAM >= (1 - delta) x max) or top-fraction.")
  var eraseRule = ErasingRule.maxRatio

  @Option(help: "delta of the erasing rule.")
  var delta: Float = 0.2

  @Option(help: "A step whose final-epoch loss exceeds this times step 1's stops erasing (RESULTS.md: how the default was chosen).")
  var stopRatio: Float = EraseConfiguration(dataset: "").stopRatio

  @Option(help: "Epochs per step, exactly. Default: 8 for tiny, or more on a small dataset to make at least 200 updates; 5 for largefov.")
  var epochs: Int?

  @Option(help: "Images per batch. Default: 32 for tiny, 4 for largefov.")
  var batchSize: Int?

  @Option(help: "Base learning rate (poly decay). Default: 0.1 for tiny, 0.001 for largefov.")
  var lr: Float?

  @Option(help: "Training crop size. Default: 128 for tiny, 321 for largefov.")
  var cropSize: Int?

  @Option(help: "Classification loss: mse (the paper's) or bce.")
  var clsLoss = ClassificationLoss.mse

  @Option(help: "Optimizer of the classifiers: sgd or adam (with --lr, e.g. 0.001).")
  var optimizer = OptimizerKind.sgd

  @Option(help: "Comma-separated scales whose CAMs are averaged, e.g. 0.75,1,1.25.")
  var camScales = "1"

  @Flag(help: "Also average the CAMs of horizontally flipped images.")
  var camFlip = false

  @Option(help: """
    Working resolution: resize every image so that its longer side is this many pixels before \
    training crops, CAMs and predictions (outputs come back at the image's own size). Default: \
    each image's own size. Use it when images are much larger than the crop size.
    """)
  var imageSide: Int?

  @OptionGroup var badImages: BadImageOptions
  @OptionGroup var compute: ComputeOptions
  @OptionGroup var progress: ProgressOptions

  func validate() throws {
    guard BackboneSpec.named(net) != nil else { throw ValidationError("Unknown --net '\(net)'; choose tiny or largefov.") }
    if let imageSide, imageSide < 16 { throw ValidationError("--image-side must be at least 16, got \(imageSide).") }
    guard maxSteps >= 1 else { throw ValidationError("--max-steps must be at least 1.") }
    guard delta > 0 && delta < 1 else { throw ValidationError("--delta must be in (0, 1), got \(delta).") }
    guard stopRatio > 1 else { throw ValidationError("--stop-ratio must be above 1, got \(stopRatio).") }
    guard parsedScales != nil else { throw ValidationError("--cam-scales must be positive numbers separated by commas, got '\(camScales)'.") }
  }

  var parsedScales: [Float]? {
    let v = camScales.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
    guard !v.isEmpty, v.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
    return v.map { $0! }
  }

  var configuration: EraseConfiguration {
    var c = EraseConfiguration(dataset: dataset, net: net)
    c.split = split
    c.initWeights = initWeights
    c.maxSteps = maxSteps
    c.rule = eraseRule
    c.delta = delta
    c.stopRatio = stopRatio
    c.loss = clsLoss
    if optimizer != .sgd { c.schedule.optimizer = optimizer }
    if let epochs {
      // Epochs given: exactly that many, whatever the dataset's size.
      c.schedule.epochs = epochs
      c.schedule.minIterations = nil
    }
    if let lr { c.schedule.learningRate = lr }
    if let batchSize { c.batchSize = batchSize }
    if let cropSize { c.cropSize = cropSize }
    c.camScales = parsedScales ?? [1]
    c.camFlip = camFlip
    c.imageSide = imageSide
    c.seed = compute.seed
    c.onBadImage = badImages.onBadImage
    return c
  }

  func run() throws {
    compute.apply()
    try asJob { communicator in
      let summary = try interruptible(communicator) {
        try EraseStage.run(configuration, run: URL(fileURLWithPath: runDirectory), progress: progress.options,
                           communicator: communicator)
      }
      guard communicator.isRoot else { return }
      print("Merged steps: \(summary.mergedSteps.map(String.init).joined(separator: ", ")) (\(summary.reason))")
      print("Next: aepsl masks --run \(runDirectory)")
    }
  }
}

extension BadImagePolicy: ExpressibleByArgument {}

/// --on-bad-image, for the stages that read dataset images.
struct BadImageOptions: ParsableArguments {
  @Option(help: """
    What to do with a missing, corrupt, truncated, too small (under 8 px a side) or too large \
    (over 64 Mi pixels) image, or (train-seg) a missing or mismatched mask: fail (stop, naming \
    the file) or skip (leave it out, count it and list it in the stage's manifest).
    """)
  var onBadImage = BadImagePolicy.fail
}

/// Runs a stage with SIGINT/SIGTERM handlers installed: the stage stops at the next safe
/// point, saves its state and the process exits with 130 (SIGINT) or 143 (SIGTERM). On a
/// multi-rank job only rank 0 prints the message.
func interruptible<T>(_ communicator: Communicator = SingleProcess(), _ body: () throws -> T) throws -> T {
  Interruption.install()
  do {
    return try body()
  } catch let interrupted as InterruptedError {
    if communicator.isRoot { FileHandle.standardError.write(Data("aepsl: \(interrupted)\n".utf8)) }
    throw ExitCode(interrupted.exitCode)
  }
}
