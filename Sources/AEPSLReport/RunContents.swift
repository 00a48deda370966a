import AEPSLData
import AEPSLMethod
import Foundation

/// One metrics file the report reads: `RUN/metrics/<name>.json`, an `EvaluationReport` as
/// `aepsl eval --json FILE` writes it (split, images, classNames, meanIoU, pixelAccuracy,
/// iou per class with background first, confusion, ...).
public struct MetricsEntry: Sendable, Equatable {
  /// The file's stem: RUN/metrics/<name>.json.
  public let name: String
  /// The row's label in the IoU table.
  public let label: String
  /// The command that writes the file.
  public let command: String
  /// The fully supervised bound: shown apart and labelled as an upper bound.
  public let isUpperBound: Bool

  /// The rows of the IoU table, in order.
  public static let rows: [MetricsEntry] = [
    MetricsEntry(name: MetricsName.camOnly.rawValue, label: "CAM only (erasing step 1)",
                 command: "aepsl masks --run RUN --steps 1 --out RUN/masks-cam, then aepsl eval --pred RUN/masks-cam --dataset DATASET --split train --json RUN/metrics/cam.json (or aepsl eval --cams RUN --json RUN/metrics/cam.json)",
                 isUpperBound: false),
    MetricsEntry(name: MetricsName.aeMasks.rawValue, label: "AE pseudo masks (merged steps)",
                 command: "aepsl eval --pred RUN/masks --dataset DATASET --split train --json RUN/metrics/ae-masks.json",
                 isUpperBound: false),
    MetricsEntry(name: ModelVariant.deeplab.rawValue, label: "DeepLab on AE masks (no PSL)",
                 command: "aepsl eval --pred PREDICTIONS --dataset DATASET --split val --json RUN/metrics/deeplab.json",
                 isUpperBound: false),
    MetricsEntry(name: ModelVariant.psl.rawValue, label: "AE-PSL (PSL)",
                 command: "aepsl eval --pred PREDICTIONS --dataset DATASET --split val --json RUN/metrics/psl.json",
                 isUpperBound: false),
    MetricsEntry(name: ModelVariant.pslPlus.rawValue, label: "AE-PSL (PSL+)",
                 command: "aepsl eval --pred PREDICTIONS --dataset DATASET --split val --json RUN/metrics/psl-plus.json",
                 isUpperBound: false),
    MetricsEntry(name: ModelVariant.full.rawValue, label: "Fully supervised (upper bound)",
                 command: "aepsl eval --pred PREDICTIONS --dataset DATASET --split val --json RUN/metrics/full.json",
                 isUpperBound: true),
  ]

  /// The evaluation of RUN/predict: `aepsl eval --pred RUN/predict ... --json RUN/metrics/predict.json`.
  public static let predict = MetricsEntry(
    name: MetricsName.predict.rawValue, label: "Final predictions (RUN/predict)",
    command: "aepsl eval --pred RUN/predict --dataset DATASET --split val --json RUN/metrics/predict.json", isUpperBound: false)

  /// The rows of the held-out split (`aepsl run` scores every segmenter on it when the dataset
  /// lists ImageSets/Segmentation/test.txt): metrics/test-<variant>.json.
  public static let testRows: [MetricsEntry] = [ModelVariant.deeplab, .psl, .pslPlus, .full].map { variant in
    let label = rows.first { $0.name == variant.rawValue }?.label ?? variant.rawValue
    let name = MetricsName.test(variant).rawValue
    return MetricsEntry(name: name, label: label,
                        command: "aepsl predict --run RUN --model \(variant) --dataset DATASET --split test --out RUN/predictions-test/\(variant), "
                          + "then aepsl eval --pred RUN/predictions-test/\(variant) --dataset DATASET --split test --json RUN/metrics/\(name).json",
                        isUpperBound: variant.isUpperBound)
  }

  /// Where the confusion matrix of the final predictions comes from: the first of these present.
  public static let finalPredictionSources: [String] = [MetricsName.predict.rawValue] + PredictStage.defaultModelOrder.map(\.rawValue)
}

/// What a stage's manifest.json says, read without assuming more than a JSON object (the
/// report reads manifests from stages written by other versions and other engineers).
struct ManifestInfo {
  /// The directory, relative to the run ("erase/step-1").
  var relativePath: String
  var stage: String?
  var version: String?
  var seconds: Double?
  var finishedAt: String?
  var parameters: [String: String] = [:]
  var notes: [String: String] = [:]
  /// Set when the file is there but unreadable.
  var problem: String?

