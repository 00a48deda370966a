import AEPSLCRF
import AEPSLData
import AEPSLFiles
import AEPSLMethod
import Foundation

/// The predict section of `aepsl run`: which model predicts the evaluation split into
/// RUN/predict, how (docs/METHOD.md 1.4), and on which splits every model is scored: the
/// evaluation split (val), where defaults are chosen, and the held-out test split, where
/// results are reported.
public struct PredictSettings: Codable, Sendable, Equatable {
  /// The segmenter whose predictions go to RUN/predict: psl-plus (psl when PSL+ is off) or
  /// psl; every trained one is scored anyway. psl-plus since its masks come from the CRF
  /// scaled to the image (`plusCRF`): measured with `tiny` on the synthetic set it scores
  /// higher than PSL on three seeds (RESULTS.md).
  public var finalModel = ModelVariant.pslPlus
  /// Confidences below this are set to 0 (the paper's p = 0.1).
  public var confidence: Float = 0.1
  /// The dense CRF at test time (DeepLab's: spatial deviations in pixels).
  public var crf = CRFParameters()
  /// The split predicted and scored, where defaults are chosen.
  public var split = "val"
  /// The held-out split every scored model is also predicted and scored on, when the
  /// dataset lists it (ImageSets/Segmentation/<testSplit>.txt); null: none.
  public var testSplit: String? = "test"

  public init() {}
}

/// Every option of every stage of `aepsl run`, as one JSON document. A config file need only
/// name what it changes: it is laid over the defaults for its network, and a key the
/// defaults do not have is an error (a typo must not be ignored silently).
public struct RunConfiguration: Codable, Sendable, Equatable {
  /// Dataset in the VOC layout; nil: the embedded synthetic dataset, written to RUN/dataset.
  public var dataset: String?
  /// The network of both the erasing classifiers and the segmenter: tiny or largefov.
  public var net: String
  public var seed: UInt64
  /// The synthetic dataset's generator, when `dataset` is nil: the demo's train and val
  /// images, and 200 test images numbered after them (they change no train or val file), so
  /// that the run reports on images no default was chosen on.
  public var synth: SyntheticDataset.Configuration
  public var erase: EraseConfiguration
  public var masks: MaskConfiguration
  public var segmentation: SegmentationConfiguration
  /// Also train on the training split's ground-truth masks: the fully supervised upper
  /// bound the weak result is measured against (the one stage that reads training masks).
  /// Left out (with a message) when a training image has no ground-truth mask.
  public var upperBound: Bool
  /// Also train plain DeepLab on the AE masks (the PSL ablation).
  public var ablation: Bool
  /// Prediction on the evaluation split and the test-time CRF.
  public var predict: PredictSettings
  /// The dense CRF that turns the first round's predictions of the training set into PSL+
  /// masks (`CRFParameters.plusMasks`: DeepLab's, scaled to the image).
  public var plusCRF: CRFParameters
  /// Both CRFs on (off: argmax for the PSL+ masks and at test time).
  public var useCRF: Bool
  /// Sample images per section of the HTML report.
  public var reportSamples: Int
  /// What every stage does with an image it cannot use: fail or skip (and list it). Copied
  /// into the erase, masks and segmentation sections unless they set their own; prediction
  /// on `predict.split` follows it, and evaluation leaves skipped images out.
  public var onBadImage: BadImagePolicy
  /// The working resolution of both networks (`WorkingResolution`: "crop", "own" or pixels).
  /// Copied into the erase and segmentation sections unless they set their own.
  public var imageSide = WorkingResolution.crop

  public init(net: String = "tiny", dataset: String? = nil) {
    self.dataset = dataset
    self.net = net
    seed = 0
    synth = .init(testCount: 200)
    erase = EraseConfiguration(dataset: dataset ?? "", net: net)
    masks = MaskConfiguration()
    segmentation = SegmentationConfiguration(net: net)
    segmentation.pslPlus = true
    upperBound = true
    ablation = false
    predict = PredictSettings()
    plusCRF = .plusMasks
    useCRF = true
    reportSamples = 6
    onBadImage = .fail
  }

  /// What the command line sets over a config file: each value, when given, wins over the
  /// file and over every section's own (nil: the file's, else the default).
  public struct CommandLineOptions: Sendable, Equatable {
    public var net: String?
    public var dataset: String?
    public var seed: UInt64?
    public var imageSide: WorkingResolution?
    public var onBadImage: BadImagePolicy?

    public init(net: String? = nil, dataset: String? = nil, seed: UInt64? = nil, imageSide: WorkingResolution? = nil,
                onBadImage: BadImagePolicy? = nil) {
      (self.net, self.dataset, self.seed, self.imageSide, self.onBadImage) = (net, dataset, seed, imageSide, onBadImage)
    }
  }

