import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import AEPSLImaging
import Foundation

/// How predicted probabilities become labels when PSL+ predicts the training set: the
/// dense CRF, handed in by the command-line tool, or nil for the argmax. `description`
/// goes into manifests.
public struct Refinement: Sendable {
  public var refine: ProbabilityRefiner?
  public var description: String
  /// The threads the refinement uses (nil: it does not say); not part of `description`,
  /// since it does not change the result.
  public var threads: Int?
  public init(refine: ProbabilityRefiner?, description: String, threads: Int? = nil) {
    self.refine = refine
    self.description = description
    self.threads = threads
  }
  public static let argmax = Refinement(refine: nil, description: "none (argmax)")
}

extension SegmentationStage {
  /// PSL+: predicts every training image with the first round's network (confidence
  /// weighting, then `refinement`, the dense CRF), and keeps only labels the image may
  /// hold: background and its own classes. A pixel given any other class becomes 255
  /// (ignore), not background: the prediction is known to be wrong there, and calling it
  /// background would teach background on what is most likely an object of the image;
  /// ignored, it is left to the online mask, which can only choose the image's classes.
  /// With `plusUncertain` `.crfChanged`, pixels whose refined label differs from the
  /// network's argmax become 255 too (`ignoreChanged`).
  static func predictTrainingSet(from round: SegmentationRound, config: SegmentationConfiguration, set: ClassificationSet,
                                 dataset: VOCDataset, refinement: Refinement, layout: SegmentationLayout,
                                 progress: ProgressReporter.Options, log: (String) -> Void,
                                 communicator: Communicator = SingleProcess()) throws -> URL {
    let out = layout.plusMasks
    var parameters = ["checkpoint": round.checkpoint.path, "checkpoint_trained": trainedAt(round.checkpoint),
                      "confidence": "\(config.confidenceThreshold)",
                      "refinement": refinement.description, "dataset": dataset.root.path,
                      "images": "\(set.count)", "outside_labels": "255"]
    if config.plusUncertain != .keep { parameters["uncertain"] = config.plusUncertain.rawValue }
    if try StageManifest.finished(in: out, parameters: parameters) != nil {
      log("train-seg: PSL+ masks already in \(out.path)")
      return out
    }
    let started = Date()
    try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
    let info = try SegmenterInfo(checkpoint: round.checkpoint)
    let inference = try info.inference(from: round.checkpoint, threshold: config.confidenceThreshold)
    // Rank r of K predicts images r, r + K, ...
    let shard = Shard.whole.split(across: communicator)
    let mine = set.samples.indices.filter(shard.contains).map { set.samples[$0] }
    let bar = ProgressReporter("PSL+ masks", total: mine.count, unit: "images", options: progress)
    var outside = 0, changed = 0, pixels = 0
    for sample in mine {
      defer { bar.advance() }
      try Interruption.check(stage: "PSL+ masks", detail: "the masks written so far are kept in \(out.path)")
      let target = out.appendingPathComponent("\(sample.id).png")
      if FileManager.default.fileExists(atPath: target.path) { continue }
      let rgb = try dataset.image(sample.id).converted(toChannels: 3)
      let p = inference.probabilities(rgb)
      let argmax = ConfidenceWeighting.argmax(p.probabilities, labels: p.labels)
      var labels = try refinement.refine?(rgb, p.probabilities, p.labels) ?? argmax
      if config.plusUncertain == .crfChanged {
        let (kept, count) = ignoreChanged(labels, from: argmax)
        labels = kept
        changed += count
      }
      let (mask, removed) = restrict(LabelMap(width: rgb.width, height: rgb.height, labels: labels), to: sample.labels)
      outside += removed
      pixels += mask.labels.count
      try mask.write(to: target)
    }
    bar.finish()
    if communicator.isDistributed {
      let sums = communicator.allreduceSum([Double(outside), Double(changed), Double(pixels)])
      (outside, changed, pixels) = (Int(sums[0]), Int(sums[1]), Int(sums[2]))
    }
    guard communicator.isRoot else {
      communicator.barrier()
      return out
    }
    defer { communicator.barrier() }
    let total = Double(max(pixels, 1))
    var notes = ["outside_label_fraction": "\(Double(outside) / total)",
                 "rule": "labels outside {0} and the image's classes become 255"]
    if config.plusUncertain == .crfChanged {
      notes["changed_fraction"] = "\(Double(changed) / total)"
      notes["rule"]! += "; pixels whose refined label differs from the network's argmax become 255"
    }
    try StageManifest(stage: "psl-plus-masks", parameters: parameters, inputs: [round.checkpoint.path], startedAt: started,
                      notes: notes).write(to: out)
    log(String(format: "train-seg: PSL+ masks in %@ (%.2f%% of pixels predicted a class the image does not have -> 255)",
               out.path, 100 * Double(outside) / total)
        + (config.plusUncertain == .crfChanged
           ? String(format: " (%.2f%% changed by the refinement -> 255)", 100 * Double(changed) / total) : ""))
    return out
  }

  /// PSL+'s uncertain pixels: where `refined` differs from `argmax` (the network's own
  /// labels) the label becomes 255. Returns the labels and how many changed.
  public static func ignoreChanged(_ refined: [UInt8], from argmax: [UInt8]) -> ([UInt8], Int) {
    precondition(refined.count == argmax.count, "ignoreChanged: \(refined.count) refined labels, \(argmax.count) argmax labels")
    var out = refined
    var count = 0
    for i in 0..<out.count where out[i] != argmax[i] {
      out[i] = LabelMap.ignore
      count += 1
    }
    return (out, count)
  }

  /// Labels other than 0 and the image's classes (0-based `labels`, mask values c + 1)
  /// become 255. Returns the mask and how many pixels changed.
  public static func restrict(_ map: LabelMap, to labels: [Int]) -> (LabelMap, Int) {
    var allowed = [Bool](repeating: false, count: 256)
    allowed[0] = true
    allowed[Int(LabelMap.ignore)] = true
    for c in labels where c + 1 < 255 { allowed[c + 1] = true }
    var out = map
    var changed = 0
    out.withUnsafeMutableLabels { l in
      for i in 0..<l.count where !allowed[Int(l[i])] {
        l[i] = LabelMap.ignore
        changed += 1
      }
    }
    return (out, changed)
  }
}
