import AEPSLData
import AEPSLEngine
import AEPSLImaging
import AEPSLMethod
import Foundation

/// Builds the page, one function per section. Problems met on the way (an unreadable file)
/// are shown in place and collected in `problems` for the console.
final class ReportPage {
  let contents: RunContents
  let tiles: TileWriter
  let options: ReportOptions
  var problems: [String] = []

  init(contents: RunContents, tiles: TileWriter, options: ReportOptions) {
    self.contents = contents
    self.tiles = tiles
    self.options = options
  }

  static let sections: [(id: String, title: String)] = [
    ("samples", "Adversarial erasing, image by image"),
    ("losses", "Training loss"),
    ("predictions", "Predictions on validation images"),
    ("iou", "Per-class IoU"),
    ("confusion", "Confusion matrix of the final predictions"),
    ("timings", "Time per stage"),
  ]

  func html() -> String {
    let name = contents.run.lastPathComponent
    var out = """
      <!DOCTYPE html>
      <html lang="en">
      <head>
      <meta charset="utf-8">
      <meta name="viewport" content="width=device-width, initial-scale=1">
      <title>aepsl report: \(Markup.esc(name))</title>
      <style>
      \(Markup.styleSheet)
      </style>
      </head>
      <body>

      """
    out += header()
    out += samplesSection()
    out += lossSection()
    out += predictionsSection()
    out += iouSection()
    out += confusionSection()
    out += timingsSection()
    out += "<footer class=\"note\">Written by aepsl \(Markup.esc(aepslVersion)) on \(Markup.esc(Self.timestamp())).</footer>\n</body>\n</html>\n"
    return out
  }