  static func read(directory: URL, relativePath: String) -> ManifestInfo? {
    let url = directory.appendingPathComponent("manifest.json")
    guard FileManager.default.fileExists(atPath: url.path) else { return nil }
    var info = ManifestInfo(relativePath: relativePath)
    guard let data = try? Data(contentsOf: url),
          let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
      info.problem = "manifest.json is not a JSON object"
      return info
    }
    info.stage = object["stage"] as? String
    info.version = object["version"] as? String
    info.seconds = (object["seconds"] as? NSNumber)?.doubleValue
    info.finishedAt = object["finishedAt"] as? String
    info.parameters = stringTable(object["parameters"])
    info.notes = stringTable(object["notes"])
    return info
  }

  static func stringTable(_ value: Any?) -> [String: String] {
    guard let table = value as? [String: Any] else { return [:] }
    return table.mapValues(jsonText)
  }
}

/// A JSON value as one line of text (strings as they are, numbers and containers compactly).
func jsonText(_ value: Any) -> String {
  switch value {
  case let s as String: return s
  case let n as NSNumber:
    // JSONSerialization gives booleans as NSNumber too.
    if String(cString: n.objCType) == "c" { return n.boolValue ? "true" : "false" }
    return n.stringValue
  case is NSNull: return "null"
  default:
    guard JSONSerialization.isValidJSONObject(value),
          let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]),
          let text = String(data: data, encoding: .utf8) else { return "\(value)" }
    return text
  }
}

/// One erasing step's directory.
struct StepInfo {
  var number: Int
  var directory: URL
  var manifest: ManifestInfo?
  var loss: LossCurve?
  var converged: Bool? { manifest?.notes["converged"].map { $0 == "true" } }
}

/// One segmentation variant's directory, RUN/seg/<variant>.
struct SegVariant {
  var name: String
  var directory: URL
  var manifest: ManifestInfo?
  var loss: LossCurve?
}

/// A metrics file, read.
struct MetricsRow {
  var entry: MetricsEntry
  var report: EvaluationReport?
  var problem: String?
}

/// Everything the report shows, read once from the run directory. Reading never throws:
/// a missing or unreadable artefact becomes a note in its section.
struct RunContents {
  let run: URL
  let config: [(String, String)]?
  let configProblem: String?
  let erase: ManifestInfo?
  let steps: [StepInfo]
  let masks: ManifestInfo?
  let segVariants: [SegVariant]
  let predict: ManifestInfo?
  let predictDirectoryExists: Bool
  let dataset: VOCDataset?
  let datasetPath: String?
  let datasetProblem: String?
  let classNames: [String]
  let meanPixel: [UInt8]
  let metrics: [String: MetricsRow]
  /// Rows that cannot be scored in this run, with why: those the evaluation stage listed as
  /// not scored (RUN/metrics/manifest.json), and the rows of training masks (CAM only, AE
  /// masks) and of the fully supervised bound when the training split has no ground truth.
  /// Such a row is not "not run yet": no command would fill it.
  let unscorable: [String: String]
  let manifests: [ManifestInfo]
  /// RUN/warnings.json: what went wrong in a way the scores alone do not say.
  let warnings: [RunWarning]
  let warningsProblem: String?

  var eraseLayout: EraseLayout { EraseLayout(run: run) }

