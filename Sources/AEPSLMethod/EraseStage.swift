import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation

/// What erase/skipped_images.json holds: the policy the images were checked under and the
/// images left out.
struct ImageCheckRecord: Codable {
  var policy: BadImagePolicy
  var skipped: [SkippedImage]
}

/// The outcome of the erasing stage, as its manifest records it.
public struct EraseSummary: Sendable, Codable, Equatable {
  /// Final-epoch loss of each trained step.
  public var finalLosses: [Float]
  /// The steps whose regions are merged into the object regions.
  public var mergedSteps: [Int]
  public var reason: String
}

public enum EraseStage {
  /// Runs (or resumes) adversarial erasing into `run`/erase. Finished steps are never redone;
  /// an interrupted one keeps its trained classifier and the CAMs already written. A run
  /// begun with other settings (`EraseLayout.configurationFile`) is refused, naming what
  /// changed: its steps would not match.
  ///
  /// With a `communicator` of K ranks (mpirun): every classifier trains data-parallel on
  /// shares of each global batch, rank r computes the CAMs and erased regions of images
  /// r, r + K, ..., and rank 0 alone checks the images, logs and writes checkpoints, loss
  /// curves and manifests (the run directory must be one shared file system).
  @discardableResult
  public static func run(_ config: EraseConfiguration, run: URL, progress: ProgressReporter.Options = .init(),
                         log: @escaping (String) -> Void = { print($0) },
                         communicator: Communicator = SingleProcess()) throws -> EraseSummary {
    let log = communicator.rootOnly(log)
    let progress = progress.onlyOn(communicator)
    guard let spec = config.spec else {
      throw AEPSLError(file: config.net, problem: "is not a network", fix: "Use one of: \(BackboneSpec.names.joined(separator: ", ")).")
    }
    var config = config
    config.dataset = absolutePath(config.dataset)
    config.initWeights = config.initWeights.map(absolutePath)
    let layout = EraseLayout(run: run)
    try checkSettings(config, layout: layout)
    if let done = try StageManifest.read(from: layout.root), let summary = try? decodeSummary(done) {
      log("erase: already done (steps \(summary.mergedSteps) merged); delete \(layout.root.path) to redo it")
      return summary
    }
    let started = Date()
    try makeDirectory(layout.root)
    sweepTemporaries(layout.root, stage: "erase", log: log)
    if communicator.isRoot { try writeJSON(config, to: layout.configurationFile) }
    let (dataset, set, mean) = try prepareImages(config, layout: layout, progress: progress, log: log, communicator: communicator)
    var finalLosses: [Float] = []
    var stop: StepStop?
    for t in 1...config.maxSteps {
      stop = try step(t, config: config, spec: spec, dataset: dataset, set: set, mean: mean, finalLosses: &finalLosses,
                      layout: layout, progress: progress, log: log, communicator: communicator)
      if stop != nil { break }
    }
    let reason = stop?.reason
    let merged = Array(1...(stop?.mergesStep == false ? finalLosses.count - 1 : finalLosses.count))
    let why = reason ?? "every step converged up to --max-steps \(config.maxSteps); merged steps 1-\(merged.last ?? 0)"
    let summary = EraseSummary(finalLosses: finalLosses, mergedSteps: merged, reason: why)
    var notes = ["merged_steps": merged.map(String.init).joined(separator: ","), "reason": why,
                 "final_losses": finalLosses.map { "\($0)" }.joined(separator: ","),
                 "skipped_unlabeled": "\(set.skippedUnlabeled.count)",
                 "cam_layout": "cams/<id>.npy is float16 [labels, H, W], one map per label of the image in ascending class order"]
    notes["classes"] = dataset.classes.names.joined(separator: ",")
    notes.merge(SkippedImage.manifestNotes(set.skipped)) { $1 }
    if communicator.isDistributed { notes["ranks"] = "\(communicator.size)" }
    if communicator.isRoot {
      try StageManifest(stage: "erase", parameters: config.parameterTable, inputs: [config.dataset], startedAt: started,
                        notes: notes).write(to: layout.root)
    }
    communicator.barrier()
    log("erase: \(why)")
    return summary
  }

