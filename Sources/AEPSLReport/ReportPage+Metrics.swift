import AEPSLData
import AEPSLEngine
import AEPSLImaging
import AEPSLMethod
import Foundation

/// The scores and timings: the per-class IoU table, the confusion matrix, the time per stage.
extension ReportPage {
  // MARK: - IoU table

  func iouSection() -> String {
    let id = "iou", title = Self.sections[3].title
    let rows = MetricsEntry.rows
    let reports = rows.compactMap { contents.metrics[$0.name]?.report }
    let classNames = reports.first?.classNames ?? (["background"] + contents.classNames)
    var body = Markup.note("IoU in % per class, from RUN/metrics/<name>.json (written by `aepsl eval --json`). CAM and pseudo-mask rows score the training images (what the segmenter learns from); the others the validation split. \"—\": not run yet, or a class absent from both truth and prediction.")
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
      } else {
        if let p = row?.problem { body += problem(p) }
        cells += Array(repeating: "<td>—</td>", count: 4 + classNames.count)
      }
      tableRows.append("<tr\(cls)>" + cells.joined() + "</tr>")
    }
    let header = ["method", "split", "images", "mIoU", "pixel acc."] + classNames
    body += "<div class=\"scroll\"><table class=\"numbers\">\n<thead><tr>" + header.map { "<th>\(Markup.esc($0))</th>" }.joined()
      + "</tr></thead>\n<tbody>\n" + tableRows.joined(separator: "\n") + "\n</tbody></table></div>\n"
    let missing = rows.filter { contents.metrics[$0.name]?.report == nil }
    if missing.count == rows.count {
      body += Markup.notRun("no metrics file in RUN/metrics", hint: "Evaluate with `aepsl eval ... --json RUN/metrics/<name>.json`.")
    }
    if !missing.isEmpty {
      body += "<details><summary>How to fill the missing rows</summary><ul>"
        + missing.map { "<li><code>\(Markup.esc($0.command))</code></li>" }.joined() + "</ul></details>\n"
    }
    body += Markup.note("The fully supervised row trains the same segmenter on the ground-truth masks: an upper bound, not a result of the method.")
    return Markup.section(id: id, title: title, html: body)
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
