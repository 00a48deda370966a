import AEPSLFiles
import AEPSLImaging
import Foundation

/// Writing the synthetic dataset in the VOC layout, and its manifest.
extension SyntheticDataset {
  /// What `write` produced.
  public struct Summary: Sendable {
    public var trainIDs: [String]
    public var valIDs: [String]
    public var testIDs: [String]
    public var classCounts: [String: Int]
  }

  /// Writes the dataset in the VOC layout under `directory` (created if needed):
  /// JPEGImages/, Annotations/, SegmentationClass/ (every image), ImageSets/Segmentation/
  /// {train,val,trainval}.txt (and test.txt when `testCount` is set), classes.txt and
  /// synth.json (written last: its presence means the set is complete).
  public func write(to directory: URL, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                    progress: (@Sendable (Int) -> Void)? = nil) throws -> Summary {
    let fm = FileManager.default
    let subdirectories = ["JPEGImages", "Annotations", "SegmentationClass", "ImageSets/Segmentation"]
    for sub in subdirectories {
      try fm.createDirectory(at: directory.appendingPathComponent(sub, isDirectory: true), withIntermediateDirectories: true)
    }
    let failures = FailureBox()
    let done = FailureBox()
    let total = count
    let workers = max(1, min(threads, total))
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
      var index = worker
      while index < total {
        if failures.first != nil { return }
        do {
          let scene = self.scene(index)
          let jpeg = try scene.image.jpegData(quality: configuration.jpegQuality)
          try writeFileAtomically(jpeg, to: directory.appendingPathComponent("JPEGImages/\(scene.id).jpg"))
          try writeFileAtomically(scene.annotation.xmlData(folder: "aepsl-synth"),
                                  to: directory.appendingPathComponent("Annotations/\(scene.id).xml"))
          try writeFileAtomically(try scene.mask.pngData(),
                                  to: directory.appendingPathComponent("SegmentationClass/\(scene.id).png"))
          let finished = done.increment()
          progress?(finished)
        } catch {
          failures.set(error)
        }
        index += workers
      }
    }
    if let error = failures.first { throw error }

    let c = configuration
    let trainIDs = (0..<c.trainCount).map(id)
    let valIDs = (c.trainCount..<(c.trainCount + c.valCount)).map(id)
    let testIDs = ((c.trainCount + c.valCount)..<total).map(id)
    func list(_ ids: [String]) -> Data { Data(ids.map { $0 + "\n" }.joined().utf8) }
    let lists = directory.appendingPathComponent("ImageSets/Segmentation")
    try writeFileAtomically(list(trainIDs), to: lists.appendingPathComponent("train.txt"))
    try writeFileAtomically(list(valIDs), to: lists.appendingPathComponent("val.txt"))
    if c.testCount != nil { try writeFileAtomically(list(testIDs), to: lists.appendingPathComponent("test.txt")) }
    try writeFileAtomically(list(trainIDs + valIDs), to: lists.appendingPathComponent("trainval.txt"))
    try writeFileAtomically(Data(classes.fileContents.utf8), to: directory.appendingPathComponent("classes.txt"))
    try writeFileAtomically(manifest(), to: directory.appendingPathComponent("synth.json"))

    var counts: [String: Int] = [:]
    for plan in plans { for c in plan { counts[Self.allStyles[c].name, default: 0] += 1 } }
    return Summary(trainIDs: trainIDs, valIDs: valIDs, testIDs: testIDs, classCounts: counts)
  }

  /// synth.json: the generator's version and parameters (no timestamps: files are
  /// byte-identical for one seed). Options left at the demo's are not listed, so the demo's
  /// manifest is what it always was.
  public func manifest() -> Data {
    let c = configuration
    var extra = ""
    if let t = c.testCount { extra += "  \"test\": \(t),\n" }
    if c.width != nil || c.height != nil { extra += "  \"width\": \(c.imageWidth),\n  \"height\": \(c.imageHeight),\n" }
    if let r = c.objectScale { extra += "  \"object_scale\": [\(r.lowerBound), \(r.upperBound)],\n" }
    if let r = c.objectsPerImage { extra += "  \"objects_per_image\": [\(r.lowerBound), \(r.upperBound)],\n" }
    let hues = (0..<c.classTotal).map { "\(Self.bodyHue($0))" }
    let json = """
      {
        "generator": "aepsl synth",
        "version": 1,
        "seed": \(c.seed),
        "train": \(c.trainCount),
        "val": \(c.valCount),
      \(extra)  "size": \(c.size),
        "jpeg_quality": \(c.jpegQuality),
        "classes": [\(styles.map { "\"\($0.name)\"" }.joined(separator: ", "))],
        "body_shapes": [\(BodyShape.allCases.map { "\"\($0)\"" }.joined(separator: ", "))],
        "preferred_body_probability": \(Self.preferredBodyProbability),
        "preferred_texture_probability": \(Self.preferredTextureProbability),
        "preferred_hue_probability": \(Self.preferredHueProbability),
        "body_hues": [\(hues.joined(separator: ", "))],
        "part_fraction_of_body": [\(Self.partFraction.lowerBound), \(Self.partFraction.upperBound)],
        "objects_per_image_weights": [\(Self.objectCountWeights.map { "\($0)" }.joined(separator: ", "))]
      }

      """
    return Data(json.utf8)
  }
}

private final class FailureBox: @unchecked Sendable {
  private let lock = NSLock()
  private var error: Error?
  private var counter = 0
  var first: Error? { lock.lock(); defer { lock.unlock() }; return error }
  func set(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
  func increment() -> Int { lock.lock(); defer { lock.unlock() }; counter += 1; return counter }
}