  /// The configuration the erasing stage of `run` was begun with (absolute dataset path), or
  /// nil when it has not begun. The masks, segmentation and report read the dataset, split
  /// and erasing rule from here.
  public static func configuration(run: URL) throws -> EraseConfiguration? {
    let url = EraseLayout(run: run).configurationFile
    guard FileManager.default.fileExists(atPath: url.path) else { return nil }
    do {
      return try JSONDecoder().decode(EraseConfiguration.self, from: Data(contentsOf: url))
    } catch {
      throw AEPSLError(file: url.path, problem: "is not an erasing configuration (\(error))",
                        fix: "Delete \(url.deletingLastPathComponent().path) and run `aepsl erase` again.")
    }
  }

  /// Refuses to go on with a run whose erasing began with other settings (the bad-image
  /// policy aside: the image check redoes itself under a new one).
  static func checkSettings(_ config: EraseConfiguration, layout: EraseLayout) throws {
    guard var old = try configuration(run: layout.root.deletingLastPathComponent()) else { return }
    old.onBadImage = config.onBadImage
    guard old != config else { return }
    var was = old.parameterTable, now = config.parameterTable
    was["onBadImage"] = nil
    now["onBadImage"] = nil
    let changes = changedSettings(from: was, to: now)
    guard changes.isEmpty else {
      throw AEPSLError(file: layout.root.path, problem: "was made with other settings (\(changes.joined(separator: ", ")))",
                        fix: "Delete \(layout.root.path) to redo erasing with the new settings, or use another --run.")
    }
  }

  /// The dataset, the training set without its bad images, and its mean pixel, checked once
  /// (by rank 0; the others read the result).
  static func prepareImages(_ config: EraseConfiguration, layout: EraseLayout, progress: ProgressReporter.Options,
                            log: (String) -> Void, communicator: Communicator) throws -> (VOCDataset, ClassificationSet, [UInt8]) {
    let dataset = try VOCDataset(root: URL(fileURLWithPath: config.dataset))
    let listed = try dataset.classificationSet(split: config.split, onBadImage: config.onBadImage)
    let listFile = dataset.listURL(split: config.split).path
    guard listed.count > 0 else {
      throw AEPSLError(file: listFile, problem: listed.skipped.isEmpty ? "lists no labelled image" : "lists no usable labelled image",
                        fix: "Check the split name and the annotations.")
    }
    if !listed.skippedUnlabeled.isEmpty { log("erase: \(listed.skippedUnlabeled.count) images without labels are skipped") }
    // Before the image check, which can take long: every rank needs a share of each batch.
    try DataParallel.checkBatch(size: config.batchSize, images: listed.count, ranks: communicator.size)
    if communicator.isRoot { _ = try checkImages(listed, policy: config.onBadImage, layout: layout, progress: progress) }
    communicator.barrier()
    let (mean, bad) = try checkImages(listed, policy: config.onBadImage, layout: layout, progress: progress)
    let set = listed.excluding(bad)
    if !set.skipped.isEmpty {
      log("erase: \(set.skipped.count) bad images are skipped (listed in \(layout.skippedImagesFile.path)):")
      for s in set.skipped.prefix(10) { log("  \(s)") }
    }
    guard set.count > 0 else {
      throw AEPSLError(file: listFile, problem: "lists no usable image: all \(set.skipped.count) are bad",
                        fix: "See \(layout.skippedImagesFile.path) for the reasons.")
    }
    log("erase: \(set.count) images, \(dataset.classes.count) classes, mean pixel \(mean)")
    return (dataset, set, mean)
  }

  /// Why erasing ends at a step, and whether that step's regions are merged.
  struct StepStop: Equatable {
    var reason: String
    /// false: the step did not converge and is dropped; true: it is merged, but erased
    /// nothing, so a next step would train on the same images again.
    var mergesStep: Bool
  }

