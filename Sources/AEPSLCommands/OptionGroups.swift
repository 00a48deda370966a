import AEPSLCRF
import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import AEPSLMethod
import AEPSLPipeline
import ArgumentParser
import Foundation

// The option groups that several commands share, each declared once.

/// --threads: the oneDNN and OpenBLAS pool.
struct ThreadOptions: ParsableArguments {
  @Option(help: "Threads for oneDNN and OpenBLAS (one shared pool). Default: all cores.")
  var threads: Int = ComputeThreads.cores

  func validate() throws { try Check.atLeast(1, threads, "--threads") }

  /// Sizes the pool, line-buffers stdout, and warns when other processes already keep the
  /// cores busy.
  func apply() {
    ComputeThreads.set(threads)
    lineBufferedOutput()
    if let note = ComputeThreads.busyMachineNote(threads: threads) { FileHandle.standardError.write(Data((note + "\n").utf8)) }
  }
}

/// Options every compute-heavy command shares.
struct ComputeOptions: ParsableArguments {
  @OptionGroup var pool: ThreadOptions

  @Option(help: "Seed for initialisation, data order and dropout.")
  var seed: UInt64 = 0

  var threads: Int { pool.threads }

  func apply() { pool.apply() }
}

/// --quiet and --log-json, for every command with long loops.
struct ProgressOptions: ParsableArguments {
  @Flag(help: "Print no progress lines.")
  var quiet = false

  @Option(name: .customLong("log-json"), help: "Append one JSON object per progress report to this file.")
  var logJSON: String?

  var options: ProgressReporter.Options { .init(quiet: quiet, jsonLog: logJSON.map { URL(fileURLWithPath: $0) }) }
}

extension BadImagePolicy: ExpressibleByArgument {}

/// --on-bad-image, for the stages that read dataset images.
struct BadImageOptions: ParsableArguments {
  @Option(name: .customLong("on-bad-image"), help: """
    What to do with a missing, corrupt, truncated, too small (under 8 px a side) or too large \
    (over 64 Mi pixels) image, or (train-seg) a missing or mismatched mask: fail (stop, naming \
    the file) or skip (leave it out, count it and list it in the stage's manifest). \
    Default: fail (`run`: the config file's "onBadImage", else fail).
    """)
  var given: BadImagePolicy?

  var onBadImage: BadImagePolicy { given ?? .fail }
}

/// --shard i/K, for the per-image stages (masks, predict).
struct ShardOptions: ParsableArguments {
  @Option(help: """
    Handle only images j with j % K == i (0 <= i < K), so that K independent jobs share a stage; \
    each writes exactly the files one process would. The stage's manifest is written by the \
    last shard to finish, or by a rerun without --shard once every shard has run. Under mpirun, \
    each shard is split again across the ranks.
    """)
  var shard: String?

  func validate() throws {
    if let shard, Shard(parsing: shard) == nil {
      throw ValidationError("--shard must be i/K with 0 <= i < K, e.g. 0/4, got '\(shard)'.")
    }
  }

  var value: Shard { shard.flatMap(Shard.init(parsing:)) ?? .whole }
}

/// The dense CRF's parameters as command-line options, DeepLab's defaults (docs/METHOD.md 1.4).
struct CRFOptions: ParsableArguments {
  @Option(name: .customLong("crf-iterations"), help: "Mean-field iterations.")
  var iterations: Int = CRFParameters().iterations

  @Option(help: "Standard deviation of the Gaussian (smoothness) kernel, in pixels.")
  var gaussianSxy: Float = CRFParameters().gaussianSXY

  @Option(help: "Potts weight of the Gaussian kernel (0 leaves the kernel out).")
  var gaussianWeight: Float = CRFParameters().gaussianWeight

  @Option(help: "Spatial standard deviation of the bilateral (appearance) kernel, in pixels.")
  var bilateralSxy: Float = CRFParameters().bilateralSXY

  @Option(help: "Colour standard deviation of the bilateral kernel, in RGB levels.")
  var bilateralSrgb: Float = CRFParameters().bilateralSRGB

  @Option(help: "Potts weight of the bilateral kernel (0 leaves the kernel out).")
  var bilateralWeight: Float = CRFParameters().bilateralWeight

  @Option(help: "Probabilities are clamped to at least this before the unary -ln p.")
  var probabilityFloor: Float = CRFParameters().probabilityFloor

