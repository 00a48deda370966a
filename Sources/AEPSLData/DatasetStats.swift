import AEPSLFiles
import AEPSLImaging
import Foundation

/// Something wrong with one file of a dataset.
public struct DatasetProblem: Sendable, Equatable, CustomStringConvertible {
  public var file: String
  public var problem: String
  public var description: String { "\(file): \(problem)" }
}

/// What `aepsl dataset stats` reports: counts per class, labels per image, image sizes, and
/// every problem found. Reads list, annotations and image headers; masks only on request
/// (and only to check them). Trains nothing.
public struct DatasetStatistics: Sendable {
  public var root: String
  public var listFile: String
  public var classes: ClassList
  public var classesFromFile: Bool
  /// Images in the list.
  public var listed = 0
  /// Images with at least one label (what classification trains on).
  public var labeled = 0
  /// Listed images whose annotation names no object: skipped for classification.
  public var unlabeled: [String] = []
  public var imagesPerClass: [Int]
  public var objectsPerClass: [Int]
  public var difficultObjects = 0
  /// Number of images with k labels, by k.
  public var labelsPerImage: [Int: Int] = [:]
  /// Number of images of each size "WxH".
  public var sizes: [String: Int] = [:]
  public var minimumSide = Int.max
  public var maximumSide = 0
  /// Listed images that have a mask (SegmentationClass/ or SegmentationClassAug/).
  public var withMasks = 0
  public var problems: [DatasetProblem] = []

  /// Goes through every image of `split` (a name or a list file path); collects problems
  /// instead of stopping at the first. Throws only when there is no dataset to look at (no
  /// such directory, an unreadable classes.txt): a table of zeros would hide that.
  public init(root: URL, split: String, checkMasks: Bool = false) throws {
    let dataset = try VOCDataset(root: root)
    let listURL = dataset.listURL(split: split)
    self.init(root: dataset.root.path, listFile: listURL.path, classes: dataset.classes,
              classesFromFile: dataset.classesFromFile)
    let ids: [String]
    do {
      ids = try VOCDataset.readList(listURL)
    } catch {
      problems.append(problem(error, file: listURL.path))
      return
    }
    listed = ids.count
    for id in ids { examine(id, in: dataset, checkMasks: checkMasks) }
  }

  private init(root: String, listFile: String, classes: ClassList, classesFromFile: Bool) {
    self.root = root
    self.listFile = listFile
    self.classes = classes
    self.classesFromFile = classesFromFile
    imagesPerClass = [Int](repeating: 0, count: classes.count)
    objectsPerClass = imagesPerClass
  }

  private func problem(_ error: Error, file: String) -> DatasetProblem {
    if let e = error as? AEPSLError {
      return DatasetProblem(file: e.file ?? file, problem: e.problemAndFix)
    }
    return DatasetProblem(file: file, problem: "\(error)")
  }

  private mutating func examine(_ id: String, in dataset: VOCDataset, checkMasks: Bool) {
    let imageURL = dataset.imageURL(id)
    var header: ImageHeader?
    if !FileManager.default.fileExists(atPath: imageURL.path) {
      problems.append(DatasetProblem(file: imageURL.path, problem: "missing image (listed in the split)"))
    } else {
      do {
        let h = try ImageHeader(contentsOf: imageURL)
        header = h
        sizes["\(h.width)x\(h.height)", default: 0] += 1
        minimumSide = min(minimumSide, min(h.width, h.height))
        maximumSide = max(maximumSide, max(h.width, h.height))
        if h.channels == 4 {
          problems.append(DatasetProblem(file: imageURL.path, problem: "a CMYK JPEG, which is not read; convert it to RGB"))
        }
      } catch {
        problems.append(problem(error, file: imageURL.path))
      }
    }

    do {
      let annotation = try dataset.annotation(id)
      let labels = annotation.labels
      if labels.isEmpty {
        unlabeled.append(id)
      } else {
        labeled += 1
        for c in labels { imagesPerClass[c] += 1 }
      }
      labelsPerImage[labels.count, default: 0] += 1
      for object in annotation.objects {
        objectsPerClass[object.classIndex] += 1
        if object.difficult { difficultObjects += 1 }
      }
      if let header, let w = annotation.width, let h = annotation.height, w > 0, h > 0,
         w != header.width || h != header.height {
        problems.append(DatasetProblem(file: dataset.annotationURL(id).path,
                                       problem: "states size \(w)x\(h) but the image is \(header.width)x\(header.height)"))
      }
    } catch {
      problems.append(problem(error, file: dataset.annotationURL(id).path))
    }

    if let maskURL = dataset.maskURL(id) {
      withMasks += 1
      if checkMasks {
        do {
          let mask = try dataset.groundTruthMask(id)
          if let header, mask.width != header.width || mask.height != header.height {
            problems.append(DatasetProblem(file: maskURL.path,
                                           problem: "mask is \(mask.width)x\(mask.height) but the image is \(header.width)x\(header.height)"))
          }
        } catch {
          problems.append(problem(error, file: maskURL.path))
        }
      }
    }
  }

  /// The report as text.
  public var report: String {
    var lines: [String] = []
    lines.append("Dataset \(root)")
    lines.append("List \(listFile): \(listed) images, \(labeled) with labels, \(unlabeled.count) without (skipped for classification)")
    lines.append("Classes (\(classes.count), \(classesFromFile ? "from classes.txt" : "VOC default")):")
    let width = max(5, classes.names.map(\.count).max() ?? 5)
    lines.append("  " + "class".padding(toLength: width, withPad: " ", startingAt: 0) + "  images  objects")
    for (c, name) in classes.names.enumerated() {
      lines.append("  " + name.padding(toLength: width, withPad: " ", startingAt: 0)
                   + String(format: "  %6d  %7d", imagesPerClass[c], objectsPerClass[c]))
    }
    if difficultObjects > 0 { lines.append("Objects marked difficult (counted as labels): \(difficultObjects)") }
    let histogram = labelsPerImage.keys.sorted().map { "\($0): \(labelsPerImage[$0]!)" }.joined(separator: ", ")
    let total = labelsPerImage.reduce(0) { $0 + $1.key * $1.value }
    let images = labelsPerImage.values.reduce(0, +)
    lines.append("Labels per image: " + (histogram.isEmpty ? "none" : histogram)
                 + (images > 0 ? String(format: " (mean %.2f)", Double(total) / Double(images)) : ""))
    if sizes.isEmpty {
      lines.append("Image sizes: none read")
    } else {
      let common = sizes.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(3)
        .map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
      lines.append("Image sizes: \(sizes.count) distinct, sides \(minimumSide)...\(maximumSide); most common \(common)")
    }
    lines.append("Masks (evaluation only): \(withMasks) of \(listed)")
    if problems.isEmpty {
      lines.append("No problems found.")
    } else {
      lines.append("\(problems.count) problem\(problems.count == 1 ? "" : "s"):")
      for p in problems { lines.append("  \(p)") }
    }
    return lines.joined(separator: "\n")
  }
}