  /// Step t: trains its classifier (or finds it trained), appends its final loss, and unless
  /// the stopping rule ends erasing there, mines its regions; returns why erasing ends after
  /// it, or nil to go on. A finished step is read back from its manifest.
  static func step(_ t: Int, config: EraseConfiguration, spec: BackboneSpec, dataset: VOCDataset, set: ClassificationSet,
                   mean: [UInt8], finalLosses: inout [Float], layout: EraseLayout, progress: ProgressReporter.Options,
                   log: @escaping (String) -> Void, communicator: Communicator) throws -> StepStop? {
    let stepDir = layout.step(t)
    if let manifest = try StageManifest.read(from: stepDir), let loss = manifest.notes["final_loss"].flatMap(Float.init) {
      finalLosses.append(loss)
      if manifest.notes["converged"] == "false" {
        return StepStop(reason: manifest.notes["reason"] ?? "step \(t) did not converge", mergesStep: false)
      }
      log("erase: step \(t) already done (final loss \(loss))")
      return manifest.notes["newly_erased_fraction"].flatMap(Double.init) == 0 ? nothingErased(step: t) : nil
    }
    let stepStarted = Date()
    try makeDirectory(stepDir.appendingPathComponent("cams"))
    try makeDirectory(stepDir.appendingPathComponent("erased"))
    let source = erasedSource(set, step: t, layout: layout, mean: mean)
    // A fresh classifier from the same initialisation as step 1, on the erased images.
    let model = try makeClassifier(config, spec: spec, classes: dataset.classes.count)
    let curve = try trainStep(t, model: model, config: config, source: source, classes: dataset.classes.count, ids: set.ids,
                              layout: layout, progress: progress, log: log, communicator: communicator)
    let final = curve.last ?? .nan
    finalLosses.append(final)
    // The stopping rule: a step that no longer converges is not merged.
    if let reason = stoppingReason(config, finalLosses: finalLosses, labels: set.samples.map(\.labels), classes: dataset.classes.count) {
      if communicator.isRoot {
        try StageManifest(stage: "erase-step", parameters: ["step": "\(t)"], inputs: [], startedAt: stepStarted,
                          notes: ["final_loss": "\(final)", "converged": "false", "reason": reason]).write(to: stepDir)
      }
      return StepStop(reason: reason, mergesStep: false)
    }
    // CAMs on the current images, discriminative regions, cumulative erasure.
    let area = try mineRegions(config, model: model, set: set, source: source, step: t, layout: layout, progress: progress,
                               shard: Shard.whole.split(across: communicator))
    // Every rank's regions are written before the step counts as done and step t + 1 reads them.
    communicator.barrier()
    let totals = communicator.allreduceSum([area.pixels, area.erased, area.newlyErased])
    let (erased, newlyErased) = (totals[1] / max(1, totals[0]), totals[2] / max(1, totals[0]))
    if communicator.isRoot {
      try StageManifest(stage: "erase-step", parameters: ["step": "\(t)"], inputs: [config.dataset], startedAt: stepStarted,
                        notes: ["final_loss": "\(final)", "converged": "true", "erased_fraction": "\(erased)",
                                "newly_erased_fraction": "\(newlyErased)"]).write(to: stepDir)
    }
    log(String(format: "erase: step %d done, final loss %.4f, erased %.1f%% of the pixels (%.1f%% new)",
               t, final, 100 * erased, 100 * newlyErased))
    return newlyErased == 0 ? nothingErased(step: t) : nil
  }

  /// A step whose CAMs marked no pixel that was not erased already: erasing more would train
  /// the next step on the same images as this one.
  static func nothingErased(step t: Int) -> StepStop {
    StepStop(reason: "step \(t) erased nothing new: its CAMs' regions were empty or already erased on every image, so a "
               + "step \(t + 1) would see the same images; merged steps 1-\(t)", mergesStep: true)
  }