  /// The steps merged into the object regions, per RUN/erase/manifest.json.
  var mergedSteps: [Int]? {
    erase?.notes["merged_steps"].map { $0.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
  }

  /// The split erasing mined (default train).
  var eraseSplit: String { erase?.parameters["split"] ?? "train" }

  /// The held-out split: the one the test-<variant> metrics were scored on, else "test" when
  /// the dataset lists it, else nil (the dataset has none).
  let heldOutSplit: String?

  static func heldOutSplit(metrics: [String: MetricsRow], dataset: VOCDataset?) -> String? {
    if let split = MetricsEntry.testRows.lazy.compactMap({ metrics[$0.name]?.report?.split }).first { return split }
    guard let dataset, FileManager.default.fileExists(atPath: dataset.listURL(split: "test").path) else { return nil }
    return "test"
  }

  /// The split RUN/predict holds (default val).
  var predictSplit: String { predict?.parameters["split"].flatMap { $0.isEmpty ? nil : $0 } ?? "val" }

  /// The segmenter variant RUN/predict was made with, when its manifest says.
  var predictVariant: String? { predict?.parameters["variant"].flatMap { $0.isEmpty ? nil : $0 } }

  /// The metrics file of the final predictions: metrics/predict.json, else the one of the
  /// variant RUN/predict was made with, else the first of psl-plus, psl, deeplab present.
  var finalMetricsName: String? {
    var order = MetricsEntry.finalPredictionSources
    if let v = predictVariant { order.insert(v, at: 1) }
    return order.first { metrics[$0]?.report != nil }
  }

  init(run: URL, datasetOverride: String?) {
    self.run = run
    let layout = RunLayout(run: run)
    (config, configProblem) = Self.readConfig(layout.configFile)

    erase = ManifestInfo.read(directory: layout.erase.root, relativePath: "erase")
    steps = Self.numberedDirectories(in: layout.erase.root, prefix: "step-").map { number, dir in
      let lossURL = dir.appendingPathComponent("loss.csv")
      let loss = (try? String(contentsOf: lossURL, encoding: .utf8)).map(LossCurve.parse)
      return StepInfo(number: number, directory: dir, manifest: ManifestInfo.read(directory: dir, relativePath: "erase/step-\(number)"),
                      loss: loss)
    }
    masks = ManifestInfo.read(directory: layout.masks, relativePath: "masks")

    segVariants = Self.segVariants(in: layout.segmentation.root)
    let predictDir = layout.predict
    predictDirectoryExists = Self.isDirectory(predictDir)
    predict = ManifestInfo.read(directory: predictDir, relativePath: "predict")

    // The dataset: --dataset, else the one the erasing stage recorded (an absolute path),
    // else config.json's.
    let named = datasetOverride ?? (try? EraseStage.configuration(run: run))?.dataset ?? erase?.parameters["dataset"]
      ?? config?.first(where: { $0.0 == "dataset" })?.1
    let (dataset, resolvedPath, problem) = Self.openDataset(named: named)
    self.dataset = dataset
    datasetPath = resolvedPath
    datasetProblem = problem

    let metrics = Self.readMetrics(layout.metrics)
    self.metrics = metrics
    let predictSplit = predict?.parameters["split"].flatMap { $0.isEmpty ? nil : $0 } ?? "val"
    let heldOut = Self.heldOutSplit(metrics: metrics, dataset: dataset)
    heldOutSplit = heldOut
    unscorable = Self.unscorableRows(run: run, dataset: dataset, trainSplit: erase?.parameters["split"] ?? "train",
                                     evalSplit: predictSplit, heldOutSplit: heldOut)
      .filter { metrics[$0.key]?.report == nil }

    // Class names: the dataset's, else the erasing stage's record, else a metrics file's.
    if let dataset {
      classNames = dataset.classes.names
    } else if let listed = erase?.notes["classes"], !listed.isEmpty {
      classNames = listed.split(separator: ",").map(String.init)
    } else if let report = metrics.values.compactMap(\.report).first {
      classNames = Array(report.classNames.dropFirst())
    } else {
      classNames = []
    }

    if let data = try? Data(contentsOf: layout.erase.meanPixelFile), let values = try? JSONDecoder().decode([UInt8].self, from: data),
       values.count == 3 {
      meanPixel = values
    } else {
      meanPixel = [128, 128, 128]
    }
    manifests = Self.allManifests(in: run)
    do {
      (warnings, warningsProblem) = (try RunWarnings.read(from: layout.warningsFile) ?? [], nil)
    } catch {
      (warnings, warningsProblem) = ([], "\(error)")
    }
  }

  /// config.json (written by `aepsl run`), key by key as it is, or why it cannot be shown
  /// (nil and nil: the run has none).
  static func readConfig(_ url: URL) -> ([(String, String)]?, String?) {
    guard FileManager.default.fileExists(atPath: url.path) else { return (nil, nil) }
    guard let data = try? Data(contentsOf: url),
          let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
      return (nil, "config.json is not a JSON object")
    }
    return (object.keys.sorted().map { ($0, jsonText(object[$0]!)) }, nil)
  }

  /// Every metrics file the report knows, read or with why it cannot be.
  static func readMetrics(_ directory: URL) -> [String: MetricsRow] {
    var metrics: [String: MetricsRow] = [:]
    for entry in MetricsEntry.rows + MetricsEntry.testRows + [MetricsEntry.predict] {
      let url = directory.appendingPathComponent("\(entry.name).json")
      guard FileManager.default.fileExists(atPath: url.path) else { continue }
      do {
        let report = try JSONDecoder().decode(EvaluationReport.self, from: Data(contentsOf: url))
        metrics[entry.name] = MetricsRow(entry: entry, report: report)
      } catch {
        metrics[entry.name] = MetricsRow(entry: entry, problem: "metrics/\(entry.name).json cannot be read: \(error)")
      }
    }
    return metrics
  }

  /// The dataset at `named` (an absolute path, or relative to the working directory), its
  /// path, or why it cannot be opened.
  static func openDataset(named: String?) -> (VOCDataset?, String?, String?) {
    guard let named else { return (nil, nil, "no dataset is named by the run; pass --dataset DIR") }
    let root = URL(fileURLWithPath: named).standardizedFileURL
    guard isDirectory(root) else { return (nil, root.path, "the dataset \(root.path) is not there; pass --dataset DIR") }
    do {
      return (try VOCDataset(root: root), root.path, nil)
    } catch {
      return (nil, root.path, "the dataset at \(root.path) cannot be opened: \(error)")
    }
  }

