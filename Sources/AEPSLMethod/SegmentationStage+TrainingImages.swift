import AEPSLFiles
import AEPSLData
import AEPSLEngine
import AEPSLImaging
import Foundation

extension SegmentationStage {
  enum MaskSource {
    case directory(URL)
    case groundTruth

    var description: String {
      switch self {
      case .directory(let url): return url.path
      case .groundTruth: return "ground truth (SegmentationClass)"
      }
    }
  }

  /// Training images with their masks, read on the loader's threads. Every image and mask
  /// has passed `checkTrainingImages` before training starts.
  static func trainingSource(set: ClassificationSet, dataset: VOCDataset, masks: MaskSource) throws -> SampleSource {
    switch masks {
    case .groundTruth:
      // The fully supervised upper bound: the one training path that reads ground truth.
      return set.source { id in try dataset.groundTruthMask(id) }
    case .directory(let dir):
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw AEPSLError(file: dir.path, problem: "is not a directory of masks", fix: "Give --masks a directory of <id>.png pseudo masks.")
      }
      let classes = UInt8(set.classes.count)
      return set.source { id in
        let url = dir.appendingPathComponent("\(id).png")
        guard FileManager.default.fileExists(atPath: url.path) else {
          throw AEPSLError(file: url.path, problem: "is missing: the training image '\(id)' has no pseudo mask",
                            fix: "Write a mask per training image (`aepsl masks`), give another --masks directory, "
                              + "or pass --on-bad-image skip to train without the images that have none.")
        }
        let map = try LabelMap(contentsOf: url)
        if let bad = map.labels.first(where: { $0 > classes && $0 != LabelMap.ignore }) {
          throw AEPSLError(file: url.path, problem: "holds label \(bad), but the dataset has \(classes) classes",
                            fix: "Masks hold 0 (background), 1...\(classes) or 255 (ignore); regenerate them for this dataset.")
        }
        return map
      }
    }
  }

  /// Decodes every training image and its mask once, two at a time, before any training: a
  /// missing, corrupt or oversized image, a missing mask, a mask of another size or one
  /// holding a label that is no class stops the stage under `fail` (the first in list order,
  /// naming the file) and is left out and listed under `skip`. Training then meets no bad
  /// file on the loader's threads, where an error would end the run mid-epoch.
  static func checkTrainingImages(_ set: ClassificationSet, dataset: VOCDataset, masks: MaskSource, policy: BadImagePolicy,
                                  progress: ProgressReporter.Options) throws -> ClassificationSet {
    if case .directory(let dir) = masks, policy == .fail {
      // One message with the count is more useful than the first missing file alone.
      let missing = set.ids.filter { !FileManager.default.fileExists(atPath: dir.appendingPathComponent("\($0).png").path) }
      if let id = missing.first {
        throw AEPSLError(file: dir.appendingPathComponent("\(id).png").path,
                          problem: "is missing (\(missing.count) of \(set.count) training images have no mask)",
                          fix: "Write a mask per training image (`aepsl masks`), give another --masks directory, "
                            + "or pass --on-bad-image skip to train without them.")
      }
    }
    let source = try trainingSource(set: set, dataset: dataset, masks: masks)
    let bar = ProgressReporter("checking training images and masks", total: source.count, unit: "images", options: progress)
    let problems = ErrorSlots(count: source.count)
    let workers = 2
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
      for i in stride(from: worker, to: source.count, by: workers) {
        if Interruption.requested != nil { return }
        do {
          let sample = try source.load(i)
          if let map = sample.labelMap, map.width != sample.image.width || map.height != sample.image.height {
            throw AEPSLError(file: "\(masks.description)/\(sample.id).png",
                              problem: "is \(map.width)x\(map.height) but its image is \(sample.image.width)x\(sample.image.height)",
                              fix: "Make the mask at its image's size, or regenerate the masks for this dataset.")
          }
        } catch {
          problems.set(i, error)
        }
        bar.advance()
      }
    }
    try Interruption.check(stage: "train-seg", detail: "nothing was trained yet")
    bar.finish()
    var bad: [SkippedImage] = []
    for i in 0..<source.count {
      guard let error = problems.get(i) else { continue }
      // Every reader names its file (an image, a mask); only an error from elsewhere falls
      // back to the image.
      let file = (error as? AEPSLError)?.file ?? set.samples[i].imageURL.path
      guard policy == .skip else { throw badImageError(error, file: file) }
      bad.append(SkippedImage(id: set.samples[i].id, file: file, reason: problemText(error)))
    }
    let kept = set.excluding(bad)
    guard kept.count > 0 else {
      throw AEPSLError(file: dataset.root.path, problem: "has no usable training image (all \(bad.count) are bad)",
                        fix: "Run with --on-bad-image fail to see the first problem, and fix the images or masks.")
    }
    return kept
  }

}