  /// Trains step t's classifier into `model` and returns its loss curve, or loads it when
  /// trained already (then only its CAMs were interrupted).
  static func trainStep(_ t: Int, model: Classifier, config: EraseConfiguration, source: SampleSource, classes: Int, ids: [String],
                        layout: EraseLayout, progress: ProgressReporter.Options, log: @escaping (String) -> Void,
                        communicator: Communicator) throws -> [Float] {
    if let trained = try? Checkpoint.load(from: layout.checkpoint(t), into: model.parameters, buffers: model.buffers),
       let text = trained["loss_curve"] {
      log("erase: step \(t) classifier already trained")
      return text.split(separator: ",").compactMap { Float($0) }
    }
    var options = BatchLoader.Options(
      batchSize: config.batchSize,
      augmentation: Augmentation(scales: config.minScale...config.maxScale, crop: config.cropSize, randomCrop: true, flip: true,
                                 longerSide: config.workingSide),
      shuffle: true, dropLast: source.count > config.batchSize, seed: config.seed)
    (options.replica, options.replicas) = (communicator.rank, communicator.size)
    let loader = BatchLoader(source: source, classes: classes, options: options)
    let state = TrainingStateFile(url: layout.trainingState(t), settings: trainingSettings(config, step: t, ids: ids))
    let schedule = config.schedule(classes: classes, batchesPerEpoch: loader.batchesPerEpoch)
    if schedule.epochs > config.schedule.epochs {
      log("erase: step \(t): \(schedule.epochs) epochs rather than \(config.schedule.epochs), for at least \(schedule.minIterations ?? 0) iterations")
    }
    let curve = try trainClassifier(model, loader: loader, schedule: schedule, loss: config.loss, stage: "erase step \(t)",
                                    progress: progress, state: state, log: log, communicator: communicator)
    // Every rank's CAMs come from exactly the weights rank 0 saves: training ends with a
    // copy of rank 0's state to all ranks.
    if communicator.isRoot {
      try writeLossCurve(curve, to: layout.lossCurve(t))
      try Checkpoint.save(parameters: model.parameters, buffers: model.buffers,
                          metadata: ["loss_curve": curve.map { "\($0)" }.joined(separator: ","), "step": "\(t)"],
                          to: layout.checkpoint(t))
      try? FileManager.default.removeItem(at: state.url)
    }
    return curve
  }

  static func decodeSummary(_ m: StageManifest) throws -> EraseSummary {
    guard let merged = m.notes["merged_steps"], let losses = m.notes["final_losses"] else {
      throw AEPSLError(file: "erase/manifest.json", problem: "lacks merged_steps", fix: "Delete the erase directory to redo it.")
    }
    return EraseSummary(finalLosses: losses.split(separator: ",").compactMap { Float($0) },
                        mergedSteps: merged.split(separator: ",").compactMap { Int($0) }, reason: m.notes["reason"] ?? "")
  }

  static func makeClassifier(_ config: EraseConfiguration, spec: BackboneSpec, classes: Int) throws -> Classifier {
    let pretrained = config.initWeights != nil
    let model = Classifier(spec: spec, classes: classes, seed: config.seed, headLRMultiplier: pretrained ? 10 : 1)
    if let path = config.initWeights {
      try VGG16Import.load(from: PretrainedWeights.resolve(path), into: model.parameters)
    }
    model.backbone.reseedDropout(config.seed)
    return model
  }

