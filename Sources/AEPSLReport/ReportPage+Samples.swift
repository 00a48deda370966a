import AEPSLData
import AEPSLEngine
import AEPSLImaging
import AEPSLMethod
import Foundation

/// The erasing section: each sample image step by step (CAMs, erased region, pseudo mask).
extension ReportPage {
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
    out += "</h3>\n<div class=\"scroll\"><table class=\"tiles\"><thead><tr><th></th>"
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
    out += "</tbody></table></div>\n<div class=\"strip\">"
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
}