  static func timestamp() -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.string(from: Date())
  }

  func problem(_ text: String) -> String {
    problems.append(text)
    return Markup.warning(text)
  }

  // MARK: - Header

  func header() -> String {
    var facts: [(String, String)] = [("Run", "<span class=\"mono\">\(Markup.esc(contents.run.path))</span>")]
    if let dataset = contents.dataset {
      var text = "<span class=\"mono\">\(Markup.esc(dataset.root.path))</span>"
      let split = contents.eraseSplit
      let counts = [split, contents.predictSplit, contents.heldOutSplit].compactMap { $0 }
        .compactMap { s in (try? dataset.imageIDs(split: s)).map { "\($0.count) \(s)" } }
      if !counts.isEmpty { text += " (" + Markup.esc(counts.joined(separator: ", ")) + " images)" }
      facts.append(("Dataset", text))
    } else {
      facts.append(("Dataset", Markup.esc(contents.datasetProblem ?? "unknown")))
    }
    facts.append(("Classes", classLegend(includeSpecial: false)))
    if let erase = contents.erase {
      var text = ""
      if let net = erase.parameters["net"] { text += "network \(net); " }
      if let merged = contents.mergedSteps { text += "steps \(merged.map(String.init).joined(separator: ", ")) merged" }
      if let reason = erase.notes["reason"], !reason.isEmpty { text += " (\(reason))" }
      facts.append(("Erasing", Markup.esc(text)))
    }
    if let results = resultsFact() { facts.append(("Results", Markup.esc(results))) }
    var versions = Set(contents.manifests.compactMap(\.version))
    versions.remove(aepslVersion)
    let versionText = "report by aepsl \(aepslVersion)" + (versions.isEmpty ? "" : "; stages written by aepsl \(versions.sorted().joined(separator: ", "))")
    facts.append(("Version", Markup.esc(versionText)))

    var out = "<header>\n<h1>aepsl run report: \(Markup.esc(contents.run.lastPathComponent))</h1>\n"
    out += "<p class=\"note\">Adversarial Erasing with Prohibitive Segmentation Learning (Wei et al., CVPR 2017).</p>\n"
    out += warningsBox()
    out += "<nav>" + Self.sections.map { "<a href=\"#\(Markup.esc($0.id))\">\(Markup.esc($0.title))</a>" }.joined() + "</nav>\n"
    out += Markup.definitions(facts)
    out += "\n<h2 id=\"config\">Configuration</h2>\n"
    out += configuration()
    out += "\n</header>\n"
    return out
  }

  /// RUN/warnings.json in a box at the top of the page: what went wrong, the likely cause and
  /// the option to change.
  func warningsBox() -> String {
    if let problem = contents.warningsProblem { return self.problem(problem) }
    guard !contents.warnings.isEmpty else { return "" }
    let n = contents.warnings.count
    return "<div class=\"warnings\" id=\"warnings\"><h2>\(n) warning\(n == 1 ? "" : "s")</h2><ul>"
      + contents.warnings.map { w in
        "<li><strong>\(Markup.esc(w.what))</strong><br>Likely cause: \(Markup.esc(w.likelyCause))<br>Try: <code>\(Markup.esc(w.option))</code></li>"
      }.joined()
      + "</ul><p class=\"note\">From RUN/warnings.json.</p></div>\n"
  }

  /// The final model's mIoU on the held-out split (where results are reported) and on val
  /// (where defaults are chosen), the bound's, and weak over full, when they are scored.
  func resultsFact() -> String? {
    let final = contents.predictVariant ?? contents.finalMetricsName.flatMap { $0 == MetricsName.predict.rawValue ? nil : $0 }
    guard let final, let variant = ModelVariant(rawValue: final) else { return nil }
    func score(_ name: MetricsName) -> EvaluationReport? { contents.metrics[name.rawValue]?.report }
    var parts: [String] = []
    let test = score(.test(variant)), val = score(.model(variant))
    let fullTest = score(.test(.full)), fullVal = score(.model(.full))
    var figures: [String] = []
    if let test { figures.append("\(Format.percent(test.meanIoU)) on \(test.split) (held out)") }
    if let val { figures.append("\(Format.percent(val.meanIoU)) on \(val.split)") }
    guard !figures.isEmpty else { return nil }
    parts.append("final model (\(final)): mIoU " + figures.joined(separator: ", "))
    if let bound = fullTest ?? fullVal {
      parts.append("fully supervised upper bound: \(Format.percent(bound.meanIoU)) on \(bound.split)")
      if let weak = fullTest != nil ? test : val, bound.meanIoU > 0 {
        parts.append(String(format: "weak / full %.1f%% on %@", 100 * weak.meanIoU / bound.meanIoU, bound.split))
      }
    }
    return parts.joined(separator: "; ")
  }

  /// config.json when the run has one, else the parameters the stages recorded.
  func configuration() -> String {
    if let problem = contents.configProblem { return self.problem("RUN/config.json: \(problem)") }
    if let config = contents.config {
      return Markup.note("From RUN/config.json.") + keyValueTable(config)
    }
    var out = ""
    let stages: [(String, ManifestInfo?)] = [("erase", contents.erase), ("masks", contents.masks)]
      + contents.segVariants.map { ("seg/\($0.name)", $0.manifest) } + [("predict", contents.predict)]
    for (name, manifest) in stages {
      guard let manifest, !manifest.parameters.isEmpty else { continue }
      out += "<h3>\(Markup.esc(name))</h3>\n" + keyValueTable(manifest.parameters.keys.sorted().map { ($0, manifest.parameters[$0]!) })
    }
    return out.isEmpty
      ? Markup.notRun("no RUN/config.json and no stage manifest", hint: "Run `aepsl erase --dataset DATASET --run RUN` (or `aepsl run`).")
      : Markup.note("No RUN/config.json: the parameters each stage recorded in its manifest.") + out
  }

  func keyValueTable(_ pairs: [(String, String)]) -> String {
    Markup.table(class: "config", header: ["parameter", "value"],
                 rows: pairs.map { [Markup.esc($0.0), "<span class=\"mono\">\(Self.breakable($0.1))</span>"] })
  }

  /// A value escaped, with a line-break opportunity after each comma, so that the JSON of a
  /// whole configuration section wraps at its fields rather than anywhere.
  static func breakable(_ value: String) -> String {
    Markup.esc(value).replacingOccurrences(of: ",", with: ",<wbr>")
  }

  /// Colour swatches of the classes as masks draw them (VOC palette).
  func classLegend(includeSpecial: Bool) -> String {
    var items: [(String, UInt8)] = []
    if includeSpecial { items.append(("background", 0)) }
    for (i, name) in contents.classNames.enumerated() where i < 254 { items.append((name, UInt8(i + 1))) }
    if includeSpecial { items.append(("ignore (255)", 255)) }
    guard !items.isEmpty else { return "unknown" }
    let prefix = includeSpecial ? "" : "\(contents.classNames.count): "
    return "<span class=\"legend\">" + Markup.esc(prefix) + items.map { name, label in
      "<span class=\"item\"><span class=\"swatch\" style=\"background:\(Markup.rgb(Palette.voc[label]))\"></span>\(Markup.esc(name))</span>"
    }.joined() + "</span>"
  }

  // MARK: - Figures

  func figure(_ tile: Tile, caption: String) -> String {
    let cls = tile.isLabelMap ? " class=\"labels\"" : ""
    return "<figure><img\(cls) src=\"\(Markup.esc(tile.source))\" width=\"\(tile.width)\" height=\"\(tile.height)\" alt=\"\(Markup.esc(caption))\">"
      + "<figcaption>\(Markup.esc(caption))</figcaption></figure>"
  }

  func placeholder(_ text: String, caption: String) -> String {
    "<figure><div class=\"placeholder\">\(Markup.esc(text))</div><figcaption>\(Markup.esc(caption))</figcaption></figure>"
  }

  /// Runs `make` for one tile; a failure becomes a placeholder saying why.
  func tile(caption: String, _ make: () throws -> Tile?, missing: String) -> String {
    do {
      guard let t = try make() else { return placeholder(missing, caption: caption) }
      return figure(t, caption: caption)
    } catch {
      problems.append("\(caption): \(error)")
      return placeholder("unreadable: \(error)", caption: caption)
    }
  }

  /// `count` items spread evenly over `items`, in order.
  static func pickEvenly<T>(_ items: [T], count: Int) -> [T] {
    guard count > 0, !items.isEmpty else { return [] }
    let n = min(count, items.count)
    return (0..<n).map { items[$0 * items.count / n] }
  }

  /// The image of `id` from the dataset, or why there is none.
  func datasetImage(_ id: String) -> (image: Image?, missing: String) {
    guard let dataset = contents.dataset else { return (nil, "no image (no dataset)") }
    do {
      return (try dataset.image(id).converted(toChannels: 3), "")
    } catch {
      problems.append("image \(id): \(error)")
      return (nil, "unreadable image: \(error)")
    }
  }

  func imageTile(_ loaded: (image: Image?, missing: String), name: String) -> String {
    guard let image = loaded.image else { return placeholder(loaded.missing, caption: "image") }
    return tile(caption: "image", { try tiles.write(image, name: name) }, missing: "")
  }

  func groundTruthTile(_ id: String, name: String) -> String {
    guard let dataset = contents.dataset else { return placeholder("no dataset", caption: "ground truth") }
    guard let url = dataset.maskURL(id) else { return placeholder("the dataset has no mask for this image", caption: "ground truth") }
    return tile(caption: "ground truth", { try tiles.write(LabelMap(contentsOf: url), name: name) }, missing: "")
  }

  // MARK: - Training loss

  func lossSection() -> String {
    var body = "<h3>Adversarial erasing</h3>\n" + eraseLossPlot()
    body += "<h3>Segmentation training</h3>\n" + segLossPlot()
    return Markup.section(id: "losses", title: Self.sections[1].title, html: body)
  }

  func eraseLossPlot() -> String {
    let steps = contents.steps.filter { !($0.loss?.points.isEmpty ?? true) }
    guard !steps.isEmpty else {
      return Markup.notRun("no RUN/erase/step-N/loss.csv", hint: "Run `aepsl erase --dataset DATASET --run RUN`.")
    }
    let curves = steps.map { step in
      let status = stepStatus(step)
      return LossTableRow(name: "step \(step.number)", legend: "step \(step.number): \(status.text)", status: status.text,
                          curve: step.loss!, seconds: step.manifest?.seconds, dashed: status.merged == false)
    }
    var out = lossPlotAndTable(curves, title: "Training loss of each erasing step", nameHeader: "step")
    if let erase = contents.erase {
      let merged = contents.mergedSteps.map { $0.map(String.init).joined(separator: ", ") } ?? "?"
      let reason = erase.notes["reason"].map { $0.isEmpty ? "" : " (\($0))" } ?? ""
      out += Markup.note("Merged steps (RUN/erase/manifest.json): \(merged)\(reason).")
      let shares = contents.steps.compactMap { step -> String? in
        guard let all = step.manifest?.notes["erased_fraction"].flatMap(Double.init) else { return nil }
        let new = step.manifest?.notes["newly_erased_fraction"].flatMap(Double.init)
        let added = step.number > 1 ? new.map { String(format: " (+%.1f)", 100 * $0) } ?? "" : ""
        return String(format: "after step %d %.1f%%", step.number, 100 * all) + added
      }
      if !shares.isEmpty {
        out += Markup.note("Share of the training images' pixels erased: " + shares.joined(separator: ", ")
                             + ". A step that adds little found little beyond what was erased before it.")
      }
    } else {
      out += Markup.note("Erasing has not finished (no RUN/erase/manifest.json): which steps are merged is not decided yet.")
    }
    let skipped = steps.reduce(0) { $0 + $1.loss!.skippedRows }
    if skipped > 0 { out += Markup.note("\(skipped) unreadable rows of loss.csv were skipped.") }
    return out
  }

  func segLossPlot() -> String {
    let variants = contents.segVariants.filter { !($0.loss?.points.isEmpty ?? true) }
    guard !variants.isEmpty else {
      return Markup.notRun("no RUN/seg/<variant>/loss.csv", hint: "Run `aepsl train-seg --run RUN`.")
    }
    let curves = variants.map { v in
      LossTableRow(name: v.name, legend: v.name == ModelVariant.full.rawValue ? "full (upper bound)" : v.name,
                   status: v.manifest == nil ? "unfinished" : "done", curve: v.loss!, seconds: v.manifest?.seconds,
                   dashed: v.name == ModelVariant.full.rawValue)
    }
    var out = lossPlotAndTable(curves, title: "Segmentation training loss per variant", nameHeader: "variant")
    let empty = contents.segVariants.filter { $0.loss?.points.isEmpty ?? true }.map(\.name)
    if !empty.isEmpty { out += Markup.note("No loss curve yet for: \(empty.joined(separator: ", ")).") }
    return out
  }

  // MARK: - Predictions

  func predictionsSection() -> String {
    let id = "predictions", title = Self.sections[2].title
    let dir = RunLayout(run: contents.run).predict
    guard contents.predictDirectoryExists else {
      return Markup.section(id: id, title: title, html: Markup.notRun("RUN/predict does not exist", hint: "Run `aepsl predict --run RUN`."))
    }
    let predicted = Set(((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
      .filter { $0.hasSuffix(".png") && !$0.hasPrefix(".") }.map { String($0.dropLast(4)) })
    var ids: [String] = []
    if let listed = try? contents.dataset?.imageIDs(split: contents.predictSplit) { ids = listed.filter(predicted.contains) }
    if ids.isEmpty { ids = predicted.sorted { $0.localizedStandardCompare($1) == .orderedAscending } }
    guard !ids.isEmpty else {
      return Markup.section(id: id, title: title, html: Markup.notRun("RUN/predict holds no prediction", hint: "Run `aepsl predict --run RUN`."))
    }
    var about = "\(predicted.count) predictions in RUN/predict"
    if let v = contents.predictVariant { about += " by the \(v) segmenter" }
    if let s = contents.predict?.parameters["split"], !s.isEmpty { about += " on the \(s) split" }
    if let r = contents.predict?.parameters["refinement"], !r.isEmpty { about += ", refinement: \(r)" }
    var body = Markup.note(about + (contents.predict == nil ? " (the stage has not finished)." : "."))
    body += "<p>" + classLegend(includeSpecial: true) + "</p>\n"
    for (k, imageID) in Self.pickEvenly(ids, count: options.samples).enumerated() {
      let base = "val-\(k)-\(TileWriter.safeName(imageID))"
      body += "<div class=\"sample\"><h3>\(Markup.esc(imageID))</h3><div class=\"strip\">"
      body += imageTile(datasetImage(imageID), name: "\(base)-image")
      body += tile(caption: "prediction", { try tiles.write(LabelMap(contentsOf: dir.appendingPathComponent("\(imageID).png")), name: "\(base)-pred") },
                   missing: "")
      body += groundTruthTile(imageID, name: "\(base)-truth")
      body += "</div></div>\n"
    }
    return Markup.section(id: id, title: title, html: body)
  }

  /// One training run's loss curve as a row of the loss sections.
  struct LossTableRow {
    var name: String
    var legend: String
    var status: String
    var curve: LossCurve
    var seconds: Double?
    var dashed: Bool
  }

  /// The curves in one plot, and a table of each one's first and final loss and time.
  func lossPlotAndTable(_ curves: [LossTableRow], title: String, nameHeader: String) -> String {
    let series = curves.enumerated().map { i, c in
      SVGPlot.Series(label: c.legend, color: SVGPlot.colors[i % SVGPlot.colors.count], points: c.curve.thinned(to: 2000), dashed: c.dashed)
    }
    let rows = curves.map { c in
      [Markup.esc(c.name), Markup.esc(c.status), Markup.esc(c.curve.xLabel), "\(c.curve.points.count)",
       Format.number(c.curve.points.first!.y), Format.number(c.curve.points.last!.y), Markup.esc(c.seconds.map(Format.duration) ?? "—")]
    }
    let xLabels = Set(curves.map(\.curve.xLabel)), yLabels = Set(curves.map(\.curve.yLabel))
    let out = SVGPlot.lines(series, xLabel: xLabels.count == 1 ? xLabels.first! : xLabels.sorted().joined(separator: " / "),
                            yLabel: yLabels.count == 1 ? yLabels.first! : "loss", title: title)
    return out + "\n" + Markup.table(class: "numbers", header: [nameHeader, "status", "x", "points", "first loss", "final loss", "time"], rows: rows)
  }
}
