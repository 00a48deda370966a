import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation

/// Where the background of a pseudo mask comes from (docs/METHOD.md 1.2).
public enum BackgroundCue: String, Sendable, Codable, CaseIterable {
  /// The minimum-barrier salient-object detector (or --saliency-dir maps): background where
  /// saliency is below the threshold.
  case saliency
  /// Low class activation: background where every labelled class's step-1 CAM is below the
  /// threshold.
  case cam
}

public struct MaskConfiguration: Sendable, Codable, Equatable {
  public var background = BackgroundCue.saliency
  /// Grayscale PNGs <id>.png from an external saliency detector (0 = background).
  public var saliencyDirectory: String?
  /// Background where the cue is below this: the paper's 0.06. Our saliency maps fill [0, 1],
  /// so it labels little as background (the masks are mostly 255), and that is what
  /// segmentation learns best from: on the synthetic set PSL reached 73.5 val mIoU with 0.06
  /// and 31.3 with 0.4, though 0.4's masks score higher themselves (RESULTS.md).
  public var backgroundThreshold: Float = 0.06
  /// Object labels only where the cue is at least this; a mined pixel below it is left at
  /// 255 (background where the cue is also below `backgroundThreshold`). 0: a mined region
  /// labels every pixel it covers (the paper). Erased regions come from CAMs at output
  /// stride 8 and spill over the object's edge onto background, and the segmenter learns
  /// the spill; the salient-object cue says where the object ends. 0.3 was picked from the
  /// masks' label counts on train and adopted on val of the suite (RESULTS.md, "The object
  /// threshold as the default").
  public var objectThreshold: Float = 0.3
  /// Salient regions carry their object labels across themselves: each 8-connected region
  /// where the cue is at least `objectThreshold` that holds object labels gives its 255
  /// pixels that class (where it holds several classes, per pixel the one with the higher
  /// CAM). Erasing mines about a third of each object on 20 classes (half on 6), and the
  /// segmenter learns the rest of the object as background; the salient-object cue says how
  /// far the object goes. Needs `objectThreshold` above 0. Off (the paper) until measured on
  /// every member of the suite (RESULTS.md, "Salient regions filled").
  public var fillObjects = false
  /// Merge only the first `steps` erasing steps (1 = the CAM-only baseline); nil: the steps
  /// the stopping rule chose.
  public var steps: Int?
  public var output: String?
  /// An image that cannot be read stops the stage (`fail`) or gets no mask and is listed in
  /// the manifest (`skip`). Images the erasing stage skipped never get a mask.
  public var onBadImage = BadImagePolicy.fail

  public init() {}

  enum CodingKeys: String, CodingKey {
    case background, saliencyDirectory, backgroundThreshold, objectThreshold, fillObjects, steps, output, onBadImage
  }

  /// A configuration written before `objectThreshold` or `fillObjects` existed made its masks
  /// without them: 0 and off.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    background = try c.decode(BackgroundCue.self, forKey: .background)
    saliencyDirectory = try c.decodeIfPresent(String.self, forKey: .saliencyDirectory)
    backgroundThreshold = try c.decode(Float.self, forKey: .backgroundThreshold)
    objectThreshold = try c.decodeIfPresent(Float.self, forKey: .objectThreshold) ?? 0
    fillObjects = try c.decodeIfPresent(Bool.self, forKey: .fillObjects) ?? false
    steps = try c.decodeIfPresent(Int.self, forKey: .steps)
    output = try c.decodeIfPresent(String.self, forKey: .output)
    onBadImage = try c.decode(BadImagePolicy.self, forKey: .onBadImage)
  }

  /// Throws when these settings cannot make masks, naming the config key and the option:
  /// the one check, made by the masks stage and by `aepsl run` when it reads its
  /// configuration (so that a bad masks section fails before erasing, not after it).
  public func check() throws {
    let defaults = MaskConfiguration()
    for (value, key, option, standard) in [
      (backgroundThreshold, "backgroundThreshold", "--background-threshold", defaults.backgroundThreshold),
      (objectThreshold, "objectThreshold", "--object-threshold", defaults.objectThreshold),
    ] {
      guard value >= 0 && value <= 1 else {
        throw AEPSLError(kind: .badArgument, problem: "masks.\(key) (\(option)) is \(value), outside [0, 1]",
                         fix: "Set it between 0 and 1; the default is \(standard).")
      }
    }
    if let steps, steps < 1 {
      throw AEPSLError(kind: .badArgument, problem: "masks.steps (--steps) is \(steps)",
                       fix: "Merge at least 1 step (1 is the CAM-only baseline), or leave it out for the steps the stopping rule chose.")
    }
    guard !fillObjects || objectThreshold > 0 else {
      throw AEPSLError(kind: .badArgument, problem: "filling salient regions (masks.fillObjects, --fill-objects on) needs an object threshold above 0 (with 0 the whole image is one region)",
                       fix: "Set masks.objectThreshold (--object-threshold) above 0, e.g. the default \(defaults.objectThreshold), or turn the fill off.")
    }
  }
}

