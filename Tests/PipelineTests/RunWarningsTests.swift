import AEPSLData
import AEPSLMethod
@testable import AEPSLPipeline
import Foundation
import Testing

/// Issue 13's "say when it goes wrong": a run whose erasing classifier cannot learn (one
/// update) warns in the console, in RUN/warnings.json, at the end of the summary and at the
/// top of the report, naming the option to change.
@Suite("Run warnings", .serialized)
struct RunWarningsTests {
  static let config = #"""
    {"synth": {"trainCount": 8, "valCount": 4, "testCount": 2, "size": 48},
     "erase": {"maxSteps": 1, "stopChanceFraction": null, "batchSize": 8, "cropSize": 48, "schedule": {"epochs": 1}},
     "segmentation": {"batchSize": 8, "cropSize": 48, "schedule": {"epochs": 1}},
     "upperBound": false, "reportSamples": 1}
    """#

  @Test func aClassifierThatCannotLearnIsWarnedAboutEverywhere() throws {
    let run = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-warn-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: run) }
    let config = try RunConfiguration.resolve(overrides: Data(Self.config.utf8), file: "test", net: nil, dataset: nil)
    var lines: [String] = []
    let pipeline = Pipeline(run: run, config: config, progress: .init(quiet: true), log: { lines.append($0) })
    let report = try pipeline.execute()

    // One update of a classifier trained from scratch: step 1 ends near the loss of
    // answering each class's frequency, and its loss cannot have fallen.
    let warnings = try #require(try RunWarnings.read(from: RunLayout(run: run).warningsFile))
    let learning = try #require(warnings.first { $0.kind == .classifierDidNotLearn }, "\(warnings)")
    #expect(learning.what.contains("step 1") && learning.option.contains("erase.schedule"), "\(learning)")
    #expect(warnings.contains { $0.kind == .stoppingRuleCouldNotJudge }, "step 1's loss barely fell: \(warnings)")
    // The console said it once, right after erasing, before the segmenters trained.
    let printed = lines.indices.filter { lines[$0].hasPrefix("WARNING: erasing step 1's classifier did not learn") }
    #expect(printed.count == 1, "\(lines)")
    if let at = printed.first, let erased = lines.firstIndex(where: { $0.hasPrefix("run: erase done") }),
       let trained = lines.firstIndex(of: "run: train-seg ...") {
      #expect(erased < at && at < trained, "\(lines)")
    }
    #expect(pipeline.summaryTable().contains(learning.description))
    let html = try String(contentsOf: report, encoding: .utf8)
    let box = try #require(html.components(separatedBy: "<div class=\"warnings\"").dropFirst().first, "the report has no warnings box")
    #expect(box.contains("classifier did not learn") && box.contains("erase.schedule.minIterations"), "\(box)")

    // A rerun finds everything done and prints no warning again.
    lines.removeAll()
    try pipeline.execute()
    #expect(!lines.contains { $0.hasPrefix("WARNING") }, "\(lines)")
  }

  /// The classification branch's check reads each PSL round's manifest: its final
  /// classification loss, and the dataset, split and loss its labels are scored with.
  @Test func aClassificationBranchThatDidNotLearnIsNamedFromTheRoundsManifest() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-branch-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let data = root.appendingPathComponent("data"), run = root.appendingPathComponent("run")
    _ = try SyntheticDataset(configuration: .init(seed: 1, trainCount: 8, valCount: 2, size: 32)).write(to: data, threads: 1)
    let layout = SegmentationLayout(run: run)
    // psl far above any constant predictor's loss (at most C/8 for mse), psl-plus at zero.
    for (variant, final) in [(ModelVariant.psl, 100.0), (.pslPlus, 0.0)] {
      let dir = layout.directory(variant)
      try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
      try StageManifest(stage: "train-seg", parameters: ["dataset": data.path, "split": "train", "cls_loss": "mse"],
                        inputs: [], startedAt: Date(), notes: ["final_classification": "\(final)"]).write(to: dir)
    }
    let found = RunWarnings.segmentation(run: run)
    #expect(found.count == 1 && found.first?.kind == .classificationBranchDidNotLearn, "\(found)")
    #expect(found.first?.what.hasPrefix("psl's classification branch") == true, "\(found)")
    #expect(RunWarnings.segmentation(run: root.appendingPathComponent("none")).isEmpty)
  }

  /// The final model's check reads the evaluation split's scores of the two rounds.
  @Test(arguments: [(ModelVariant.pslPlus, 40.0, 50.0, true), (.pslPlus, 55.0, 50.0, false), (.psl, 40.0, 50.0, false)])
  func aFinalModelBelowTheEarlierRoundIsNamed(final: ModelVariant, plus: Double, psl: Double, warns: Bool) throws {
    let run = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-final-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: run) }
    let layout = RunLayout(run: run)
    try FileManager.default.createDirectory(at: layout.metrics, withIntermediateDirectories: true)
    for (variant, miou) in [(ModelVariant.psl, psl), (.pslPlus, plus)] {
      let json = #"{"split": "val", "images": 1, "classNames": ["background"], "meanIoU": \#(miou / 100), "pixelAccuracy": 1, "#
        + #""iou": [1], "precision": 1, "coverage": 1, "confusion": [[1]]}"#
      try Data(json.utf8).write(to: layout.metricsFile(.model(variant)))
    }
    let found = RunWarnings.scores(run: run, finalModel: final)
    #expect(found.isEmpty == !warns, "\(found)")
    if warns { #expect(found.first?.option.contains("predict.finalModel \"psl\"") == true) }
  }
}
