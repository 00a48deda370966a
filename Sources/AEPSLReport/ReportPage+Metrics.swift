import AEPSLData
import AEPSLEngine
import AEPSLImaging
import AEPSLMethod
import Foundation

/// The scores and timings: the per-class IoU table, the confusion matrix, the time per stage.
extension ReportPage {
  // MARK: - IoU table

  /// The rows of the IoU table: the masks on the training split, then each segmenter on the
  /// evaluation split with its row on the held-out split (when the dataset has one) below it.
  var iouRows: [MetricsEntry] {
    let test = contents.heldOutSplit == nil ? [:] : Dictionary(uniqueKeysWithValues: MetricsEntry.testRows.map { ($0.label, $0) })
    return MetricsEntry.rows.flatMap { entry in [entry] + (test[entry.label].map { [$0] } ?? []) }
  }

  func iouSection() -> String {
    let id = "iou", title = Self.sections[3].title
    let rows = iouRows
    let reports = rows.compactMap { contents.metrics[$0.name]?.report }
    let classNames = reports.first?.classNames ?? (["background"] + contents.classNames)
    let heldOut = contents.heldOutSplit.map { ", and on the held-out \($0) split, where results are reported" } ?? ""
    var body = Markup.note("IoU in % per class, from RUN/metrics/<name>.json (written by `aepsl eval --json`). The split column says which images a row scores: CAM and pseudo-mask rows the training images (what the segmenter learns from); each segmenter the validation split, where defaults are chosen\(heldOut). \"—\": not run yet, or a class absent from both truth and prediction.")
    var tableRows: [String] = []
    for entry in rows {
      let row = contents.metrics[entry.name]
      let cls = entry.isUpperBound ? " class=\"bound\"" : ""
      var cells = ["<td>\(Markup.esc(entry.label))<br><span class=\"note mono\">metrics/\(Markup.esc(entry.name)).json</span></td>"]
      if let report = row?.report {
        cells += [Markup.esc(report.split), "\(report.images)", "<strong>\(Format.percent(report.meanIoU))</strong>", Format.percent(report.pixelAccuracy)]
          .map { "<td>\($0)</td>" }
        if report.classNames == classNames || report.iou.count == classNames.count {
          cells += report.iou.map { "<td\(Self.shade($0))>\(Format.percent($0))</td>" }
        } else {
          cells += classNames.map { _ in "<td>—</td>" }
          body += problem("metrics/\(entry.name).json has \(report.iou.count) classes, the table \(classNames.count).")
        }
      } else if let why = contents.unscorable[entry.name] {
        cells.append("<td class=\"unscorable\" colspan=\"\(4 + classNames.count)\">cannot be scored: \(Markup.esc(why))</td>")
      } else {
        if let p = row?.problem { body += problem(p) }
        cells += Array(repeating: "<td>—</td>", count: 4 + classNames.count)
      }
      tableRows.append("<tr\(cls)>" + cells.joined() + "</tr>")
    }
    let header = ["method", "split", "images", "mIoU", "pixel acc."] + classNames
    body += "<div class=\"scroll\"><table class=\"numbers\">\n<thead><tr>" + header.map { "<th>\(Markup.esc($0))</th>" }.joined()
      + "</tr></thead>\n<tbody>\n" + tableRows.joined(separator: "\n") + "\n</tbody></table></div>\n"
    body += missingRowsNote(rows)
    body += Markup.note("The fully supervised row trains the same segmenter on the ground-truth masks: an upper bound, not a result of the method.")
    return Markup.section(id: id, title: title, html: body)
  }