public enum MaskStage {
  /// Writes a pseudo mask <id>.png (0 background, 1...C, 255 ignore) per training image.
  /// Returns the output directory. `sharding`: only the images of this rank and shard
  /// (`StageSharding`); each mask is the one a single process writes.
  @discardableResult
  public static func run(_ config: MaskConfiguration, run: URL, progress: ProgressReporter.Options = .init(),
                         log: @escaping (String) -> Void = { print($0) }, sharding: StageSharding = .single) throws -> URL {
    try config.check()
    let log = sharding.communicator.rootOnly(log)
    let progress = progress.onlyOn(sharding.communicator)
    let layout = EraseLayout(run: run)
    guard let eraseManifest = try StageManifest.read(from: layout.root) else {
      throw AEPSLError(file: layout.root.path, problem: "has no finished erasing stage", fix: "Run `aepsl erase --run \(run.path) ...` first.")
    }
    guard let erase = try EraseStage.configuration(run: run) else {
      throw AEPSLError(file: layout.configurationFile.path, problem: "is missing: the erasing stage was made by an older aepsl",
                        fix: "Delete \(layout.root.path) and run `aepsl erase` again.")
    }
    let summary = try EraseStage.decodeSummary(eraseManifest)
    let merged = config.steps.map { Array(1...min($0, max(summary.finalLosses.count, 1))) } ?? summary.mergedSteps
    let out = config.output.map { URL(fileURLWithPath: $0) } ?? RunLayout(run: run).masks
    var parameters = parameterTable(config, merged: merged)
    parameters["erase_made"] = StageManifest.madeAt(layout.root)
    if let done = try StageManifest.read(from: out) {
      if done.parameters == parameters {
        log("masks: already done in \(out.path)")
        return out
      }
      // Masks from an aepsl that did not record erase_made are remade too, without claiming why.
      if let before = done.parameters["erase_made"], before != parameters["erase_made"] {
        log("masks: the erasing stage in \(layout.root.path) was made again after these masks; making them again")
      }
      // Until every mask is rewritten the directory is unfinished, not done with old settings.
      try? FileManager.default.removeItem(at: out.appendingPathComponent(StageManifest.fileName))
    }
    let started = Date()
    try makeDirectory(out)
    sweepTemporaries(out, stage: "masks", log: log)
    let dataset = try VOCDataset(root: URL(fileURLWithPath: erase.dataset))
    // The images the erasing stage left out have no CAMs: they get no mask either.
    let erased = EraseStage.skippedImages(run: run)
    let set = try dataset.classificationSet(split: erase.split, onBadImage: .skip).excluding(erased)
    var skipped = set.skipped
    if config.onBadImage == .fail, let missing = skipped.first(where: { s in !erased.contains { $0.id == s.id } }) {
      throw badImageError(AEPSLError(kind: .missingFile, file: missing.file, problem: missing.reason), file: missing.file)
    }
    let maker = Maker(config: config, erase: erase, merged: merged, layout: layout)
    let mine = set.samples.indices.filter(sharding.mine.contains).map { set.samples[$0] }
    let bar = ProgressReporter(sharding.isSharded ? "masks (shard \(sharding.mine))" : "masks", total: mine.count, unit: "images",
                               options: progress)
    for sample in mine {
      defer { bar.advance() }
      try Interruption.check(stage: "masks", detail: "the masks written so far are kept in \(out.path)")
      let image: Image
      do {
        image = try dataset.image(sample.id).converted(toChannels: 3)
      } catch {
        guard config.onBadImage == .skip else { throw badImageError(error, file: sample.imageURL.path) }
        skipped.append(SkippedImage(id: sample.id, file: sample.imageURL.path, reason: problemText(error)))
        continue
      }
      try maker.mask(sample, image: image).write(to: out.appendingPathComponent("\(sample.id).png"))
    }
    bar.finish()
    guard let found = try sharding.finish(out: out, parameters: parameters, skipped: Array(skipped.dropFirst(set.skipped.count)), done: { bad in
      set.samples.allSatisfy { bad.contains($0.id) || FileManager.default.fileExists(atPath: out.appendingPathComponent("\($0.id).png").path) }
    }) else {
      log("masks: shard \(sharding.shard) done in \(out.path); the stage is finished by the last shard to finish, "
          + "or by `aepsl masks` without --shard once every shard has run")
      return out
    }
    skipped = set.skipped + found
    let count = set.count - (skipped.count - set.skipped.count)
    try StageManifest(stage: "masks", parameters: parameters, inputs: [layout.root.path], startedAt: started,
                      notes: ["images": "\(count)", "merged_steps": merged.map(String.init).joined(separator: ",")]
                        .merging(SkippedImage.manifestNotes(skipped)) { $1 }).write(to: out)
    if !skipped.isEmpty { log("masks: \(skipped.count) images skipped (bad images; listed in the manifest)") }
    log("masks: \(count) pseudo masks in \(out.path) (steps \(merged.map(String.init).joined(separator: ", ")) merged)")
    return out
  }