  /// The trained (or training) segmenters under RUN/seg, the known variants first.
  static func segVariants(in segRoot: URL) -> [SegVariant] {
    let fm = FileManager.default
    let known = ModelVariant.allCases.map(\.rawValue)
    let segNames = ((try? fm.contentsOfDirectory(atPath: segRoot.path)) ?? [])
      .filter { Self.isDirectory(segRoot.appendingPathComponent($0)) && !$0.hasPrefix(".") }
      .sorted { a, b in
        let (ia, ib) = (known.firstIndex(of: a) ?? known.count, known.firstIndex(of: b) ?? known.count)
        return ia != ib ? ia < ib : a < b
      }
    // A variant is a directory with a loss curve, a train-seg manifest or a known name
    // (not, say, seg/psl-plus-masks, the masks of the second round).
    return segNames.compactMap { name in
      let dir = segRoot.appendingPathComponent(name, isDirectory: true)
      let loss = (try? String(contentsOf: dir.appendingPathComponent("loss.csv"), encoding: .utf8)).map(LossCurve.parse)
      let manifest = ManifestInfo.read(directory: dir, relativePath: "seg/\(name)")
      guard loss != nil || known.contains(name) || manifest?.stage == "train-seg" else { return nil }
      return SegVariant(name: name, directory: dir, manifest: manifest, loss: loss)
    }
  }

  /// See `unscorable`: the rows the evaluation stage listed as not scored, and every row on
  /// a split of which no image has a ground-truth mask.
  static func unscorableRows(run: URL, dataset: VOCDataset?, trainSplit: String, evalSplit: String = "val",
                             heldOutSplit: String? = nil) -> [String: String] {
    var rows: [String: String] = [:]
    if let eval = ManifestInfo.read(directory: RunLayout(run: run).metrics, relativePath: "metrics"),
       let listed = eval.notes["not_scored"] {
      for line in listed.split(separator: "\n") {
        let parts = line.split(separator: ":", maxSplits: 1)
        if parts.count == 2 { rows[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
      }
    }
    guard let dataset else { return rows }
    func hasNoTruth(_ split: String) -> Bool {
      guard let ids = try? dataset.imageIDs(split: split), !ids.isEmpty else { return false }
      return !ids.contains { dataset.maskURL($0) != nil }
    }
    let models = ModelVariant.allCases
    var bySplit: [(split: String, names: [MetricsName], what: String)] = [
      (trainSplit, [.camOnly, .aeMasks, .model(.full), .model(.fullPSL)], "the training split '\(trainSplit)' has no ground-truth masks to score against"),
      (evalSplit, [.predict] + models.map { .model($0) }, "the split '\(evalSplit)' has no ground-truth masks to score against"),
    ]
    if let heldOutSplit {
      bySplit.append((heldOutSplit, models.map { .test($0) }, "the split '\(heldOutSplit)' has no ground-truth masks to score against"))
    }
    for (split, names, why) in bySplit where hasNoTruth(split) {
      for name in names { rows[name.rawValue] = why }
    }
    return rows
  }

  /// Directories `<prefix><number>` in `root`, by number.
  static func numberedDirectories(in root: URL, prefix: String) -> [(Int, URL)] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
    return names.compactMap { name -> (Int, URL)? in
      guard name.hasPrefix(prefix), let n = Int(name.dropFirst(prefix.count)), n >= 0 else { return nil }
      let url = root.appendingPathComponent(name, isDirectory: true)
      return isDirectory(url) ? (n, url) : nil
    }.sorted { $0.0 < $1.0 }
  }

  static func isDirectory(_ url: URL) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
  }

  /// Every manifest.json one or two directory levels below the run (not the report's).
  static func allManifests(in run: URL) -> [ManifestInfo] {
    let fm = FileManager.default
    var found: [ManifestInfo] = []
    let order = ["erase", "masks", "seg", "predict"]
    let top = ((try? fm.contentsOfDirectory(atPath: run.path)) ?? []).filter { !$0.hasPrefix(".") && $0 != "report" }
      .sorted { a, b in
        let (ia, ib) = (order.firstIndex(of: a) ?? order.count, order.firstIndex(of: b) ?? order.count)
        return ia != ib ? ia < ib : a < b
      }
    for name in top {
      let dir = run.appendingPathComponent(name, isDirectory: true)
      guard isDirectory(dir) else { continue }
      if let m = ManifestInfo.read(directory: dir, relativePath: name) { found.append(m) }
      let inner = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") }
        .sorted { $0.localizedStandardCompare($1) == .orderedAscending }
      for sub in inner {
        let subDir = dir.appendingPathComponent(sub, isDirectory: true)
        guard isDirectory(subDir) else { continue }
        if let m = ManifestInfo.read(directory: subDir, relativePath: "\(name)/\(sub)") { found.append(m) }
      }
    }
    return found
  }
}
