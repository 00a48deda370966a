import AEPSLFiles
import AEPSLImaging
import Foundation

/// A dataset in the PASCAL VOC layout (docs/METHOD.md section 4):
///
///     ROOT/JPEGImages/<id>.jpg               the images
///     ROOT/Annotations/<id>.xml              object names = the image's labels
///     ROOT/SegmentationClass/<id>.png        masks, for evaluation only
///     ROOT/SegmentationClassAug/<id>.png     (read when SegmentationClass has no mask)
///     ROOT/ImageSets/Segmentation/<split>.txt
///     ROOT/classes.txt                       optional; default: the 20 VOC classes
///
/// The training path (`classificationSet`, `SampleSource`, `BatchLoader`) never opens a
/// mask; only `groundTruthMask(_:)`, for evaluation, does.
public struct VOCDataset: Sendable {
  public let root: URL
  public let classes: ClassList
  /// Whether `classes` came from ROOT/classes.txt (false: given, or the VOC default).
  public let classesFromFile: Bool

  public var imageDirectory: URL { root.appendingPathComponent("JPEGImages", isDirectory: true) }
  public var annotationDirectory: URL { root.appendingPathComponent("Annotations", isDirectory: true) }
  public var listDirectory: URL {
    root.appendingPathComponent("ImageSets", isDirectory: true).appendingPathComponent("Segmentation", isDirectory: true)
  }
  /// Where masks are looked for, in order.
  public var maskDirectories: [URL] {
    ["SegmentationClass", "SegmentationClassAug"].map { root.appendingPathComponent($0, isDirectory: true) }
  }

