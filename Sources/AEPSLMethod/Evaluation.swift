import AEPSLData
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation

/// Scores of a set of label maps against the ground truth of a split.
public struct EvaluationReport: Sendable, Codable {
  public var split: String
  public var images: Int
  public var classNames: [String]
  public var meanIoU: Double
  public var pixelAccuracy: Double
  /// Per class including background; nil (JSON null) for classes absent from truth and prediction.
  public var iou: [Double?]
  /// Of the pixels a prediction labels (not 255), the fraction right: the pseudo-mask view.
  public var precision: Double
  /// Of the ground-truth-labelled pixels, the fraction a prediction labels at all.
  public var coverage: Double
  public var confusion: [[Int]]
  /// For `--cams`: the background threshold whose mIoU is reported, and the whole sweep.
  public var backgroundThreshold: Double?
  public var sweep: [String: Double]?

  init(split: String, images: Int, classNames: [String], matrix: ConfusionMatrix) {
    self.split = split
    self.images = images
    self.classNames = classNames
    meanIoU = matrix.meanIoU()
    pixelAccuracy = matrix.pixelAccuracy()
    iou = matrix.intersectionOverUnion()
    precision = matrix.precision()
    coverage = matrix.coverage()
    confusion = (0..<matrix.classes).map { t in (0..<matrix.classes).map { matrix.count(truth: t, predicted: $0) } }
  }

  /// A table for the console.
  public var table: String {
    var lines = [String(format: "%@: %d images, mIoU %.2f, pixel accuracy %.2f, precision %.2f, coverage %.2f",
                        split, images, meanIoU * 100, pixelAccuracy * 100, precision * 100, coverage * 100)]
    if let t = backgroundThreshold { lines.append(String(format: "best background threshold %.2f", t)) }
    for (name, v) in zip(classNames, iou) {
      lines.append("  \(name.padding(toLength: 14, withPad: " ", startingAt: 0)) " + (v.map { String(format: "%6.2f", $0 * 100) } ?? "     -"))
    }
    return lines.joined(separator: "\n")
  }

  public func write(to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try writeFileAtomically(try encoder.encode(self), to: url)
  }
}

public enum Evaluation {
  /// Compares `<pred>/<id>.png` with the ground truth for every image of `split` but those
  /// the predictions' manifest lists as skipped.
  /// `ids`, when given, are the images to score instead (e.g. those with a ground truth).
  public static func labelMaps(predictions pred: URL, dataset: VOCDataset, split: String, ids chosen: [String]? = nil,
                               progress: ProgressReporter.Options = .init()) throws -> EvaluationReport {
    // Images the predicting stage left out as bad (--on-bad-image skip, listed in its
    // manifest) have no prediction and are not scored; any other missing one is an error.
    let skipped = (try? StageManifest.read(from: pred))?.skippedIDs ?? []
    let ids = try (chosen ?? dataset.imageIDs(split: split)).filter { !skipped.contains($0) }
    var matrix = ConfusionMatrix(classes: dataset.classes.count + 1)
    let bar = ProgressReporter("eval", total: ids.count, unit: "images", options: progress)
    var scored = 0
    for id in ids {
      defer { bar.advance() }
      let url = pred.appendingPathComponent("\(id).png")
      guard FileManager.default.fileExists(atPath: url.path) else {
        throw AEPSLError(file: url.path, problem: "is missing (the split lists '\(id)')",
                          fix: "Predict every image of the split, or evaluate the split the predictions were made for.")
      }
      let p = try LabelMap(contentsOf: url)
      let truth = try dataset.groundTruthMask(id)
      guard p.width == truth.width && p.height == truth.height else {
        throw AEPSLError(file: url.path, problem: "is \(p.width)x\(p.height) but the ground truth is \(truth.width)x\(truth.height)",
                          fix: "Predict at the images' own size.")
      }
      if let bad = p.labels.first(where: { Int($0) > dataset.classes.count && $0 != 255 }) {
        throw AEPSLError(file: url.path, problem: "holds label \(bad), which is no class", fix: "Check classes.txt.")
      }
      matrix.add(truth: truth.labels, predicted: p.labels)
      scored += 1
    }
    bar.finish()
    return EvaluationReport(split: split, images: scored, classNames: ["background"] + dataset.classes.names, matrix: matrix)
  }

  /// Scores the CAMs of erasing step `step` as WSSS papers do: per pixel the labelled class
  /// with the highest normalised CAM, background where that CAM is below a threshold; the
  /// threshold is swept and the best mIoU reported with the sweep.
  public static func cams(run: URL, step: Int = 1, thresholds: [Float] = stride(from: 0.05, through: 0.6, by: 0.05).map { Float($0) },
                          progress: ProgressReporter.Options = .init()) throws -> EvaluationReport {
    let layout = EraseLayout(run: run)
    // The dataset and split from the erasing configuration, or (runs made before it was
    // recorded) the manifest's parameters.
    guard let manifest = try StageManifest.read(from: layout.root),
          let path = try EraseStage.configuration(run: run)?.dataset ?? manifest.parameters["dataset"] else {
      throw AEPSLError(file: layout.root.path, problem: "has no finished erasing stage", fix: "Run `aepsl erase` first.")
    }
    let split = try EraseStage.configuration(run: run)?.split ?? manifest.parameters["split"] ?? "train"
    let dataset = try VOCDataset(root: URL(fileURLWithPath: path))
    let set = try dataset.classificationSet(split: split)
    var matrices = thresholds.map { _ in ConfusionMatrix(classes: dataset.classes.count + 1) }
    let bar = ProgressReporter("eval CAMs", total: set.count, unit: "images", options: progress)
    for sample in set.samples {
      defer { bar.advance() }
      let cams = try NumPyArray.read(contentsOf: layout.cam(step, sample.id))
      let truth = try dataset.groundTruthMask(sample.id)
      let (k, plane) = (sample.labels.count, truth.width * truth.height)
      guard cams.shape == [k, truth.height, truth.width] else {
        throw AEPSLError(file: layout.cam(step, sample.id).path, problem: "has shape \(cams.shape)",
                          fix: "Delete \(layout.step(step).path) and rerun `aepsl erase`.")
      }
      let v = cams.values
      var best = [Float](repeating: 0, count: plane), arg = [UInt8](repeating: 0, count: plane)
      for (i, c) in sample.labels.enumerated() {
        for p in 0..<plane where v[i * plane + p] > best[p] { best[p] = v[i * plane + p]; arg[p] = UInt8(c + 1) }
      }
      for (ti, t) in thresholds.enumerated() {
        matrices[ti].add(truth: truth.labels, predicted: (0..<plane).map { best[$0] >= t ? arg[$0] : 0 })
      }
    }
    bar.finish()
    let scores = matrices.map { $0.meanIoU() }
    let bestIndex = scores.indices.max { scores[$0] < scores[$1] } ?? 0
    var report = EvaluationReport(split: split, images: set.count, classNames: ["background"] + dataset.classes.names,
                                  matrix: matrices[bestIndex])
    report.backgroundThreshold = Double(thresholds[bestIndex])
    report.sweep = Dictionary(uniqueKeysWithValues: zip(thresholds.map { String(format: "%.2f", $0) }, scores))
    return report
  }
}
