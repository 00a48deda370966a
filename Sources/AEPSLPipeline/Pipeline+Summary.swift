import AEPSLMethod
import Foundation

/// The mIoU table printed at the end of `aepsl run`.
extension Pipeline {
  /// One row of the summary: a label and the metrics file of each column (nil: not on that split).
  struct SummaryRow {
    var label: String
    var train: MetricsName?
    var val: MetricsName?
    var test: MetricsName?
  }

  var summaryRows: [SummaryRow] {
    let final = finalVariant
    return [
      SummaryRow(label: "CAM only (pseudo masks from step 1)", train: .camOnly),
      SummaryRow(label: "AE pseudo masks (merged steps)", train: .aeMasks),
      SummaryRow(label: "AE-PSL" + (final == .psl ? " (final)" : ""), val: .model(.psl), test: .test(.psl)),
      SummaryRow(label: "AE-PSL+" + (final == .pslPlus ? " (final)" : ""), val: .model(.pslPlus), test: .test(.pslPlus)),
      SummaryRow(label: "DeepLab on AE masks (ablation)", val: .model(.deeplab), test: .test(.deeplab)),
      SummaryRow(label: "FULLY SUPERVISED upper bound", val: .model(.full), test: .test(.full)),
    ]
  }

  /// The mean IoU in percent of RUN/metrics/<name>.json, when it is there.
  func meanIoU(_ name: MetricsName?) -> Double? {
    guard let name, let data = try? Data(contentsOf: layout.metricsFile(name)),
          let report = try? JSONDecoder().decode(EvaluationReport.self, from: data) else { return nil }
    return report.meanIoU * 100
  }

  /// The mIoU table printed at the end of a run, from RUN/metrics: a column per split, the
  /// masks on the training split, each segmenter on the evaluation split (where defaults are
  /// chosen) and on the held-out split (where results are reported) side by side; then
  /// weak / full supervision on the held-out split (the evaluation split's beside it), and
  /// the run's warnings.
  public func summaryTable() -> String {
    let rows = summaryRows
    let hasTest = rows.contains { meanIoU($0.test) != nil }
    let splits = [config.erase.split, config.predict.split] + (hasTest ? [config.predict.testSplit ?? "test"] : [])
    func cell(_ text: String) -> String { String(repeating: " ", count: max(0, 8 - text.count)) + text }
    var lines = ["mIoU (%)".padding(toLength: 40, withPad: " ", startingAt: 0) + splits.map(cell).joined()]
    for row in rows {
      let values = [meanIoU(row.train), meanIoU(row.val)] + (hasTest ? [meanIoU(row.test)] : [])
      guard values.contains(where: { $0 != nil }) else { continue }
      let line = row.label.padding(toLength: 40, withPad: " ", startingAt: 0)
        + values.map { cell($0.map { String(format: "%.2f", $0) } ?? "") }.joined()
      lines.append(String(line.reversed().drop { $0 == " " }.reversed()))
    }
    if lines.count == 1 { lines.append("(nothing scored: the dataset has no ground-truth masks for these splits)") }
    if config.upperBound && !trainingHasGroundTruth {
      lines.append("(no fully supervised upper bound: the training split has no ground-truth mask for every image)")
    }
    if let ratio = weakOverFull {
      lines.append(ratio)
    }
    if hasTest {
      lines.append("(\(config.predict.split): where defaults are chosen; \(splits[2]): held out, where results are reported)")
    }
    return (lines + warningLines).joined(separator: "\n")
  }

  /// "weak / full supervision: X% on test (Y% on val)", from the final model and the bound.
  var weakOverFull: String? {
    func ratio(_ weak: MetricsName, _ full: MetricsName) -> Double? {
      guard let w = meanIoU(weak), let f = meanIoU(full), f > 0 else { return nil }
      return 100 * w / f
    }
    let test = ratio(.test(finalVariant), .test(.full)), val = ratio(.model(finalVariant), .model(.full))
    let testSplit = config.predict.testSplit ?? "test", valSplit = config.predict.split
    switch (test, val) {
    case let (t?, v?): return String(format: "weak / full supervision: %.1f%% on %@ (%.1f%% on %@)", t, testSplit, v, valSplit)
    case let (t?, nil): return String(format: "weak / full supervision: %.1f%% on %@", t, testSplit)
    case let (nil, v?): return String(format: "weak / full supervision: %.1f%% on %@", v, valSplit)
    case (nil, nil): return nil
    }
  }
}
