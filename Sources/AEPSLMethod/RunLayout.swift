import AEPSLFiles
import Foundation

/// The segmenters a run can train, each in RUN/seg/<rawValue>/ (docs/METHOD.md 1.3).
public enum ModelVariant: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
  /// PSL on the AE pseudo masks: the method's first round.
  case psl
  /// PSL+, the second round on the first's CRF-refined predictions of the training set.
  case pslPlus = "psl-plus"
  /// Plain DeepLab on the AE masks (the PSL ablation).
  case deeplab
  /// Plain DeepLab on the training split's ground truth: the fully supervised upper bound.
  case full
  /// PSL on the ground truth.
  case fullPSL = "full-psl"

  /// The variant named `name` (as `--model` or a directory gives it), or an error listing them.
  public init(parsing name: String) throws {
    guard let variant = ModelVariant(rawValue: name) else {
      throw AEPSLError(file: name, problem: "is not a model variant",
                        fix: "Use one of: \(ModelVariant.allCases.map(\.rawValue).joined(separator: ", ")).")
    }
    self = variant
  }

  public var description: String { rawValue }

  /// Trained on ground truth: shown apart and never chosen without being asked for.
  public var isUpperBound: Bool { self == .full || self == .fullPSL }
}

/// Where a run directory keeps each stage's files: the one description every target that
/// reads or writes a run uses (`aepsl run`, the stage commands, prediction, the report).
///
///     RUN/config.json              the resolved configuration (`aepsl run`)
///     RUN/dataset/                 the embedded synthetic dataset, when none is given
///     RUN/erase/                   EraseLayout: configuration, steps, CAMs, erased regions
///     RUN/masks/, masks-cam-only/  AE pseudo masks; the CAM-only baseline's
///     RUN/seg/<variant>/           SegmentationLayout: a trained segmenter per ModelVariant
///     RUN/predict/                 the final model's predictions on the evaluation split
///     RUN/predictions/<variant>/   every scored model's predictions on the evaluation split
///     RUN/predictions-test/<variant>/  the same on the held-out test split, when the dataset lists one
///     RUN/metrics/<name>.json      scores (cam, ae-masks, predict, per variant, test-<variant>)
///     RUN/warnings.json            what went wrong in a way the scores alone do not say
///     RUN/report/index.html        the HTML report
public struct RunLayout: Sendable {
  public let root: URL

  public init(run: URL) { root = run }

  public var configFile: URL { root.appendingPathComponent("config.json") }
  public var synthDataset: URL { root.appendingPathComponent("dataset", isDirectory: true) }
  public var erase: EraseLayout { EraseLayout(run: root) }
  public var masks: URL { root.appendingPathComponent("masks", isDirectory: true) }
  public var camOnlyMasks: URL { root.appendingPathComponent("masks-cam-only", isDirectory: true) }
  public var segmentation: SegmentationLayout { SegmentationLayout(run: root) }
  public var predict: URL { root.appendingPathComponent("predict", isDirectory: true) }
  public var predictionsRoot: URL { root.appendingPathComponent("predictions", isDirectory: true) }
  public func predictions(_ variant: ModelVariant) -> URL { predictionsRoot.appendingPathComponent(variant.rawValue, isDirectory: true) }
  /// Every scored model's predictions on the held-out test split (`predict.testSplit`).
  public var testPredictionsRoot: URL { root.appendingPathComponent("predictions-test", isDirectory: true) }
  public func testPredictions(_ variant: ModelVariant) -> URL {
    testPredictionsRoot.appendingPathComponent(variant.rawValue, isDirectory: true)
  }
  public var metrics: URL { root.appendingPathComponent("metrics", isDirectory: true) }
  /// RUN/metrics/<name>.json: a `MetricsName`'s scores.
  public func metricsFile(_ name: MetricsName) -> URL { metrics.appendingPathComponent("\(name.rawValue).json") }
  /// The run's warnings (`RunWarnings`): a JSON list the console, the summary and the report show.
  public var warningsFile: URL { root.appendingPathComponent("warnings.json") }
  public var report: URL { root.appendingPathComponent("report", isDirectory: true) }
  public var reportPage: URL { report.appendingPathComponent("index.html") }
}

/// What a metrics file scores: the CAM-only masks, the AE masks, the final predictions, or
/// one model variant's predictions on the evaluation split (val, where defaults are chosen)
/// or on the held-out test split (where results are reported).
public enum MetricsName: Hashable, Sendable {
  case camOnly, aeMasks, predict
  case model(ModelVariant)
  case test(ModelVariant)

  public var rawValue: String {
    switch self {
    case .camOnly: return "cam"
    case .aeMasks: return "ae-masks"
    case .predict: return "predict"
    case .model(let v): return v.rawValue
    case .test(let v): return "test-\(v.rawValue)"
    }
  }
}

/// Files of the erasing stage inside a run directory.
public struct EraseLayout: Sendable {
  public let root: URL
  public init(run: URL) { root = run.appendingPathComponent("erase", isDirectory: true) }
  public func step(_ t: Int) -> URL { root.appendingPathComponent("step-\(t)", isDirectory: true) }
  public func checkpoint(_ t: Int) -> URL { step(t).appendingPathComponent("classifier.safetensors") }
  public func lossCurve(_ t: Int) -> URL { step(t).appendingPathComponent("loss.csv") }
  /// [labels, H, W] Float32, one map per label of the image in ascending class order.
  public func cam(_ t: Int, _ id: String) -> URL { step(t).appendingPathComponent("cams/\(id).npy") }
  /// Cumulative erased region after step t: a palette PNG, 1 erased, 0 kept.
  public func erased(_ t: Int, _ id: String) -> URL { step(t).appendingPathComponent("erased/\(id).png") }
  public var meanPixelFile: URL { root.appendingPathComponent("mean_pixel.json") }
  /// The images the check before training left out (`--on-bad-image skip`), with reasons.
  public var skippedImagesFile: URL { root.appendingPathComponent("skipped_images.json") }
  /// The configuration erasing began with (JSON of `EraseConfiguration`, the dataset as an
  /// absolute path): later stages read the dataset and the rule from it, and a rerun with
  /// other settings is refused.
  public var configurationFile: URL { root.appendingPathComponent("configuration.json") }
  /// The resumable state of step t's classifier while it trains; removed once
  /// classifier.safetensors is written.
  public func trainingState(_ t: Int) -> URL { step(t).appendingPathComponent("training-state.safetensors") }
}

/// Files of the segmentation stage inside a run directory: RUN/seg/<variant>/ per trained
/// network, each its own resumable stage.
public struct SegmentationLayout: Sendable {
  public let root: URL
  public init(run: URL) { root = run.appendingPathComponent("seg", isDirectory: true) }
  public func directory(_ variant: ModelVariant) -> URL { root.appendingPathComponent(variant.rawValue, isDirectory: true) }
  /// The trained network (parameters and batch-norm statistics), written when training ends.
  public func checkpoint(_ variant: ModelVariant) -> URL { directory(variant).appendingPathComponent("segmenter.safetensors") }
  /// Per epoch: total loss and each term.
  public func lossCurve(_ variant: ModelVariant) -> URL { directory(variant).appendingPathComponent("loss.csv") }
  /// Training state after the last finished epoch (with momentum), for resuming; removed
  /// once the variant is done.
  public func trainingState(_ variant: ModelVariant) -> URL { directory(variant).appendingPathComponent("training-state.safetensors") }
  /// PSL+ masks: the first round's CRF-refined predictions of the training set.
  public var plusMasks: URL { root.appendingPathComponent("psl-plus-masks", isDirectory: true) }
}
