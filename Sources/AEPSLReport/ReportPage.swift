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
  private(set) var problems: [String] = []

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
      let counts = [split, "val"].compactMap { s in (try? dataset.imageIDs(split: s)).map { "\($0.count) \(s)" } }
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
    var versions = Set(contents.manifests.compactMap(\.version))
    versions.remove(aepslVersion)
    let versionText = "report by aepsl \(aepslVersion)" + (versions.isEmpty ? "" : "; stages written by aepsl \(versions.sorted().joined(separator: ", "))")
    facts.append(("Version", Markup.esc(versionText)))

    var out = "<header>\n<h1>aepsl run report: \(Markup.esc(contents.run.lastPathComponent))</h1>\n"
    out += "<p class=\"note\">Adversarial Erasing with Prohibitive Segmentation Learning (Wei et al., CVPR 2017).</p>\n"
    out += "<nav>" + Self.sections.map { "<a href=\"#\(Markup.esc($0.id))\">\(Markup.esc($0.title))</a>" }.joined() + "</nav>\n"
    out += Markup.definitions(facts)
    out += "\n<h2 id=\"config\">Configuration</h2>\n"
    out += configuration()
    out += "\n</header>\n"
    return out
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
                 rows: pairs.map { [Markup.esc($0.0), "<span class=\"mono\">\(Markup.esc($0.1))</span>"] })
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

  // MARK: - Adversarial erasing, image by image

  func trainingSampleIDs() -> [String] {
    guard let first = contents.steps.first else { return [] }
    let camDir = first.directory.appendingPathComponent("cams", isDirectory: true)
    let withCAMs = Set(((try? FileManager.default.contentsOfDirectory(atPath: camDir.path)) ?? [])
      .filter { $0.hasSuffix(".npy") }.map { String($0.dropLast(4)) })
    var ids: [String] = []
    if let dataset = contents.dataset, let listed = try? dataset.imageIDs(split: contents.eraseSplit) {
      ids = withCAMs.isEmpty ? listed : listed.filter(withCAMs.contains)
    }
    if ids.isEmpty { ids = withCAMs.sorted { $0.localizedStandardCompare($1) == .orderedAscending } }
    return Self.pickEvenly(ids, count: options.samples)
  }

  func stepStatus(_ step: StepInfo) -> (text: String, merged: Bool?) {
    if step.converged == false { return ("did not converge: not merged", false) }
    if let merged = contents.mergedSteps { return merged.contains(step.number) ? ("merged", true) : ("not merged", false) }
    if step.manifest != nil { return ("done", nil) }
    return ("unfinished", nil)
  }

  func samplesSection() -> String {
    let id = "samples", title = Self.sections[0].title
    guard !contents.steps.isEmpty else {
      return Markup.section(id: id, title: title, html: Markup.notRun("RUN/erase has no step directory",
                                                                      hint: "Run `aepsl erase --dataset DATASET --run RUN`."))
    }
    var body = Markup.note("For each step: the class activation map of every label of the image (jet colour map over the image the step's classifier saw: red is strong) and the region erased so far (set to the training set's mean pixel, as the next step sees the image). Then the pseudo mask built from the merged steps, and the ground truth (never used for training).")
    if contents.erase == nil { body += Markup.note("The erasing stage has not finished (no RUN/erase/manifest.json): the steps so far are shown.") }
    if contents.dataset == nil, let why = contents.datasetProblem { body += problem("Images and ground truth are not shown: \(why).") }
    body += "<p>Masks: " + classLegend(includeSpecial: true) + "</p>\n"
    let ids = trainingSampleIDs()
    if options.samples == 0 { body += Markup.note("--samples 0: no image is shown.") }
    else if ids.isEmpty { body += Markup.notRun("no CAM in RUN/erase/step-1/cams", hint: "Let `aepsl erase` finish its first step.") }
    for (k, sampleID) in ids.enumerated() { body += trainingSample(sampleID, index: k) }
    return Markup.section(id: id, title: title, html: body)
  }

  func trainingSample(_ id: String, index k: Int) -> String {
    let base = "train-\(k)-\(TileWriter.safeName(id))"
    let loaded = datasetImage(id)
    let image = loaded.image
    let labels = contents.dataset.flatMap { try? $0.annotation(id).labels }
    let labelNames = labels?.map { $0 < contents.classNames.count ? contents.classNames[$0] : "class \($0 + 1)" }
    // How many maps a CAM file of this image holds (the labels, or what the first file says).
    var mapCount = labels?.count ?? 0
    if mapCount == 0, let first = contents.steps.first,
       let cams = try? NumPyArray.read(contentsOf: contents.eraseLayout.cam(first.number, id)), cams.shape.count == 3 {
      mapCount = cams.shape[0]
    }
    let columnNames = (0..<mapCount).map { i in labelNames.flatMap { i < $0.count ? $0[i] : nil } ?? "map \(i + 1)" }

    var out = "<div class=\"sample\">\n<h3>\(Markup.esc(id))"
    if let labelNames { out += " <span class=\"note\">labels: \(Markup.esc(labelNames.joined(separator: ", ")))</span>" }
    out += "</h3>\n<table class=\"tiles\"><thead><tr><th></th>"
    out += columnNames.map { "<th>CAM: \(Markup.esc($0))</th>" }.joined() + "<th>erased so far</th></tr></thead>\n<tbody>\n"
    for step in contents.steps {
      let status = stepStatus(step)
      let cls = status.merged == true ? "merged" : (status.merged == false ? "notmerged" : "note")
      out += "<tr><th scope=\"row\">step \(step.number)<br><span class=\"\(cls)\">\(Markup.esc(status.text))</span></th>"
      if step.converged == false {
        out += "<td colspan=\"\(columnNames.count + 1)\"><p class=\"note\">This step's classifier did not converge, so it mined no region (no CAMs).</p></td></tr>\n"
        continue
      }
      let fm = FileManager.default
      if step.manifest == nil, !fm.fileExists(atPath: contents.eraseLayout.cam(step.number, id).path),
         !fm.fileExists(atPath: contents.eraseLayout.erased(step.number, id).path) {
        out += "<td colspan=\"\(columnNames.count + 1)\"><p class=\"note\">No CAM for this image yet: the step is still running.</p></td></tr>\n"
        continue
      }
      out += stepCells(step, id: id, image: image, seen: erasedImage(image, id: id, before: step.number), columns: columnNames, base: base)
        + "</tr>\n"
    }
    out += "</tbody></table>\n<div class=\"strip\">"
    out += imageTile(loaded, name: "\(base)-image")
    let maskURL = RunLayout(run: contents.run).masks.appendingPathComponent("\(id).png")
    if FileManager.default.fileExists(atPath: maskURL.path) {
      out += tile(caption: "pseudo mask", { try tiles.write(LabelMap(contentsOf: maskURL), name: "\(base)-mask") }, missing: "")
    } else {
      let why = RunContents.isDirectory(RunLayout(run: contents.run).masks) ? "no mask for this image" : "not run yet: aepsl masks --run RUN"
      out += placeholder(why, caption: "pseudo mask")
    }
    out += groundTruthTile(id, name: "\(base)-truth")
    return out + "</div>\n</div>\n"
  }

  /// The image as the classifier of step `t` saw it: erased up to the step before, or nil
  /// when that is unknown.
  func erasedImage(_ image: Image?, id: String, before t: Int) -> Image? {
    guard let image else { return nil }
    guard let previous = contents.steps.last(where: { $0.number < t && $0.converged != false }) else { return image }
    guard let region = try? LabelMap(contentsOf: contents.eraseLayout.erased(previous.number, id)),
          region.width == image.width, region.height == image.height else { return nil }
    return EraseStage.erase(image, where: region, with: contents.meanPixel)
  }

  /// The CAM tiles (over `seen`, the image the step's classifier was given; over the original
  /// image when that is unknown) and the erased-region tile of one step.
  func stepCells(_ step: StepInfo, id: String, image: Image?, seen: Image?, columns: [String], base: String) -> String {
    var out = ""
    let camURL = contents.eraseLayout.cam(step.number, id)
    var cams: Tensor?
    var camProblem: String?
    if FileManager.default.fileExists(atPath: camURL.path) {
      do {
        let t = try NumPyArray.read(contentsOf: camURL)
        if t.shape.count == 3 { cams = t } else { camProblem = "shape \(t.shape), expected [labels, H, W]" }
      } catch {
        camProblem = "\(error)"
      }
    }
    if let camProblem { problems.append("\(camURL.path): \(camProblem)") }
    for (i, name) in columns.enumerated() {
      let caption = "step \(step.number) CAM: \(name)"
      guard let cams else {
        out += "<td>" + placeholder(camProblem.map { "unreadable CAM: \($0)" } ?? "no CAM file", caption: caption) + "</td>"
        continue
      }
      let (h, w) = (cams.shape[1], cams.shape[2])
      guard i < cams.shape[0] else {
        out += "<td>" + placeholder("the CAM file holds \(cams.shape[0]) maps", caption: caption) + "</td>"
        continue
      }
      let plane = Array(cams.values[(i * w * h)..<((i + 1) * w * h)])
      out += "<td>" + tile(caption: caption, {
        let heat = (seen ?? image).map { $0.overlaying(heatmap: plane, width: w, height: h) }
          ?? ColorMap.jet.image(values: plane, width: w, height: h)
        return try tiles.write(heat, name: "\(base)-step\(step.number)-cam\(i)")
      }, missing: "") + "</td>"
    }
    let erasedURL = contents.eraseLayout.erased(step.number, id)
    let caption = "erased after step \(step.number)"
    if FileManager.default.fileExists(atPath: erasedURL.path) {
      out += "<td>" + tile(caption: caption, {
        let region = try LabelMap(contentsOf: erasedURL)
        if let image, image.width == region.width, image.height == region.height {
          return try tiles.write(EraseStage.erase(image, where: region, with: contents.meanPixel), name: "\(base)-step\(step.number)-erased")
        }
        return try tiles.write(region, name: "\(base)-step\(step.number)-erased")
      }, missing: "") + "</td>"
    } else {
      out += "<td>" + placeholder("no erased region yet", caption: caption) + "</td>"
    }
    return out
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
    var series: [SVGPlot.Series] = []
    var rows: [[String]] = []
    for (i, step) in steps.enumerated() {
      let status = stepStatus(step)
      let points = step.loss!.thinned(to: 2000)
      series.append(SVGPlot.Series(label: "step \(step.number): \(status.text)", color: SVGPlot.colors[i % SVGPlot.colors.count],
                                   points: points, dashed: status.merged == false))
      let all = step.loss!.points
      rows.append([Markup.esc("step \(step.number)"), Markup.esc(status.text), "\(all.count)",
                   Format.number(all.first!.y), Format.number(all.last!.y),
                   Markup.esc(step.manifest?.seconds.map(Format.duration) ?? "—")])
    }
    let xLabel = Set(steps.map { $0.loss!.xLabel }).count == 1 ? steps[0].loss!.xLabel : "epoch"
    var out = SVGPlot.lines(series, xLabel: xLabel, yLabel: steps[0].loss!.yLabel, title: "Training loss of each erasing step")
    out += "\n" + Markup.table(class: "numbers", header: ["step", "status", "epochs", "first loss", "final loss", "time"], rows: rows)
    if let erase = contents.erase {
      let merged = contents.mergedSteps.map { $0.map(String.init).joined(separator: ", ") } ?? "?"
      let reason = erase.notes["reason"].map { $0.isEmpty ? "" : " (\($0))" } ?? ""
      out += Markup.note("Merged steps (RUN/erase/manifest.json): \(merged)\(reason).")
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
    var series: [SVGPlot.Series] = []
    var rows: [[String]] = []
    for (i, v) in variants.enumerated() {
      let loss = v.loss!
      series.append(SVGPlot.Series(label: v.name == ModelVariant.full.rawValue ? "full (upper bound)" : v.name, color: SVGPlot.colors[i % SVGPlot.colors.count], points: loss.thinned(to: 2000),
                                   dashed: v.name == ModelVariant.full.rawValue))
      rows.append([Markup.esc(v.name), Markup.esc(v.manifest == nil ? "unfinished" : "done"), Markup.esc(loss.xLabel), "\(loss.points.count)",
                   Format.number(loss.points.first!.y), Format.number(loss.points.last!.y),
                   Markup.esc(v.manifest?.seconds.map(Format.duration) ?? "—")])
    }
    let xLabels = Set(variants.map { $0.loss!.xLabel })
    let yLabels = Set(variants.map { $0.loss!.yLabel })
    var out = SVGPlot.lines(series, xLabel: xLabels.count == 1 ? xLabels.first! : xLabels.sorted().joined(separator: " / "),
                            yLabel: yLabels.count == 1 ? yLabels.first! : "loss", title: "Segmentation training loss per variant")
    out += "\n" + Markup.table(class: "numbers", header: ["variant", "status", "x", "points", "first loss", "final loss", "time"], rows: rows)
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
    body += "<div style=\"overflow-x:auto\"><table class=\"numbers\">\n<thead><tr>" + header.map { "<th>\(Markup.esc($0))</th>" }.joined()
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