  /// One image's pseudo mask from its CAMs of the merged steps and the background cue.
  struct Maker {
    var config: MaskConfiguration
    var erase: EraseConfiguration
    var merged: [Int]
    var layout: EraseLayout
    let detector = MBDSaliency()

    func mask(_ sample: LabeledImage, image: Image) throws -> LabelMap {
      let (w, h) = (image.width, image.height)
      var mined = MinedRegions(width: w, height: h)
      var steps = erase.stepRegions(labels: sample.labels.count, width: w, height: h)
      var firstCAM: [[Float]] = []
      for t in merged {
        let cams = try EraseStage.storedCAMs(layout.cam(t, sample.id), labels: sample.labels.count, width: w, height: h)
        if t == merged.first { firstCAM = cams }
        for (k, region) in steps.add(cams: cams).enumerated() {
          let label = sample.labels[k] + 1
          var r = mined.regions[label] ?? [Bool](repeating: false, count: w * h)
          var s = mined.strength[label] ?? [Float](repeating: 0, count: w * h)
          for p in 0..<(w * h) {
            if region[p] { r[p] = true }
            s[p] = max(s[p], cams[k][p])
          }
          mined.regions[label] = r
          mined.strength[label] = s
        }
      }
      let cue = try background(sample, image: image, firstCAM: firstCAM)
      let salient = config.objectThreshold > 0 ? cue.map { $0 >= config.objectThreshold } : nil
      var labels = PseudoMask.build(mined, isBackground: cue.map { $0 < config.backgroundThreshold }, mayBeObject: salient)
      if config.fillObjects, let salient { labels = PseudoMask.filled(labels, salient: salient, width: w, strength: mined.strength) }
      return LabelMap(width: w, height: h, labels: labels)
    }

    /// The background cue of docs/METHOD.md 1.2, in [0, 1] per pixel.
    func background(_ sample: LabeledImage, image: Image, firstCAM: [[Float]]) throws -> [Float] {
      let (w, h) = (image.width, image.height)
      switch config.background {
      case .saliency:
        guard let dir = config.saliencyDirectory else { return detector.saliency(rgb: image.pixels, width: w, height: h) }
        let map = try LabelMap(contentsOf: URL(fileURLWithPath: dir).appendingPathComponent("\(sample.id).png"))
        guard map.width == w && map.height == h else {
          throw AEPSLError(file: "\(dir)/\(sample.id).png", problem: "is \(map.width)x\(map.height), the image \(w)x\(h)",
                            fix: "Give saliency maps at the images' own size.")
        }
        return map.labels.map { Float($0) / 255 }
      case .cam:
        return (0..<(w * h)).map { p in firstCAM.reduce(Float(0)) { max($0, $1[p]) } }
      }
    }
  }

  static func parameterTable(_ c: MaskConfiguration, merged: [Int]) -> [String: String] {
    var table = ["background": c.background.rawValue, "saliency_dir": c.saliencyDirectory.map(absolutePath) ?? "",
                 "background_threshold": "\(c.backgroundThreshold)", "steps": merged.map(String.init).joined(separator: ","),
                 "on_bad_image": c.onBadImage.rawValue]
    // Only when on, so that masks made without them (before the options existed) stay done.
    if c.objectThreshold > 0 { table["object_threshold"] = "\(c.objectThreshold)" }
    if c.fillObjects { table["fill_objects"] = "on" }
    return table
  }
}
