import AEPSLCRF
import AEPSLData
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import AEPSLMethod
import AEPSLTestSupport
import Foundation
import Testing

/// Real PASCAL VOC 2012 files, not written by aepsl: Debian's labelme-examples ships three VOC
/// photographs (2011_000003, 2011_000006, 2011_000025) with their class masks as palette PNGs,
/// the same masks as int32 .npy arrays (labelme's own, -1 for ignore), and VOC XML
/// annotations. `scripts/install-deps.sh --with-test-data` (make test) installs it.
@Suite("Real VOC files (labelme-examples)")
struct LabelmeVOCTests {
  static let examples = URL(fileURLWithPath: "/usr/share/doc/labelme-examples/examples")
  static var segmentation: URL { examples.appendingPathComponent("semantic_segmentation/data_dataset_voc") }
  static let ids = ["2011_000003", "2011_000006", "2011_000025"]

  /// A VOC-layout dataset made of links to the package's files: its JPEG images, its palette
  /// masks as SegmentationClass/ and the detection example's annotations of the same images.
  struct Dataset {
    let root: URL
    let dataset: VOCDataset

    init(name: String = #function) throws {
      guard FileManager.default.fileExists(atPath: LabelmeVOCTests.segmentation.path) else {
        Issue.record("\(LabelmeVOCTests.segmentation.path) is missing: run `bash scripts/install-deps.sh --with-test-data` (make test does)")
        throw AEPSLError(kind: .missingFile, file: LabelmeVOCTests.segmentation.path, problem: "missing")
      }
      root = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-labelme-\(name.filter(\.isLetter))-\(UUID().uuidString)")
      let fm = FileManager.default
      try fm.createDirectory(at: root.appendingPathComponent("ImageSets/Segmentation"), withIntermediateDirectories: true)
      let links = [("JPEGImages", "semantic_segmentation/data_dataset_voc/JPEGImages"),
                   ("SegmentationClass", "semantic_segmentation/data_dataset_voc/SegmentationClassPNG"),
                   ("Annotations", "bbox_detection/data_dataset_voc/Annotations")]
      for (name, target) in links {
        try fm.createSymbolicLink(at: root.appendingPathComponent(name), withDestinationURL: LabelmeVOCTests.examples.appendingPathComponent(target))
      }
      try writeFileAtomically(Data((LabelmeVOCTests.ids.joined(separator: "\n") + "\n").utf8),
                              to: root.appendingPathComponent("ImageSets/Segmentation/val.txt"))
      dataset = try VOCDataset(root: root)  // no classes.txt: the 20 VOC classes
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
  }

  /// labelme's int32 .npy of a mask, with its -1 (ignore) as VOC's 255.
  static func labelmeMask(_ id: String) throws -> (width: Int, height: Int, labels: [UInt8]) {
    let data = try Data(contentsOf: segmentation.appendingPathComponent("SegmentationClass/\(id).npy"))
    let headerLength = Int(data[8]) | Int(data[9]) << 8
    let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
    try #require(header.contains("'descr': '<i4'") && header.contains("'fortran_order': False"), "\(header)")
    let shape = try #require(header.firstRange(of: /\((\d+), (\d+)\)/).map { header[$0] })
    let numbers = shape.dropFirst().dropLast().split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    let values: [Int32] = data[(10 + headerLength)...].withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
    try #require(values.count == numbers[0] * numbers[1])
    return (numbers[1], numbers[0], values.map { $0 < 0 ? 255 : UInt8($0) })
  }

  /// The palette PNG reader decodes each mask to the very indices labelme wrote in its array.
  @Test(arguments: zip(ids, [[0, 5, 15, 255], [0, 9, 15, 18, 255], [0, 6, 7]]))
  func masksDecodeToLabelmesIndices(_ id: String, _ present: [Int]) throws {
    let d = try Dataset()
    defer { d.remove() }
    let mask = try d.dataset.groundTruthMask(id)
    let truth = try Self.labelmeMask(id)
    let image = try d.dataset.image(id)
    #expect((mask.width, mask.height) == (truth.width, truth.height))
    #expect((mask.width, mask.height) == (image.width, image.height))
    #expect(mask.labels == truth.labels, "pixels differ: \(zip(mask.labels, truth.labels).filter { $0 != $1 }.count)")
    #expect(Set(mask.labels).map(Int.init).sorted() == present)
  }

  /// The VOC reader on real XML: each image's tagged classes, each painted in its mask.
  @Test func annotationsNameClassesTheMasksPaint() throws {
    let d = try Dataset()
    defer { d.remove() }
    let set = try d.dataset.classificationSet(split: "val")
    let names = set.samples.map { $0.labels.map { d.dataset.classes.names[$0] } }
    #expect(names == [["person"], ["person"], ["bus", "car"]])
    for sample in set.samples {
      let painted = Set(try d.dataset.groundTruthMask(sample.id).labels)
      for label in sample.labels { #expect(painted.contains(UInt8(label + 1)), "\(sample.id): \(label)") }
    }
  }
}
