import AEPSLData
import Foundation

/// What the evaluation stage scores: named sets of label maps, each against the ground truth
/// of a split, written to RUN/metrics/<name>.json.
public struct EvaluationConfiguration: Sendable {
  public struct Entry: Sendable {
    public var name: MetricsName
    public var predictions: URL
    public var split: String
    public init(name: MetricsName, predictions: URL, split: String) {
      self.name = name
      self.predictions = predictions
      self.split = split
    }
  }

  public var dataset: URL
  public var entries: [Entry]

  public init(dataset: URL, entries: [Entry]) {
    self.dataset = dataset
    self.entries = entries
  }
}

public enum EvaluationStage {
  /// Scores every entry whose predictions are finished (their manifest) on the images of its
  /// split that have a ground-truth mask, leaving out images its stage skipped as bad; the
  /// others are listed as not scored in the manifest. A dataset of tagged images alone has
  /// no ground truth and is still a complete run.
  public static func run(_ config: EvaluationConfiguration, run: URL, progress: ProgressReporter.Options = .init(),
                         log: @escaping (String) -> Void = { print($0) }) throws {
    let layout = RunLayout(run: run)
    let started = Date()
    let dataset = try VOCDataset(root: config.dataset)
    try makeDirectory(layout.metrics)
    var notScored: [String: String] = [:]
    for entry in config.entries {
      let name = entry.name.rawValue
      guard FileManager.default.fileExists(atPath: dataset.listURL(split: entry.split).path),
            let manifest = try StageManifest.read(from: entry.predictions), manifest.notes["skipped"] == nil else {
        notScored[name] = "no predictions for split '\(entry.split)'"
        continue
      }
      let ids = try dataset.imageIDs(split: entry.split).filter { !manifest.skippedIDs.contains($0) }
      let withTruth = ids.filter { dataset.maskURL($0) != nil }
      guard !withTruth.isEmpty else {
        notScored[name] = "no image of split '\(entry.split)' has a ground-truth mask"
        log("run: \(name) not scored: \(notScored[name]!)")
        continue
      }
      if withTruth.count < ids.count {
        log("run: \(name): \(ids.count - withTruth.count) of \(ids.count) images of split '\(entry.split)' have no ground-truth mask and are not scored")
      }
      let report = try Evaluation.labelMaps(predictions: entry.predictions, dataset: dataset, split: entry.split, ids: withTruth,
                                            progress: progress)
      try report.write(to: layout.metricsFile(entry.name))
    }
    let parameters = ["dataset": dataset.root.path] .merging(config.entries.map { ("\($0.name.rawValue)", "\($0.predictions.path) (\($0.split))") }) { $1 }
    try StageManifest(stage: "eval", parameters: parameters, inputs: config.entries.map(\.predictions.path), startedAt: started,
                      notes: ["not_scored": notScored.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "\n")])
      .write(to: layout.metrics)
    log("run: scores in \(layout.metrics.path)")
  }
}