  @Option(help: "Gaussian kernel filter: lattice (permutohedral, as densecrf) or separable (exact blur).")
  var gaussianFilter: SpatialFilter = CRFParameters().gaussianFilter

  @Option(help: "Half-width of the separable blur, in standard deviations.")
  var truncation: Float = CRFParameters().truncation

  @Option(help: "Kernel normalisation: symmetric, before, after or none (densecrf's).")
  var normalization: KernelNormalization = CRFParameters().normalization

  @Option(name: .customLong("crf-scale-with-image"), help: """
    on: the sxy values are for an image whose longer side is --crf-reference-side and are scaled \
    to each image (sxy x longer side / reference side); off: they are pixels. Default: on for \
    the PSL+ masks (train-seg), off at test time (predict) and in crf.
    """)
  var scaleWithImage: Switch?

  @Option(name: .customLong("crf-reference-side"), help: "The longer image side, in pixels, the sxy values are given for with --crf-scale-with-image on (PASCAL VOC's 500, on which DeepLab chose them).")
  var referenceSide: Float = CRFParameters().referenceSide

  /// The parameters, with `base`'s scaling unless --crf-scale-with-image is given.
  func parameters(base: CRFParameters) -> CRFParameters {
    var p = parameters
    p.scaleWithImage = scaleWithImage?.isOn ?? base.scaleWithImage
    return p
  }

  var parameters: CRFParameters {
    var p = CRFParameters()
    p.iterations = iterations
    p.gaussianSXY = gaussianSxy
    p.gaussianWeight = gaussianWeight
    p.bilateralSXY = bilateralSxy
    p.bilateralSRGB = bilateralSrgb
    p.bilateralWeight = bilateralWeight
    p.probabilityFloor = probabilityFloor
    p.gaussianFilter = gaussianFilter
    p.truncation = truncation
    p.normalization = normalization
    p.scaleWithImage = scaleWithImage?.isOn ?? CRFParameters().scaleWithImage
    p.referenceSide = referenceSide
    return p
  }

  func validate() throws {
    do { try parameters.validate() } catch let error as CRFError { throw ValidationError(error.description) }
  }
}

extension CRFOptions {
  /// The dense CRF with these parameters as a refiner for test-time inference.
  func refinement(threads: Int) -> Refinement { .denseCRF(parameters, threads: threads) }

  /// The dense CRF that refines the first round's predictions into PSL+ masks: these
  /// parameters over `CRFParameters.plusMasks` (spatial deviations scaled to the image
  /// unless --crf-scale-with-image says otherwise).
  func plusMasksRefinement(threads: Int) -> Refinement { .denseCRF(parameters(base: .plusMasks), threads: threads) }
}

extension SpatialFilter: ExpressibleByArgument {}
extension KernelNormalization: ExpressibleByArgument {}

/// on / off for options that read better as words.
enum Switch: String, ExpressibleByArgument, CaseIterable {
  case on, off
  var isOn: Bool { self == .on }
}

/// --threads for the commands that run the dense CRF alone (its own threads, not the
/// oneDNN/OpenBLAS pool).
struct CRFThreadOptions: ParsableArguments {
  @Option(help: "Threads for the CRF. Default: all cores.")
  var threads: Int = ProcessInfo.processInfo.activeProcessorCount

  func validate() throws { try Check.atLeast(1, threads, "--threads") }
}

/// The defaults a training stage states in its --help (the values themselves live in the
/// stage's configuration and depend on the network).
protocol TrainingDefaults {
  static var help: TrainingHelp { get }
}

/// The words of the per-stage options of `TrainingOptions`.
struct TrainingHelp {
  var epochs: String
  var batchSize: String
  var learningRate: String
  var classificationLoss: String
  /// What a working resolution applies to.
  var imageSideUse: String
}

/// The options of a stage that trains a network: erase (classifiers) and train-seg.
struct TrainingOptions<Defaults: TrainingDefaults>: ParsableArguments {
  @Option(help: "Network: tiny or largefov.")
  var net = "tiny"

  @Option(name: .customLong("init"), help: "ImageNet weights for largefov: imagenet (VGG-16, downloaded once into the cache: see aepsl weights) or a VGG-16 .safetensors file (torchvision or timm keys).")
  var initWeights: String?

  @Option(help: ArgumentHelp("\(Defaults.help.epochs)"))
  var epochs: Int?

