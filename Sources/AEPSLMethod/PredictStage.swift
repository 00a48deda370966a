import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation

/// What `aepsl predict` reads and writes (docs/METHOD.md 1.4).
public struct PredictConfiguration: Sendable, Equatable {
  /// The segmenter (segmenter.safetensors written by train-seg).
  public var checkpoint: String
  /// Images: a dataset split, or every JPEG/PNG in `images`.
  public var dataset: String?
  public var split = "val"
  public var images: String?
  public var output: String
  /// Confidences below this are set to 0 (the paper's p = 0.1).
  public var confidenceThreshold: Float = 0.1
  /// Also write the labels blended over the image, OUT/overlay/<id>.jpg.
  public var overlay = false
  /// A missing or unreadable image: stop (`fail`), or predict the others and list it in the
  /// manifest (`skip`), where evaluation finds it and leaves it out of the scores.
  public var onBadImage = BadImagePolicy.fail
  /// Label maps this checkpoint already made of the same images with the same settings
  /// (`aepsl run`'s RUN/predictions/<final model>): read from here rather than computed
  /// again, so that only the overlays are new.
  public var sameLabelsIn: String?

  public init(checkpoint: String, output: String) {
    self.checkpoint = checkpoint
    self.output = output
  }
}

public enum PredictStage {
  /// The order in which `--model` is chosen when not given: the last PSL round first;
  /// the fully supervised upper bound is never chosen without being asked for.
  public static let defaultModelOrder: [ModelVariant] = [.pslPlus, .psl, .deeplab]

  /// The checkpoint of `model` or, without one, of the first finished variant in
  /// `defaultModelOrder`.
  public static func checkpoint(run: URL, model: ModelVariant?) throws -> URL {
    let layout = RunLayout(run: run).segmentation
    func ready(_ variant: ModelVariant) -> Bool {
      (try? StageManifest.read(from: layout.directory(variant))) != nil
        && FileManager.default.fileExists(atPath: layout.checkpoint(variant).path)
    }
    if let model {
      guard ready(model) else {
        throw AEPSLError(file: layout.directory(model).path, problem: "holds no finished segmenter",
                          fix: "Train it first (`aepsl train-seg --run \(run.path) ...`), or pick another --model.")
      }
      return layout.checkpoint(model)
    }
    guard let found = defaultModelOrder.first(where: ready) else {
      throw AEPSLError(file: layout.root.path,
                        problem: "holds no finished segmenter (looked for \(defaultModelOrder.map(\.rawValue).joined(separator: ", ")))",
                        fix: "Run `aepsl train-seg --run \(run.path)` first, or give --model or --checkpoint.")
    }
    return layout.checkpoint(found)
  }

  /// The images to predict: (id, file) in order.
  static func inputs(_ config: PredictConfiguration, classes: [String]) throws -> [(String, URL)] {
    if let path = config.dataset {
      let dataset = try VOCDataset(root: URL(fileURLWithPath: path))
      guard dataset.classes.names == classes else {
        throw AEPSLError(file: dataset.root.path,
                          problem: "has the classes \(dataset.classes.names.joined(separator: ", ")) but the model was trained on \(classes.joined(separator: ", "))",
                          fix: "Predict a dataset with the model's classes, or use --images DIR.")
      }
      let ids = try dataset.imageIDs(split: config.split)
      if config.onBadImage == .fail {
        for id in ids where !FileManager.default.fileExists(atPath: dataset.imageURL(id).path) {
          throw AEPSLError(file: dataset.imageURL(id).path, problem: "is missing (the split lists '\(id)')",
                            fix: "Copy the image into JPEGImages/, remove it from the list, or pass --on-bad-image skip.")
        }
      }
      return ids.map { ($0, dataset.imageURL($0)) }
    }
    guard let dir = config.images else {
      throw AEPSLError(file: config.output, problem: "has no images to predict", fix: "Give --dataset DIR --split S, or --images DIR.")
    }
    let url = URL(fileURLWithPath: dir)
    let names: [String]
    do {
      names = try FileManager.default.contentsOfDirectory(atPath: url.path)
    } catch {
      throw AEPSLError(file: url.path, problem: "cannot be listed (\(error.localizedDescription))", fix: "Give a directory of JPEG or PNG images.")
    }
    var seen: [String: String] = [:]
    var out: [(String, URL)] = []
    for name in names.sorted() where ["jpg", "jpeg", "png"].contains((name as NSString).pathExtension.lowercased()) {
      let id = (name as NSString).deletingPathExtension
      if let other = seen[id] {
        throw AEPSLError(file: url.appendingPathComponent(name).path, problem: "has the same id as \(other)",
                          fix: "Keep one image per name: the prediction is written as <id>.png.")
      }
      seen[id] = name
      out.append((id, url.appendingPathComponent(name)))
    }
    guard !out.isEmpty else {
      throw AEPSLError(file: url.path, problem: "holds no .jpg, .jpeg or .png image", fix: "Give a directory of images.")
    }
    return out
  }