  /// Opens the dataset at `root`. `classes` overrides ROOT/classes.txt; without either,
  /// the 20 VOC classes.
  public init(root: URL, classes: ClassList? = nil) throws {
    self.root = root.standardizedFileURL
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: self.root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw AEPSLError(kind: .missingFile, file: self.root.path, problem: "no such dataset directory",
                         fix: "Give the root of a VOC-layout dataset (the folder holding JPEGImages/), or make one with `aepsl synth`")
    }
    let classFile = self.root.appendingPathComponent("classes.txt")
    if let classes {
      self.classes = classes
      classesFromFile = false
    } else if FileManager.default.fileExists(atPath: classFile.path) {
      self.classes = try ClassList(contentsOf: classFile)
      classesFromFile = true
    } else {
      self.classes = .voc
      classesFromFile = false
    }
  }

  // MARK: Lists

  /// The list file of `split`: a split name (ROOT/ImageSets/Segmentation/<split>.txt) or a
  /// path to any list file (anything containing "/" or ending in ".txt").
  public func listURL(split: String) -> URL {
    if split.contains("/") || split.hasSuffix(".txt") {
      return URL(fileURLWithPath: split).standardizedFileURL
    }
    return listDirectory.appendingPathComponent("\(split).txt")
  }

  /// The image ids of `split` (see `listURL(split:)`), in file order.
  public func imageIDs(split: String) throws -> [String] {
    try Self.readList(listURL(split: split))
  }

  /// Reads a list file. A line's first field is the id; "/JPEGImages/x.jpg /Segmentation.../x.png"
  /// lines (DeepLab's train_aug.txt) and "x  1" lines (ImageSets/Main) work too.
  /// Blank lines are skipped; an id listed twice is an error. A list is untrusted input: a
  /// path other than DeepLab's `/JPEGImages/<id>.<ext>` (an absolute path elsewhere, or one
  /// with `..`) is refused, so a list can never point outside the dataset.
  public static func readList(_ url: URL) throws -> [String] {
    try parseList(readDatasetFile(url, what: "image list"), file: url)
  }

  /// Parses a list file's bytes (see `readList`); `file` is named in errors.
  public static func parseList(_ data: Data, file url: URL) throws -> [String] {
    guard let text = String(data: data, encoding: .utf8) else {
      throw AEPSLError(kind: .invalidData, file: url.path, problem: "not UTF-8 text",
                         fix: "Write one image id a line")
    }
    var ids: [String] = []
    var lineOf: [String: Int] = [:]
    for (number, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
      guard let field = line.split(whereSeparator: \.isWhitespace).first else { continue }
      var id = String(field)
      if id.contains("/") || id.contains("\\") {
        let parts = id.split(separator: "/", omittingEmptySubsequences: false)
        let inside = parts.drop { $0.isEmpty }  // "/JPEGImages/x.jpg" and "JPEGImages/x.jpg"
        guard !parts.contains(".."), !id.contains("\\"), inside.count == 2, inside.first == "JPEGImages" else {
          throw AEPSLError(kind: .invalidData, file: url.path,
                             problem: "line \(number + 1) names the path '\(id)'; a list may hold image ids or "
                               + "/JPEGImages/<id>.jpg paths, never absolute paths elsewhere or '..'",
                             fix: "Write image ids (file names without extension) and put the images in the dataset's JPEGImages/")
        }
        id = String(inside.last!)
      }
      if id.hasSuffix(".jpg") || id.hasSuffix(".jpeg") || id.hasSuffix(".png") {
        id = URL(fileURLWithPath: id).deletingPathExtension().lastPathComponent
      }
      guard !id.isEmpty, id != ".", id != "..", !id.contains("\0") else {
        throw AEPSLError(kind: .invalidData, file: url.path, problem: "line \(number + 1) has no valid image id",
                           fix: "Write one image id (a file name without extension) a line")
      }
      if let first = lineOf[id] {
        throw AEPSLError(kind: .invalidData, file: url.path,
                           problem: "image '\(id)' is listed twice (lines \(first) and \(number + 1))",
                           fix: "Remove the duplicate line")
      }
      lineOf[id] = number + 1
      ids.append(id)
    }
    return ids
  }

  // MARK: Files of one image

  /// The image file of `id`: JPEGImages/<id>.jpg, or .jpeg / .png when only that exists.
  public func imageURL(_ id: String) -> URL {
    let jpg = imageDirectory.appendingPathComponent("\(id).jpg")
    if FileManager.default.fileExists(atPath: jpg.path) { return jpg }
    for ext in ["jpeg", "png", "JPG"] {
      let other = imageDirectory.appendingPathComponent("\(id).\(ext)")
      if FileManager.default.fileExists(atPath: other.path) { return other }
    }
    return jpg
  }

  public func annotationURL(_ id: String) -> URL { annotationDirectory.appendingPathComponent("\(id).xml") }

  /// The mask file of `id` if there is one (SegmentationClass first). Evaluation only.
  public func maskURL(_ id: String) -> URL? {
    for directory in maskDirectories {
      let url = directory.appendingPathComponent("\(id).png")
      if FileManager.default.fileExists(atPath: url.path) { return url }
    }
    return nil
  }

  public func annotation(_ id: String) throws -> VOCAnnotation {
    try VOCAnnotation(contentsOf: annotationURL(id), classes: classes)
  }

  /// The image of `id` decoded as RGB.
  public func image(_ id: String) throws -> Image { try readRGBImage(imageURL(id)) }

  /// The ground-truth mask of `id`: 0 background, 1...C classes, 255 ignore. For evaluation
  /// only: nothing on the training path calls this.
  public func groundTruthMask(_ id: String) throws -> LabelMap {
    guard let url = maskURL(id) else {
      throw AEPSLError(kind: .missingFile, file: maskDirectories[0].appendingPathComponent("\(id).png").path,
                         problem: "missing mask (looked in SegmentationClass/ and SegmentationClassAug/)",
                         fix: "Evaluate on a split whose images have masks")
    }
    let mask = try readLabelMap(url)
    // Header only: cheap, and a mask that does not fit its image would score the wrong pixels.
    if let header = try? ImageHeader(contentsOf: imageURL(id)), header.width != mask.width || header.height != mask.height {
      throw AEPSLError(kind: .invalidData, file: url.path,
                         problem: "the mask is \(mask.width)x\(mask.height) but its image \(imageURL(id).lastPathComponent) is \(header.width)x\(header.height)",
                         fix: "Masks must have their image's size; regenerate or re-download the mask")
    }
    let count = UInt8(classes.count)
    if let bad = mask.labels.first(where: { $0 > count && $0 != LabelMap.ignore }) {
      throw AEPSLError(kind: .invalidData, file: url.path,
                         problem: "label \(bad) is not background, one of the \(classes.count) classes, or 255",
                         fix: "Check that classes.txt matches the masks")
    }
    return mask
  }

  // MARK: The training view

  /// The labelled images of `split` for classification: labels from the XML, no masks.
  /// With `onBadImage: .skip`, listed images that are missing are left out and listed in
  /// `skipped` instead of throwing.
  public func classificationSet(split: String, onBadImage: BadImagePolicy = .fail) throws -> ClassificationSet {
    try classificationSet(ids: imageIDs(split: split), onBadImage: onBadImage)
  }

  /// Checks every image exists and reads every annotation; images without labels are
  /// skipped and counted. The first problem throws, naming its file (a missing image only
  /// under `onBadImage: .fail`).
  public func classificationSet(ids: [String], onBadImage: BadImagePolicy = .fail) throws -> ClassificationSet {
    var samples: [LabeledImage] = []
    var unlabeled: [String] = []
    var skipped: [SkippedImage] = []
    for id in ids {
      let image = imageURL(id)
      guard FileManager.default.fileExists(atPath: image.path) else {
        if onBadImage == .skip {
          skipped.append(SkippedImage(id: id, file: image.path, reason: "missing image (listed in the split)"))
          continue
        }
        throw AEPSLError(kind: .missingFile, file: image.path, problem: "missing image (listed in the split)",
                           fix: "Copy the image into JPEGImages/, remove '\(id)' from the list, or pass --on-bad-image skip")
      }
      let labels = try annotation(id).labels
      if labels.isEmpty {
        unlabeled.append(id)
      } else {
        samples.append(LabeledImage(id: id, imageURL: image, labels: labels))
      }
    }
    return ClassificationSet(classes: classes, samples: samples, skippedUnlabeled: unlabeled, skipped: skipped)
  }
}