  @Option(help: ArgumentHelp("Images per batch. Default: \(Defaults.help.batchSize)."))
  var batchSize: Int?

  @Option(help: ArgumentHelp("\(Defaults.help.learningRate)"))
  var lr: Float?

  @Option(help: "Training crop size. Default: 128 for tiny, 321 for largefov.")
  var cropSize: Int?

  @Option(help: ArgumentHelp("Classification loss of the class scores: mse or bce. Default: \(Defaults.help.classificationLoss)."))
  var clsLoss: ClassificationLoss?

  @Option(help: ArgumentHelp("""
    Working resolution before \(Defaults.help.imageSideUse) (outputs come back at the image's own size): \
    crop (the longer side becomes the crop size, so a crop shows the whole image its tags describe), \
    own (each image's own size), or a number of pixels for the longer side. Default: crop.
    """))
  var imageSide: WorkingResolution?

  func validate() throws {
    try Check.network(net)
    if let epochs { try Check.atLeast(1, epochs, "--epochs") }
    if let batchSize { try Check.atLeast(1, batchSize, "--batch-size") }
    if let lr { try Check.positive(lr, "--lr") }
    if let cropSize { try Check.atLeast(16, cropSize, "--crop-size") }
  }

  /// Lays the given options over a stage's defaults. Epochs given means exactly that many,
  /// whatever the dataset's size.
  func apply(schedule: inout TrainingSchedule, batchSize: inout Int, cropSize: inout Int) {
    if let epochs {
      schedule.epochs = epochs
      schedule.minIterations = nil
    }
    if let lr { schedule.learningRate = lr }
    if let b = self.batchSize { batchSize = b }
    if let c = self.cropSize { cropSize = c }
  }
}

extension WorkingResolution: ExpressibleByArgument {
  public init?(argument: String) { self.init(text: argument) }
  public static var defaultCompletionKind: CompletionKind { .list(["crop", "own"]) }
}

// MARK: - Where a command reads and writes

/// --run of a command that reads a run another stage started.
struct RunOption: ParsableArguments {
  @Option(name: .customLong("run"), help: "Run directory.")
  var path: String

  var url: URL { URL(fileURLWithPath: path) }
}

/// --run of a command that starts a run or adds to it.
struct NewRunOption: ParsableArguments {
  @Option(name: .customLong("run"), help: "Run directory (created if missing).")
  var path: String

  var url: URL { URL(fileURLWithPath: path) }
}

/// --dataset, required.
struct DatasetOption: ParsableArguments {
  @Option(name: .customLong("dataset"), help: "Dataset in the PASCAL VOC layout.")
  var path: String

  var url: URL { URL(fileURLWithPath: path) }
}

/// --dataset of a command that reads a run: by default the erasing stage's.
struct RunDatasetOption: ParsableArguments {
  @Option(name: .customLong("dataset"), help: "Dataset in the PASCAL VOC layout. Default: the one the erasing stage used (RUN/erase/manifest.json).")
  var path: String?
}

/// --dataset and --split of the commands that label or score a split's images (predict, eval).
struct SplitOptions: ParsableArguments {
  @Option(help: "Dataset in the PASCAL VOC layout (with --split).")
  var dataset: String?

  @Option(help: "Split of --dataset (ImageSets/Segmentation/<split>.txt).")
  var split = "val"
}

/// A dataset root and a list, for the commands that look at a dataset without a run.
struct DatasetListArguments: ParsableArguments {
  @Argument(help: "Dataset root (the folder holding JPEGImages/ and Annotations/).")
  var dir: String

  @Option(help: "A split name (ImageSets/Segmentation/<split>.txt) or the path of a list file.")
  var split: String = "train"
}

/// --step of the commands that score one erasing step.
struct ErasingStepOption: ParsableArguments {
  @Option(name: .customLong("step"), help: "Erasing step to score (RUN/erase/step-N).")
  var number = 1
}

/// --json, where a command writes what it measured.
struct JSONOutputOption: ParsableArguments {
  @Option(name: .customLong("json"), help: "Write the results to this JSON file.")
  var path: String?
}

/// --confidence: class confidences below it are set to 0 before they weight the scores.
struct ConfidenceOption: ParsableArguments {
  @Option(help: "Class confidences below this are set to 0 when predicting (PSL+ predicts the training set with it); the paper's 0.1.")
  var confidence: Float = 0.1

  func validate() throws { try Check.fraction(confidence, "--confidence") }
}