  /// The defaults for `net`, with the JSON object `overrides` laid over them section by
  /// section (`file` names the source in errors), then the command line over both: the one
  /// place the configuration is resolved and copied down into the sections.
  public static func resolve(overrides: Data?, file: String, commandLine: CommandLineOptions) throws -> RunConfiguration {
    var config = try resolve(overrides: overrides, file: file, net: commandLine.net, dataset: commandLine.dataset)
    if let seed = commandLine.seed {
      (config.seed, config.erase.seed, config.segmentation.seed) = (seed, seed, seed)
    }
    if let side = commandLine.imageSide {
      (config.imageSide, config.erase.imageSide, config.segmentation.imageSide) = (side, side, side)
    }
    if let policy = commandLine.onBadImage {
      config.onBadImage = policy
      (config.erase.onBadImage, config.masks.onBadImage, config.segmentation.onBadImage) = (policy, policy, policy)
    }
    if let dataset = config.dataset { config.dataset = absolutePath(dataset) }
    return config
  }

  /// The defaults for `net`, with the JSON object `overrides` laid over them section by
  /// section (`file` names the source in errors).
  public static func resolve(overrides: Data?, file: String, net: String?, dataset: String?) throws -> RunConfiguration {
    var object: [String: Any] = [:]
    if let overrides {
      guard let parsed = try? JSONSerialization.jsonObject(with: overrides) as? [String: Any] else {
        throw AEPSLError(file: file, problem: "is not a JSON object", fix: "Write the options as {\"erase\": {\"maxSteps\": 3}, ...}.")
      }
      object = parsed
    }
    // The network picks the defaults of every section, so it is read first.
    let chosenNet = net ?? (object["net"] as? String) ?? "tiny"
    let defaults = RunConfiguration(net: chosenNet, dataset: nil)
    var base = try JSONSerialization.jsonObject(with: JSONEncoder().encode(defaults)) as! [String: Any]
    try checkKeys(object, against: Mirror(reflecting: defaults), path: "", file: file)
    base = merge(base, object)
    if let net { base["net"] = net }
    if let dataset { base["dataset"] = dataset }
    var config: RunConfiguration
    do {
      config = try JSONDecoder().decode(RunConfiguration.self, from: JSONSerialization.data(withJSONObject: base))
    } catch {
      throw AEPSLError(file: file, problem: "has a value of the wrong type (\(describe(error)))",
                          fix: "Compare it with RUN/config.json of a run made without --config.")
    }
    // One seed, one network and one bad-image policy for every stage unless a section says otherwise.
    let eraseSection = object["erase"] as? [String: Any] ?? [:]
    let segSection = object["segmentation"] as? [String: Any] ?? [:]
    if eraseSection["seed"] == nil { config.erase.seed = config.seed }
    if segSection["seed"] == nil { config.segmentation.seed = config.seed }
    if eraseSection["net"] == nil { config.erase.net = config.net }
    if segSection["net"] == nil { config.segmentation.net = config.net }
    let masksSection = object["masks"] as? [String: Any] ?? [:]
    if eraseSection["onBadImage"] == nil { config.erase.onBadImage = config.onBadImage }
    if masksSection["onBadImage"] == nil { config.masks.onBadImage = config.onBadImage }
    if segSection["onBadImage"] == nil { config.segmentation.onBadImage = config.onBadImage }
    // A section that names its epochs gets exactly that many (as --epochs does), unless it
    // also names a minimum of iterations.
    for (section, keyPath) in [(eraseSection, \RunConfiguration.erase.schedule), (segSection, \RunConfiguration.segmentation.schedule)] {
      if let schedule = section["schedule"] as? [String: Any], schedule["epochs"] != nil, schedule["minIterations"] == nil {
        config[keyPath: keyPath].minIterations = nil
      }
    }
    if eraseSection["imageSide"] == nil { config.erase.imageSide = config.imageSide }
    if segSection["imageSide"] == nil { config.segmentation.imageSide = config.imageSide }
    do { try config.masks.check() } catch let error as AEPSLError { throw error.attributed(to: URL(fileURLWithPath: file)) }
    return config
  }

  /// Rejects keys that no field has, naming the key's path.
  static func checkKeys(_ object: [String: Any], against mirror: Mirror, path: String, file: String) throws {
    var fields: [String: Mirror] = [:]
    for child in mirror.children {
      guard let label = child.label else { continue }
      fields[label] = Mirror(reflecting: child.value)
    }
    for (key, value) in object {
      guard let field = fields[key] else {
        throw AEPSLError(file: file, problem: "has an unknown option '\(path)\(key)'",
                            fix: "Known here: \(fields.keys.sorted().joined(separator: ", ")).")
      }
      // Nested sections (structs) are checked too; optionals and enums are leaves.
      if let nested = value as? [String: Any], field.displayStyle == .struct {
        try checkKeys(nested, against: field, path: "\(path)\(key).", file: file)
      }
    }
  }

  static func merge(_ base: [String: Any], _ overlay: [String: Any]) -> [String: Any] {
    var out = base
    for (key, value) in overlay {
      if let nested = value as? [String: Any], let old = base[key] as? [String: Any] {
        out[key] = merge(old, nested)
      } else {
        out[key] = value
      }
    }
    return out
  }

  static func describe(_ error: Error) -> String {
    switch error {
    case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c), DecodingError.dataCorrupted(let c):
      return "at \(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
    case DecodingError.keyNotFound(let key, _):
      return "missing \(key.stringValue)"
    default:
      return "\(error)"
    }
  }

  /// The JSON written to RUN/config.json: sorted keys, so that runs can be compared with diff.
  public func encoded() throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return try encoder.encode(self)
  }
}
