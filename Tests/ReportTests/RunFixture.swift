import AEPSLData
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import AEPSLMethod
import Foundation

/// A fresh temporary directory.
func temporaryDirectory(_ name: String = #function) throws -> URL {
  let tag = name.filter { $0.isLetter || $0.isNumber }
  let url = FileManager.default.temporaryDirectory
    .appendingPathComponent("aepsl-report-tests-\(tag)-\(UUID().uuidString)", isDirectory: true)
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

func write(_ text: String, to url: URL) throws {
  try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
  try writeFileAtomically(Data(text.utf8), to: url)
}

func makeDirectory(_ url: URL) throws {
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
}

/// A tiny dataset and a run directory written by hand with the library's own writers
/// (Image/LabelMap PNG and JPEG, NumPyArray, StageManifest, EvaluationReport via
/// `Evaluation`), shaped as the stages write them.
///
/// Dataset (40x30 images): classes `cat` and `<i>dog&co</i>` (markup in a class name, to
/// test escaping); train t1 (cat), t2 (dog), t3 (cat, dog), `t4&<x>` (cat; an id with
/// markup characters); val v1, v2, v3. Every image has a ground-truth mask.
///
/// Run, by `Stages`: erase (steps 1-2 merged, step 3 did not converge), masks, seg/psl and
/// seg/psl-plus (loss.csv as train-seg writes it) and seg/full (a loss.csv with junk rows),
/// predict (val), metrics cam / ae-masks / psl-plus / predict (psl, deeplab, full missing),
/// config.json with a value holding a script tag.
struct RunFixture {
  struct Stages: OptionSet {
    let rawValue: Int
    static let erase = Stages(rawValue: 1)
    static let masks = Stages(rawValue: 2)
    static let seg = Stages(rawValue: 4)
    static let predict = Stages(rawValue: 8)
    static let metrics = Stages(rawValue: 16)
    static let config = Stages(rawValue: 32)
    static let all: Stages = [.erase, .masks, .seg, .predict, .metrics, .config]
  }

  static let width = 40, height = 30
  static let classes = ["cat", "<i>dog&co</i>"]
  static let train: [(id: String, labels: [Int])] = [("t1", [0]), ("t2", [1]), ("t3", [0, 1]), ("t4&<x>", [0])]
  static let val: [(id: String, labels: [Int])] = [("v1", [0]), ("v2", [1]), ("v3", [0, 1])]
  static let configNote = "<script>alert(\"x\")</script> & more"

  let root: URL
  let dataset: URL
  let run: URL
  /// The dataset's classes.txt: `RunFixture.classes`, or more to test a wide report (the
  /// images still hold only the first two).
  let classes: [String]

  init(stages: Stages = .all, classes: [String] = RunFixture.classes, name: String = #function) throws {
    self.classes = classes
    root = try temporaryDirectory(name)
    dataset = root.appendingPathComponent("data", isDirectory: true)
    run = root.appendingPathComponent("run", isDirectory: true)
    try makeDirectory(run)
    try writeDataset()
    if stages.contains(.config) { try writeConfig() }
    if stages.contains(.erase) { try writeErase() }
    if stages.contains(.masks) { try writeMasks() }
    if stages.contains(.seg) { try writeSeg() }
    if stages.contains(.predict) { try writePredict() }
    if stages.contains(.metrics) { try writeMetrics(stages) }
  }

  func remove() { try? FileManager.default.removeItem(at: root) }

  var reportDirectory: URL { run.appendingPathComponent("report", isDirectory: true) }

  // MARK: Dataset

  /// Object k of an image: a rectangle in its own third of the image.
  static func box(_ k: Int) -> (x0: Int, y0: Int, x1: Int, y1: Int) { (2 + 13 * k, 6, 12 + 13 * k, 24) }

  static func truth(labels: [Int]) -> LabelMap {
    var values = [UInt8](repeating: 0, count: width * height)
    for (k, c) in labels.enumerated() {
      let b = box(k)
      for y in b.y0..<b.y1 { for x in b.x0..<b.x1 { values[y * width + x] = (x == b.x0 || y == b.y0) ? 255 : UInt8(c + 1) } }
    }
    return LabelMap(width: width, height: height, labels: values)
  }

  static func image(labels: [Int]) -> Image {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    let colors: [[UInt8]] = [[220, 60, 40], [40, 90, 220]]
    let truth = truth(labels: labels)
    for p in 0..<(width * height) {
      let l = truth.labels[p]
      let c: [UInt8] = (l == 0 || l == 255) ? [UInt8(90 + p % width), 140, UInt8(60 + p / width * 2)] : colors[Int(l) - 1]
      pixels[3 * p] = c[0]; pixels[3 * p + 1] = c[1]; pixels[3 * p + 2] = c[2]
    }
    return Image(width: width, height: height, channels: 3, pixels: pixels)
  }

  func annotationXML(_ labels: [Int]) -> String {
    var xml = "<?xml version=\"1.0\"?>\n<annotation>\n<size><width>\(Self.width)</width><height>\(Self.height)</height><depth>3</depth></size>\n"
    for c in labels {
      let name = classes[c].replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;")
      xml += "<object><name>\(name)</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>\n"
    }
    return xml + "</annotation>\n"
  }

  func writeDataset() throws {
    try write(classes.joined(separator: "\n") + "\n", to: dataset.appendingPathComponent("classes.txt"))
    for (id, labels) in Self.train + Self.val {
      try makeDirectory(dataset.appendingPathComponent("JPEGImages"))
      try Self.image(labels: labels).write(to: dataset.appendingPathComponent("JPEGImages/\(id).jpg"))
      try write(annotationXML(labels), to: dataset.appendingPathComponent("Annotations/\(id).xml"))
      try makeDirectory(dataset.appendingPathComponent("SegmentationClass"))
      try Self.truth(labels: labels).write(to: dataset.appendingPathComponent("SegmentationClass/\(id).png"))
    }
    try write(Self.train.map(\.id).joined(separator: "\n") + "\n", to: dataset.appendingPathComponent("ImageSets/Segmentation/train.txt"))
    try write(Self.val.map(\.id).joined(separator: "\n") + "\n", to: dataset.appendingPathComponent("ImageSets/Segmentation/val.txt"))
  }

  func writeConfig() throws {
    let config: [String: Any] = ["dataset": dataset.path, "net": "tiny", "note": Self.configNote, "max_steps": 4, "cam_flip": false]
    try writeFileAtomically(try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]),
                            to: run.appendingPathComponent("config.json"))
  }

  // MARK: Erasing

  /// A CAM peaking at the object's centre, shifted right as the steps go on (the classifier
  /// of a later step finds another part), normalised to a maximum of 1.
  static func cam(objectIndex k: Int, step: Int) -> [Float] {
    let b = box(k)
    let cx = Float(b.x0 + b.x1) / 2 + Float(step - 1) * 2, cy = Float(b.y0 + b.y1) / 2 - 4 + Float(step - 1) * 4
    return (0..<(width * height)).map { p in
      let (x, y) = (Float(p % width), Float(p / width))
      return exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / 18)
    }
  }

  func writeErase() throws {
    let layout = EraseLayout(run: run)
    try makeDirectory(layout.root)
    try writeFileAtomically(try JSONEncoder().encode([UInt8]([120, 130, 110])), to: layout.meanPixelFile)
    let started = Date(timeIntervalSince1970: 1_800_000_000)
    for step in 1...3 {
      try makeDirectory(layout.step(step))
      let losses = (1...8).map { e in step == 3 ? 0.66 - 0.001 * Double(e) : 0.65 * pow(0.8, Double(e)) + 0.05 * Double(step) }
      try write("epoch,loss\n" + losses.enumerated().map { "\($0.offset + 1),\($0.element)" }.joined(separator: "\n") + "\n",
                to: layout.lossCurve(step))
      if step == 3 {
        try StageManifest(stage: "erase-step", parameters: ["step": "3"], inputs: [], startedAt: started,
                          finishedAt: started.addingTimeInterval(30),
                          notes: ["final_loss": "\(losses.last!)", "converged": "false", "reason": "step 3 did not converge"])
          .write(to: layout.step(step))
        continue
      }
      try makeDirectory(layout.step(step).appendingPathComponent("cams"))
      try makeDirectory(layout.step(step).appendingPathComponent("erased"))
      for (id, labels) in Self.train {
        let maps = labels.indices.map { Self.cam(objectIndex: $0, step: step) }
        try NumPyArray.write(maps.flatMap { $0 }, shape: [labels.count, Self.height, Self.width], to: layout.cam(step, id))
        var erased = [UInt8](repeating: 0, count: Self.width * Self.height)
        for s in 1...step { for k in labels.indices { for (p, v) in Self.cam(objectIndex: k, step: s).enumerated() where v >= 0.8 { erased[p] = 1 } } }
        try LabelMap(width: Self.width, height: Self.height, labels: erased).write(to: layout.erased(step, id))
      }
      try StageManifest(stage: "erase-step", parameters: ["step": "\(step)"], inputs: [dataset.path], startedAt: started,
                        finishedAt: started.addingTimeInterval(61),
                        notes: ["final_loss": "\(losses.last!)", "converged": "true", "erased_fraction": step == 1 ? "0.117" : "0.145",
                                "newly_erased_fraction": step == 1 ? "0.117" : "0.028"])
        .write(to: layout.step(step))
    }
    // What aepsl erase records of its settings: the dataset (absolute), split, rule, delta.
    try writeFileAtomically(JSONEncoder().encode(EraseConfiguration(dataset: dataset.path)), to: layout.configurationFile)
    try StageManifest(stage: "erase", parameters: ["dataset": dataset.path, "split": "train", "net": "tiny", "rule": "max-ratio", "delta": "0.2"],
                      inputs: [dataset.path], startedAt: started, finishedAt: started.addingTimeInterval(200),
                      notes: ["merged_steps": "1,2", "reason": "step 3 did not converge: merged steps 1-2",
                              "classes": classes.joined(separator: ",")])
      .write(to: layout.root)
  }

  // MARK: Later stages

  func writeMasks() throws {
    let dir = run.appendingPathComponent("masks", isDirectory: true)
    try makeDirectory(dir)
    for (id, labels) in Self.train {
      var mask = Self.truth(labels: labels)
      mask.withUnsafeMutableLabels { l in for p in 0..<l.count where p % Self.width > 36 { l[p] = 255 } }
      try mask.write(to: dir.appendingPathComponent("\(id).png"))
    }
    try StageManifest(stage: "masks", parameters: ["steps": "1,2"], inputs: ["erase"], startedAt: Date(timeIntervalSince1970: 1_800_000_200),
                      finishedAt: Date(timeIntervalSince1970: 1_800_000_212)).write(to: dir)
  }

  func writeSeg() throws {
    let seg = run.appendingPathComponent("seg", isDirectory: true)
    let header = "epoch,total,classification,segmentation,online,online_agreement,learning_rate"
    for (variant, scale) in [("psl", 1.0), ("psl-plus", 0.8)] {
      let dir = seg.appendingPathComponent(variant)
      try makeDirectory(dir)
      let rows = (1...12).map { e in
        let total = scale * (1.5 * pow(0.85, Double(e)) + 0.2)
        return "\(e),\(total),\(total * 0.1),\(total * 0.5),\(total * 0.4),0.9,0.02"
      }
      try write(header + "\n" + rows.joined(separator: "\n") + "\n", to: dir.appendingPathComponent("loss.csv"))
      try StageManifest(stage: "train-seg", parameters: ["variant": variant], inputs: [], startedAt: Date(timeIntervalSince1970: 1_800_001_000),
                        finishedAt: Date(timeIntervalSince1970: 1_800_001_125)).write(to: dir)
    }
    // A fully supervised run still training (no manifest yet), its loss.csv with junk rows.
    let full = seg.appendingPathComponent("full")
    try makeDirectory(full)
    try write("iteration,loss\n10,1.2\nnot,a row\n20,0.9\n30,nan\n\n40,0.7\n", to: full.appendingPathComponent("loss.csv"))
    // The second round's masks: a stage of its own, not a variant.
    let plusMasks = seg.appendingPathComponent("psl-plus-masks")
    try makeDirectory(plusMasks)
    try StageManifest(stage: "psl-plus-masks", parameters: [:], inputs: [], startedAt: Date(timeIntervalSince1970: 1_800_001_125),
                      finishedAt: Date(timeIntervalSince1970: 1_800_001_140)).write(to: plusMasks)
  }

  func writePredict() throws {
    let dir = run.appendingPathComponent("predict", isDirectory: true)
    try makeDirectory(dir)
    for (id, labels) in Self.val {
      var mask = Self.truth(labels: labels)
      mask.withUnsafeMutableLabels { l in for p in 0..<l.count where l[p] == 255 { l[p] = 0 } }
      mask.withUnsafeMutableLabels { l in for p in 0..<60 { l[p] = 1 } }
      try mask.write(to: dir.appendingPathComponent("\(id).png"))
    }
    try StageManifest(stage: "predict", parameters: ["split": "val", "variant": "psl-plus", "refinement": "crf"], inputs: [],
                      startedAt: Date(timeIntervalSince1970: 1_800_002_000), finishedAt: Date(timeIntervalSince1970: 1_800_002_009))
      .write(to: dir)
  }

  func writeMetrics(_ stages: Stages) throws {
    let metrics = run.appendingPathComponent("metrics", isDirectory: true)
    try makeDirectory(metrics)
    let data = try AEPSLData.VOCDataset(root: dataset)
    let options = ProgressReporter.Options(quiet: true)
    if stages.contains(.erase) {
      try Evaluation.cams(run: run, progress: options).write(to: metrics.appendingPathComponent("cam.json"))
    }
    if stages.contains(.masks) {
      try Evaluation.labelMaps(predictions: run.appendingPathComponent("masks"), dataset: data, split: "train", progress: options)
        .write(to: metrics.appendingPathComponent("ae-masks.json"))
    }
    if stages.contains(.predict) {
      let report = try Evaluation.labelMaps(predictions: run.appendingPathComponent("predict"), dataset: data, split: "val", progress: options)
      try report.write(to: metrics.appendingPathComponent("psl-plus.json"))
      try report.write(to: metrics.appendingPathComponent("predict.json"))
    }
  }
}