  /// What the rows without scores need: the commands that fill those a command can fill;
  /// rows that cannot be scored (no ground truth) are no "not run yet" and get no command.
  func missingRowsNote(_ rows: [MetricsEntry]) -> String {
    let unscored = rows.filter { contents.metrics[$0.name]?.report == nil }
    let missing = unscored.filter { contents.unscorable[$0.name] == nil }
    var out = ""
    if unscored.count == rows.count {
      out += missing.isEmpty
        ? Markup.note("No row can be scored: the dataset has no ground-truth masks for these splits.")
        : Markup.notRun("no metrics file in RUN/metrics", hint: "Evaluate with `aepsl eval ... --json RUN/metrics/<name>.json`.")
    }
    if !missing.isEmpty {
      out += "<details><summary>How to fill the missing rows</summary><ul>"
        + missing.map { "<li><code>\(Markup.esc($0.command))</code></li>" }.joined() + "</ul></details>\n"
    }
    return out
  }

  /// A cell background growing greener with the IoU.
  static func shade(_ v: Double?) -> String {
    guard let v, v.isFinite else { return "" }
    let a = max(0, min(1, v)) * 0.45
    return " style=\"background:rgba(44,160,44,\(String(format: "%.2f", a)))\""
  }

  // MARK: - Confusion matrix

  func confusionSection() -> String {
    let id = "confusion", title = Self.sections[4].title
    guard let name = contents.finalMetricsName, let report = contents.metrics[name]?.report else {
      let files = MetricsEntry.finalPredictionSources.map { "metrics/\($0).json" }.joined(separator: ", ")
      return Markup.section(id: id, title: title, html: Markup.notRun("none of \(files)", hint: "Run `\(MetricsEntry.predict.command)`."))
    }
    var body = Markup.note("From RUN/metrics/\(name).json: \(report.split), \(report.images) images, mIoU \(Format.percent(report.meanIoU)). Rows: ground truth; columns: prediction; each cell the percentage of its row (hover for pixel counts). Pixels a prediction left unlabelled (255) are not in the matrix.")
    let svg = SVGPlot.confusion(report.confusion, names: report.classNames, title: "Confusion matrix (\(name))")
    body += svg.isEmpty ? problem("metrics/\(name).json has no square confusion matrix.") : svg
    return Markup.section(id: id, title: title, html: body)
  }

  // MARK: - Timings

  func timingsSection() -> String {
    let id = "timings", title = Self.sections[5].title
    let manifests = contents.manifests
    var rows: [[String]] = []
    let paths = Set(manifests.map(\.relativePath))
    var total = 0.0
    for m in manifests {
      let parent = m.relativePath.split(separator: "/").dropLast().joined(separator: "/")
      let nested = !parent.isEmpty && paths.contains(parent)
      if !nested, let s = m.seconds, s.isFinite { total += s }
      let label = (nested ? "\u{2003}" : "") + m.relativePath
      rows.append([Markup.esc(label), Markup.esc(m.stage ?? "?"), Markup.esc(m.seconds.map(Format.duration) ?? "—"),
                   Markup.esc(m.finishedAt ?? "—"), Markup.esc(m.problem ?? m.version ?? "")])
    }
    var expected = ["erase", "masks"]
    if contents.segVariants.isEmpty { expected.append("seg") }
    expected.append("predict")
    for stage in expected where !manifests.contains(where: { $0.relativePath == stage }) {
      let started = manifests.contains { $0.relativePath.hasPrefix(stage + "/") }
        || (stage == "predict" && contents.predictDirectoryExists)
      rows.append([Markup.esc(stage), "", started ? "<em>unfinished</em>" : "<em>not run yet</em>", "", ""])
    }
    guard !manifests.isEmpty else {
      return Markup.section(id: id, title: title, html: Markup.notRun("no stage has written its manifest", hint: "Run `aepsl erase --dataset DATASET --run RUN`.")
        + Markup.table(class: "timings", header: ["directory", "stage", "time", "finished", "version"], rows: rows))
    }
    rows.append(["<strong>total</strong>", "", "<strong>\(Markup.esc(Format.duration(total)))</strong>", "", ""])
    let body = Markup.note("From each stage's manifest.json (indented: parts of the stage above, already in its time).")
      + Markup.table(class: "timings", header: ["directory", "stage", "time", "finished", "version"], rows: rows)
    return Markup.section(id: id, title: title, html: body)
  }
}