  /// Decodes every training image once, before any training: computes the training set's
  /// mean pixel and finds the bad images (missing, corrupt, truncated, outside
  /// `ImageLimits`). Under `fail` the first bad image throws, naming the file; under `skip`
  /// they are returned (and the mean is over the good ones). The result is kept in the run
  /// (skipped_images.json, then mean_pixel.json), so a resumed run neither decodes again nor
  /// meets a bad image on the loader's threads.
  static func checkImages(_ set: ClassificationSet, policy: BadImagePolicy, layout: EraseLayout,
                          progress: ProgressReporter.Options) throws -> (mean: [UInt8], skipped: [SkippedImage]) {
    if let data = try? Data(contentsOf: layout.meanPixelFile),
       let values = try? JSONDecoder().decode([UInt8].self, from: data), values.count == 3,
       let recordData = try? Data(contentsOf: layout.skippedImagesFile),
       let record = try? JSONDecoder().decode(ImageCheckRecord.self, from: recordData), record.policy == policy {
      return (values, set.skipped + record.skipped)
    }
    var acc = MeanPixelAccumulator(channels: 3)
    var skipped: [SkippedImage] = []
    let source = set.source()
    let bar = ProgressReporter("checking images, mean pixel", total: source.count, unit: "images", options: progress)
    for i in 0..<source.count {
      try Interruption.check(stage: "erase", detail: "nothing of the image check is kept; it is redone")
      do {
        acc.add(try source.load(i).image.converted(toChannels: 3))
      } catch {
        let file = set.samples[i].imageURL.path
        guard policy == .skip else { throw badImageError(error, file: file) }
        skipped.append(SkippedImage(id: source.ids[i], file: file, reason: problemText(error)))
      }
      bar.advance()
    }
    bar.finish(note: skipped.isEmpty ? "" : "\(skipped.count) bad images skipped")
    let mean = (acc.mean ?? [0, 0, 0]).map { UInt8(max(0, min(255, $0.rounded()))) }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    // Both files go to the run directory whole or not at all; the mean last marks the check done.
    try writeFileAtomically(try encoder.encode(ImageCheckRecord(policy: policy, skipped: set.skipped + skipped)),
                            to: layout.skippedImagesFile)
    try writeFileAtomically(try JSONEncoder().encode(mean), to: layout.meanPixelFile)
    return (mean, set.skipped + skipped)
  }

  /// The images the erasing stage of `run` left out, or none.
  public static func skippedImages(run: URL) -> [SkippedImage] {
    let layout = EraseLayout(run: run)
    guard let data = try? Data(contentsOf: layout.skippedImagesFile),
          let record = try? JSONDecoder().decode(ImageCheckRecord.self, from: data) else { return [] }
    return record.skipped
  }

  /// The settings a step's training state must match to be resumed: the stage's parameters,
  /// the step and the images.
  static func trainingSettings(_ c: EraseConfiguration, step: Int, ids: [String]) -> String {
    var table = c.parameterTable
    table["onBadImage"] = nil
    table["step"] = "\(step)"
    table["images"] = fingerprint(of: ids)
    return settingsText(table)
  }

  /// Training images with the regions erased up to step t - 1 set to the mean pixel.
  static func erasedSource(_ set: ClassificationSet, step t: Int, layout: EraseLayout, mean: [UInt8]) -> SampleSource {
    let base = set.source()
    guard t > 1 else { return base }
    return base.mapSamples { _, sample in
      var s = sample
      let region = try LabelMap(contentsOf: layout.erased(t - 1, sample.id))
      s.image = erase(s.image.converted(toChannels: 3), where: region, with: mean)
      return s
    }
  }

  /// Pixels of `image` where `region` is non-zero take the value `mean`.
  public static func erase(_ image: Image, where region: LabelMap, with mean: [UInt8]) -> Image {
    precondition(region.width == image.width && region.height == image.height && image.channels == 3)
    var out = image
    out.withUnsafeMutablePixels { px in
      for (i, v) in region.labels.enumerated() where v != 0 {
        px[3 * i] = mean[0]; px[3 * i + 1] = mean[1]; px[3 * i + 2] = mean[2]
      }
    }
    return out
  }

  /// Pixels of a shard's images, those erased after a step, and those it erased itself.
  struct ErasedArea {
    var pixels = 0.0, erased = 0.0, newlyErased = 0.0