  /// Writes OUT/<id>.png (palette PNG, 0 background, 1...C) for every image, and with
  /// `overlay` OUT/overlay/<id>.jpg. Resumes an interrupted run (images already written are
  /// kept); a finished one with the same settings does nothing. Returns the output directory.
  /// `sharding`: only the images of this rank and shard (`StageSharding`); each label map
  /// is the one a single process writes.
  @discardableResult
  public static func run(_ config: PredictConfiguration, refinement: Refinement = .argmax,
                         progress: ProgressReporter.Options = .init(), log: @escaping (String) -> Void = { print($0) },
                         sharding: StageSharding = .single) throws -> URL {
    let log = sharding.communicator.rootOnly(log)
    let progress = progress.onlyOn(sharding.communicator)
    let checkpoint = URL(fileURLWithPath: config.checkpoint)
    let out = URL(fileURLWithPath: config.output)
    let info = try SegmenterInfo(checkpoint: checkpoint)
    let parameters = [
      "checkpoint": checkpoint.standardizedFileURL.path, "checkpoint_trained": SegmentationStage.trainedAt(checkpoint),
      "variant": info.variant,
      "dataset": config.dataset.map(absolutePath) ?? "", "split": config.dataset == nil ? "" : config.split, "images": config.images.map(absolutePath) ?? "",
      "confidence": "\(config.confidenceThreshold)",
      "weighting": info.classificationTrained ? "confidences" : "none (classification branch not trained)",
      "refinement": refinement.description, "overlay": config.overlay ? "on" : "off",
    ]
    if try StageManifest.finished(in: out, parameters: parameters, elsewhere: "choose another --out") != nil {
      log("predict: already done in \(out.path)")
      return out
    }
    let started = Date()
    let inputs = try inputs(config, classes: info.classNames)
    try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
    sweepTemporaries(out, stage: "predict", log: log)
    let overlayDirectory = out.appendingPathComponent("overlay", isDirectory: true)
    if config.overlay { try FileManager.default.createDirectory(at: overlayDirectory, withIntermediateDirectories: true) }
    let inference = try info.inference(from: checkpoint, threshold: config.confidenceThreshold)
    log("predict: \(inputs.count) images with \(info.variant.isEmpty ? checkpoint.path : info.variant) (\(info.net)), "
        + (info.classificationTrained ? "confidences below \(config.confidenceThreshold) zeroed" : "no confidence weighting")
        + ", refinement: \(refinement.description)")
    let mine = inputs.indices.filter(sharding.mine.contains).map { inputs[$0] }
    let bar = ProgressReporter(sharding.isSharded ? "predict (shard \(sharding.mine))" : "predict", total: mine.count,
                               unit: "images", options: progress)
    var skipped: [SkippedImage] = []
    for (id, url) in mine {
      defer { bar.advance() }
      try Interruption.check(stage: "predict", detail: "the label maps written so far are kept in \(out.path)")
      let target = out.appendingPathComponent("\(id).png")
      let overlay = overlayDirectory.appendingPathComponent("\(id).jpg")
      let fm = FileManager.default
      if fm.fileExists(atPath: target.path) && (!config.overlay || fm.fileExists(atPath: overlay.path)) { continue }
      let image: Image
      do {
        image = try readRGBImage(url)
      } catch {
        guard config.onBadImage == .skip else { throw badImageError(error, file: url.path) }
        skipped.append(SkippedImage(id: id, file: url.path, reason: problemText(error)))
        continue
      }
      let made = config.sameLabelsIn.map { URL(fileURLWithPath: $0).appendingPathComponent("\(id).png") }
      let labels = try made.flatMap { fm.fileExists(atPath: $0.path) ? try LabelMap(contentsOf: $0) : nil }
        ?? inference.labelMap(image, refiner: refinement.refine)
      // The overlay first, the label map last: its presence marks the image done.
      if config.overlay { try image.overlaying(labels: labels).write(to: overlay) }
      try labels.write(to: target)
    }
    bar.finish(note: skipped.isEmpty ? "" : "\(skipped.count) bad images skipped")
    let fm = FileManager.default
    guard let allSkipped = try sharding.finish(out: out, parameters: parameters, skipped: skipped, done: { skippedIDs in
      inputs.allSatisfy { id, _ in
        skippedIDs.contains(id)
          || (fm.fileExists(atPath: out.appendingPathComponent("\(id).png").path)
            && (!config.overlay || fm.fileExists(atPath: overlayDirectory.appendingPathComponent("\(id).jpg").path)))
      }
    }) else {
      log("predict: shard \(sharding.shard) done in \(out.path); the stage is finished by the last shard to finish, "
          + "or by `aepsl predict` without --shard once every shard has run")
      return out
    }
    skipped = allSkipped
    let written = inputs.count - skipped.count
    try StageManifest(stage: "predict", parameters: parameters, inputs: [checkpoint.path, config.dataset ?? config.images ?? ""],
                      startedAt: started, notes: ["images": "\(written)", "classes": info.classNames.joined(separator: ",")]
                        .merging(SkippedImage.manifestNotes(skipped)) { $1 })
      .write(to: out)
    if !skipped.isEmpty { log("predict: \(skipped.count) bad images skipped (listed in \(out.path)/manifest.json)") }
    log("predict: \(written) label maps in \(out.path)")
    return out
  }
}
