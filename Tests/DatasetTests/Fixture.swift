import AEPSLImaging
import Foundation
@testable import AEPSLData

/// A fresh temporary directory, removed by `remove()`.
func temporaryDirectory(_ name: String = #function) throws -> URL {
  let tag = name.filter { $0.isLetter || $0.isNumber }
  let url = FileManager.default.temporaryDirectory
    .appendingPathComponent("aepsl-dataset-tests-\(tag)-\(UUID().uuidString)", isDirectory: true)
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

func write(_ text: String, to url: URL) throws {
  try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
  try Data(text.utf8).write(to: url)
}

func write(_ data: Data, to url: URL) throws {
  try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
  try data.write(to: url)
}

/// A VOC annotation with the given objects: (name, difficult).
func annotationXML(_ objects: [(String, Bool)], width: Int = 40, height: Int = 30, extra: String = "") -> String {
  var xml = "<?xml version=\"1.0\"?>\n<annotation>\n  <folder>VOC2012</folder>\n  <filename>x.jpg</filename>\n"
  xml += "  <size><width>\(width)</width><height>\(height)</height><depth>3</depth></size>\n"
  for (name, difficult) in objects {
    xml += "  <object>\n    <name>\(name)</name>\n    <difficult>\(difficult ? 1 : 0)</difficult>\n"
    xml += "    <bndbox><xmin>2</xmin><ymin>3</ymin><xmax>20</xmax><ymax>15</ymax></bndbox>\n\(extra)  </object>\n"
  }
  return xml + "</annotation>\n"
}

/// A small dataset in the VOC layout built from scratch:
///
/// - classes.txt: cat, dog, bird
/// - train: a (cat), b (dog + bird, the bird difficult), c (no objects), d (cat, a PNG image)
/// - val: e (bird)
/// - every image has a mask in SegmentationClass/, e also in SegmentationClassAug/
struct VOCFixture {
  let root: URL
  let classes = ["cat", "dog", "bird"]
  let train = ["a", "b", "c", "d"]
  let val = ["e"]
  let expectedLabels: [String: [Int]] = ["a": [0], "b": [1, 2], "c": [], "d": [0], "e": [2]]
  let sizes: [String: (Int, Int)] = ["a": (40, 30), "b": (36, 30), "c": (40, 30), "d": (24, 20), "e": (40, 32)]

  init(name: String = #function) throws {
    root = try temporaryDirectory(name)
    try write(classes.joined(separator: "\n") + "\n\n", to: root.appendingPathComponent("classes.txt"))
    let objects: [String: [(String, Bool)]] = [
      "a": [("cat", false)], "b": [("dog", false), ("bird", true)], "c": [], "d": [("cat", false)], "e": [("bird", false)],
    ]
    for id in train + val {
      let (w, h) = sizes[id]!
      let image = Self.pattern(width: w, height: h, seed: id.unicodeScalars.first!.value)
      let data = id == "d" ? try image.pngData() : try image.jpegData(quality: 95)
      try write(data, to: root.appendingPathComponent("JPEGImages/\(id).\(id == "d" ? "png" : "jpg")"))
      try write(annotationXML(objects[id]!, width: w, height: h), to: root.appendingPathComponent("Annotations/\(id).xml"))
      let mask = Self.mask(width: w, height: h, labels: expectedLabels[id]!.map { UInt8($0 + 1) })
      try write(try mask.pngData(), to: root.appendingPathComponent("SegmentationClass/\(id).png"))
    }
    try write(try Self.mask(width: 40, height: 32, labels: [3]).pngData(),
              to: root.appendingPathComponent("SegmentationClassAug/e.png"))
    try write(train.joined(separator: "\n") + "\n", to: root.appendingPathComponent("ImageSets/Segmentation/train.txt"))
    try write(val.joined(separator: "\n") + "\n", to: root.appendingPathComponent("ImageSets/Segmentation/val.txt"))
  }

  func remove() { try? FileManager.default.removeItem(at: root) }

  static func pattern(width: Int, height: Int, seed: UInt32) -> Image {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
      for x in 0..<width {
        pixels[(y * width + x) * 3] = UInt8((x * 6 + Int(seed)) % 256)
        pixels[(y * width + x) * 3 + 1] = UInt8((y * 8) % 256)
        pixels[(y * width + x) * 3 + 2] = UInt8(((x + y) * 3) % 256)
      }
    }
    return Image(width: width, height: height, channels: 3, pixels: pixels)
  }

  /// Stripes of the given labels with a 255 column between them.
  static func mask(width: Int, height: Int, labels: [UInt8]) -> LabelMap {
    var values = [UInt8](repeating: 0, count: width * height)
    for y in 0..<height {
      for x in 0..<width {
        let band = x * (labels.count + 1) / width
        values[y * width + x] = band == 0 ? 0 : (x % 7 == 0 ? 255 : labels[band - 1])
      }
    }
    return LabelMap(width: width, height: height, labels: values)
  }
}