    mutating func add(previous: [UInt8]?, erased now: [UInt8]) {
      let before = previous?.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } ?? 0
      let after = now.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
      (pixels, erased, newlyErased) = (pixels + Double(now.count), erased + Double(after), newlyErased + Double(after - before))
    }
  }

  /// CAMs and erased regions of the images of `shard` (the whole set by default), and how
  /// much of them is erased.
  @discardableResult
  static func mineRegions(_ config: EraseConfiguration, model: Classifier, set: ClassificationSet, source: SampleSource,
                          step t: Int, layout: EraseLayout, progress: ProgressReporter.Options,
                          shard: Shard = .whole) throws -> ErasedArea {
    let extractor = CAMExtractor(scales: config.camScales, flip: config.camFlip, longerSide: config.workingSide)
    let mine = (0..<source.count).filter(shard.contains)
    let bar = ProgressReporter("erase step \(t) CAMs", total: mine.count, unit: "images", options: progress)
    var area = ErasedArea()
    for i in mine {
      let id = source.ids[i]
      try Interruption.check(stage: "erase step \(t) CAMs",
                             detail: "the \(i) images done are kept in \(layout.step(t).appendingPathComponent("erased").path)")
      defer { bar.advance() }
      let previous = t > 1 ? try LabelMap(contentsOf: layout.erased(t - 1, id)).labels : nil
      if FileManager.default.fileExists(atPath: layout.erased(t, id).path),
         FileManager.default.fileExists(atPath: layout.cam(t, id).path) {
        area.add(previous: previous, erased: try LabelMap(contentsOf: layout.erased(t, id)).labels)
        continue
      }
      let sample = try source.load(i)
      let image = sample.image.converted(toChannels: 3)
      let labels = set.samples[i].labels
      // Stored as float16 (maps in [0, 1] at image size, per label and step, add up to tens
      // of GB on VOC train_aug in float32: BENCHMARKS.md, VOC-scale cost); rounded first so
      // that the erased region and the masks stage see the same values.
      let cams = extractor.maps(classifier: model, image: PixelNormalization.imageNet.tensor(image), classes: labels)
        .map { $0.map { Float(Float16($0)) } }
      let (w, h) = (image.width, image.height)
      try NumPyArray.write(cams.flatMap { $0 }, shape: [labels.count, h, w], precision: .float16, to: layout.cam(t, id))
      var regions = config.stepRegions(labels: labels.count, width: w, height: h)
      // What each class mined before this step (`touching` keeps what adjoins it), from the
      // earlier steps' CAMs as the masks stage reads them.
      if config.laterRegions == .touching {
        for s in 1..<t { _ = regions.add(cams: try storedCAMs(layout.cam(s, id), labels: labels.count, width: w, height: h)) }
      }
      let erased = cumulativeErasure(previous: previous, regions: regions.add(cams: cams), pixels: w * h)
      // The CAM file first, the erased region last: its presence marks the image done.
      try LabelMap(width: w, height: h, labels: erased).write(to: layout.erased(t, id))
      area.add(previous: previous, erased: erased)
    }
    bar.finish()
    return area
  }

  /// The erased region after this step: the previous step's (erased pixels stay erased) plus
  /// this step's region of every labelled class (`StepRegions`). 1 = erased, 0 = kept.
  public static func cumulativeErasure(previous: [UInt8]?, regions: [[Bool]], pixels: Int) -> [UInt8] {
    var erased = previous ?? [UInt8](repeating: 0, count: pixels)
    for region in regions {
      for (p, inside) in region.enumerated() where inside { erased[p] = 1 }
    }
    return erased
  }

  /// One step's stored CAMs of an image, one map per label, checked against the image's size.
  static func storedCAMs(_ url: URL, labels: Int, width: Int, height: Int) throws -> [[Float]] {
    let cams = try NumPyArray.read(contentsOf: url)
    guard cams.shape == [labels, height, width] else {
      throw AEPSLError(file: url.path, problem: "has shape \(cams.shape), expected \([labels, height, width])",
                       fix: "Delete \(url.deletingLastPathComponent().deletingLastPathComponent().path) and rerun `aepsl erase`.")
    }
    let plane = width * height
    return (0..<labels).map { Array(cams.values[($0 * plane)..<(($0 + 1) * plane)]) }
  }

  static func writeLossCurve(_ curve: [Float], to url: URL) throws {
    let text = "epoch,loss\n" + curve.enumerated().map { "\($0.offset + 1),\($0.element)" }.joined(separator: "\n") + "\n"
    try writeFileAtomically(Data(text.utf8), to: url)
  }
}