/// One training image: where it is and its labels (0-based class indices, sorted).
public struct LabeledImage: Sendable, Equatable {
  public var id: String
  public var imageURL: URL
  public var labels: [Int]

  public init(id: String, imageURL: URL, labels: [Int]) {
    self.id = id; self.imageURL = imageURL; self.labels = labels
  }
}

/// The images of a split that have at least one label, with their labels. Holds no mask
/// paths: it is what training is allowed to see.
public struct ClassificationSet: Sendable {
  public let classes: ClassList
  public let samples: [LabeledImage]
  /// Images of the split whose annotation names no object, in list order.
  public let skippedUnlabeled: [String]
  /// Images left out because they are missing or unreadable (`BadImagePolicy.skip`).
  public let skipped: [SkippedImage]

  public init(classes: ClassList, samples: [LabeledImage], skippedUnlabeled: [String] = [], skipped: [SkippedImage] = []) {
    self.classes = classes; self.samples = samples; self.skippedUnlabeled = skippedUnlabeled; self.skipped = skipped
  }

  /// The same set without the images in `bad`, which are added to `skipped`.
  public func excluding(_ bad: [SkippedImage]) -> ClassificationSet {
    guard !bad.isEmpty else { return self }
    let ids = Set(bad.map(\.id))
    let known = Set(skipped.map(\.id))
    return ClassificationSet(classes: classes, samples: samples.filter { !ids.contains($0.id) },
                             skippedUnlabeled: skippedUnlabeled, skipped: skipped + bad.filter { !known.contains($0.id) })
  }

  public var count: Int { samples.count }
  public var ids: [String] { samples.map(\.id) }

  /// Images per class.
  public var classCounts: [Int] {
    var counts = [Int](repeating: 0, count: classes.count)
    for sample in samples { for c in sample.labels { counts[c] += 1 } }
    return counts
  }

  /// A source that decodes the images. `labelMaps`, when given, supplies a training mask per
  /// image id (the pseudo masks of a run, never the dataset's ground truth).
  public func source(labelMaps: (@Sendable (String) throws -> LabelMap)? = nil) -> SampleSource {
    let samples = self.samples
    return SampleSource(ids: samples.map(\.id), labels: samples.map(\.labels)) { index in
      let sample = samples[index]
      return Sample(id: sample.id, image: try readRGBImage(sample.imageURL), labels: sample.labels,
                    labelMap: try labelMaps?(sample.id))
    }
  }
}

/// One decoded training example.
public struct Sample: Sendable {
  public var id: String
  /// RGB.
  public var image: Image
  /// 0-based class indices.
  public var labels: [Int]
  /// Per-pixel training labels (0 background, 1...C, 255 ignore), same size as `image`.
  public var labelMap: LabelMap?

  public init(id: String, image: Image, labels: [Int], labelMap: LabelMap? = nil) {
    self.id = id; self.image = image; self.labels = labels; self.labelMap = labelMap
  }
}

/// Indexed, thread-safe access to samples: what `BatchLoader` draws from. `load` runs on the
/// loader's worker threads, several at once.
public struct SampleSource: Sendable {
  public let ids: [String]
  public let labels: [[Int]]
  private let loader: @Sendable (Int) throws -> Sample

  public init(ids: [String], labels: [[Int]], load: @escaping @Sendable (Int) throws -> Sample) {
    precondition(ids.count == labels.count, "SampleSource: \(ids.count) ids but \(labels.count) label sets")
    self.ids = ids
    self.labels = labels
    loader = load
  }

  public var count: Int { ids.count }

  public func load(_ index: Int) throws -> Sample { try loader(index) }

  /// The same samples with each image passed through `transform` (e.g. erasing mined
  /// regions); `transform` gets the sample index and must be thread-safe.
  public func mapSamples(_ transform: @escaping @Sendable (Int, Sample) throws -> Sample) -> SampleSource {
    let base = loader
    return SampleSource(ids: ids, labels: labels) { index in try transform(index, base(index)) }
  }

  /// The samples at `indices`, in that order.
  public func subset(_ indices: [Int]) -> SampleSource {
    let base = loader
    return SampleSource(ids: indices.map { ids[$0] }, labels: indices.map { labels[$0] }) { i in
      try base(indices[i])
    }
  }
}
