import AEPSLFiles
import AEPSLImaging
import Foundation
import Testing
@testable import AEPSLData

/// Issue 7: every kind of bad dataset input gets an error naming the file and the problem,
/// or under `--on-bad-image skip` is left out and listed. (Unknown class names, corrupt
/// images read directly and mask labels beyond the class list are covered in
/// VOCDatasetTests; the stage-level behaviour in MethodTests/BadImageStageTests.)
@Suite("Bad dataset input")
struct BadInputTests {
  /// A PNG whose header claims `width` x `height` (with a valid CRC), over a tiny image's data.
  static func pngClaiming(width: UInt32, height: UInt32) throws -> Data {
    var bytes = [UInt8](try Image(width: 8, height: 8, channels: 3).pngData())
    // IHDR: length(4) "IHDR"(4) at offset 8; width at 16, height at 20, CRC over type+body at 29.
    for (i, v) in [width, height].enumerated() {
      for k in 0..<4 { bytes[16 + 4 * i + k] = UInt8(truncatingIfNeeded: v >> (24 - 8 * UInt32(k))) }
    }
    let crc = crc32(Array(bytes[12..<29]))
    for k in 0..<4 { bytes[29 + k] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * UInt32(k))) }
    return Data(bytes)
  }

  /// A JPEG whose frame header claims `width` x `height`.
  static func jpegClaiming(width: UInt16, height: UInt16) throws -> Data {
    var bytes = [UInt8](try Image(width: 16, height: 16, channels: 3).jpegData())
    let sof = (0..<(bytes.count - 1)).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 }!
    bytes[sof + 5] = UInt8(height >> 8); bytes[sof + 6] = UInt8(height & 0xFF)
    bytes[sof + 7] = UInt8(width >> 8); bytes[sof + 8] = UInt8(width & 0xFF)
    return Data(bytes)
  }

  static func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
      crc ^= UInt32(b)
      for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
  }

  struct BadImage: CustomTestStringConvertible, Sendable {
    let name: String
    let file: String
    let bytes: @Sendable () throws -> Data
    let phrases: [String]
    var testDescription: String { name }
  }

  @Test("a bad image is an error naming the file and the problem", arguments: [
    BadImage(name: "truncated JPEG", file: "a.jpg", bytes: {
      let d = try VOCFixture.pattern(width: 40, height: 30, seed: 1).jpegData(quality: 95); return d.prefix(d.count / 2)
    }, phrases: ["truncated"]),
    BadImage(name: "corrupt PNG", file: "a.png", bytes: {
      var d = [UInt8](try VOCFixture.pattern(width: 40, height: 30, seed: 1).pngData()); d[40] ^= 0xFF; return Data(d)
    }, phrases: []),
    BadImage(name: "1x1 image", file: "a.png", bytes: { try Image(width: 1, height: 1, channels: 3).pngData() },
             phrases: ["1x1", "8-pixel minimum", "--on-bad-image skip"]),
    BadImage(name: "huge PNG (past the limit)", file: "a.png", bytes: { try pngClaiming(width: 100_000, height: 100_000) },
             phrases: ["100000x100000", "limit of \(ImageLimits.maximumPixels) pixels"]),
    BadImage(name: "huge JPEG (past the limit)", file: "a.jpg", bytes: { try jpegClaiming(width: 60_000, height: 60_000) },
             phrases: ["60000x60000", "limit"]),
  ])
  func badImage(_ bad: BadImage) throws {
    let fixture = try VOCFixture()
    defer { fixture.remove() }
    for ext in ["jpg", "png"] { try? FileManager.default.removeItem(at: fixture.root.appendingPathComponent("JPEGImages/a.\(ext)")) }
    let url = fixture.root.appendingPathComponent("JPEGImages/\(bad.file)")
    try write(try bad.bytes(), to: url)
    let dataset = try VOCDataset(root: fixture.root)
    let set = try dataset.classificationSet(split: "train")
    let started = Date()
    let error = #expect(throws: (any Error).self) { _ = try set.source().load(0) }
    #expect(Date().timeIntervalSince(started) < 1, "refused from the header, without allocating the pixels")
    let text = "\(error.map { "\($0)" } ?? "")"
    #expect(text.contains(url.path), "\(text)")
    for phrase in bad.phrases { #expect(text.contains(phrase), "\(text)") }
  }

  @Test("the smallest and a large allowed size still load")
  func limitsAreInclusive() throws {
    let fixture = try VOCFixture()
    defer { fixture.remove() }
    try FileManager.default.removeItem(at: fixture.root.appendingPathComponent("JPEGImages/a.jpg"))
    try write(try Image(width: ImageLimits.minimumSide, height: ImageLimits.minimumSide, channels: 3).pngData(),
              to: fixture.root.appendingPathComponent("JPEGImages/a.png"))
    #expect(try VOCDataset(root: fixture.root).image("a").width == ImageLimits.minimumSide)
  }

  @Test("a ground-truth mask whose size differs from its image is refused, naming the mask")
  func maskSizeMismatch() throws {
    let fixture = try VOCFixture()
    defer { fixture.remove() }
    let url = fixture.root.appendingPathComponent("SegmentationClass/e.png")
    try write(try VOCFixture.mask(width: 20, height: 32, labels: [3]).pngData(), to: url)
    let error = #expect(throws: AEPSLError.self) { try VOCDataset(root: fixture.root).groundTruthMask("e") }
    #expect(error?.file == url.path)
    #expect(error?.problem.contains("20x32 but its image e.jpg is 40x32") == true, "\(String(describing: error))")
  }

  @Test("mask values that are no class are refused, naming the mask")
  func maskValueNoClass() throws {
    let fixture = try VOCFixture()
    defer { fixture.remove() }
    let url = fixture.root.appendingPathComponent("SegmentationClass/e.png")
    try write(try VOCFixture.mask(width: 40, height: 32, labels: [200]).pngData(), to: url)
    let error = #expect(throws: AEPSLError.self) { try VOCDataset(root: fixture.root).groundTruthMask("e") }
    #expect(error?.file == url.path)
    #expect(error?.problem.contains("label 200 is not background") == true)
  }

  @Test("a list naming a missing image: an error by default, skipped and listed under skip")
  func missingImage() throws {
    let fixture = try VOCFixture()
    defer { fixture.remove() }
    try FileManager.default.removeItem(at: fixture.root.appendingPathComponent("JPEGImages/b.jpg"))
    let dataset = try VOCDataset(root: fixture.root)
    let error = #expect(throws: AEPSLError.self) { try dataset.classificationSet(split: "train") }
    #expect(error?.file?.hasSuffix("JPEGImages/b.jpg") == true)
    #expect(error?.fix?.contains("--on-bad-image skip") == true)
    let set = try dataset.classificationSet(split: "train", onBadImage: .skip)
    #expect(set.ids == ["a", "d"])
    #expect(set.skipped.map(\.id) == ["b"])
    #expect(set.skipped.first?.file.hasSuffix("JPEGImages/b.jpg") == true)
    #expect(set.skipped.first?.reason.contains("missing image") == true)
  }

  @Test("an empty split reads as no images (the stages then stop naming the list)")
  func emptySplit() throws {
    let fixture = try VOCFixture()
    defer { fixture.remove() }
    try write("\n\n", to: fixture.root.appendingPathComponent("ImageSets/Segmentation/empty.txt"))
    let set = try VOCDataset(root: fixture.root).classificationSet(split: "empty")
    #expect(set.count == 0 && set.skipped.isEmpty)
  }

  @Test("a list with absolute paths or '..' is refused with the line and the fix", arguments: [
    "/etc/passwd", "../../../etc/passwd", "JPEGImages/../../secret.jpg", "/home/me/VOC/JPEGImages/x.jpg",
    "sub/dir/x", "..\\..\\x", "/JPEGImages/../x.jpg",
  ])
  func listPathsRefused(_ line: String) throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let list = dir.appendingPathComponent("list.txt")
    try write("ok_1\n\(line) extra\n", to: list)
    let error = #expect(throws: AEPSLError.self) { try VOCDataset.readList(list) }
    #expect(error?.file == list.path)
    #expect(error?.problem.contains("line 2") == true, "\(String(describing: error))")
    #expect(error?.fix?.contains("JPEGImages/") == true)
  }

  @Test("DeepLab's /JPEGImages/<id>.jpg lines are still read")
  func deepLabPathsAccepted() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let list = dir.appendingPathComponent("list.txt")
    try write("/JPEGImages/a.jpg /SegmentationClassAug/a.png\nJPEGImages/b.jpg\nc.jpg\nd\n", to: list)
    #expect(try VOCDataset.readList(list) == ["a", "b", "c", "d"])
  }

  @Test("resuming an epoch at batch k serves exactly the batches k... of the whole epoch")
  func epochFromBatch() throws {
    let fixture = try VOCFixture()
    defer { fixture.remove() }
    let set = try VOCDataset(root: fixture.root).classificationSet(split: "train")
    let options = BatchLoader.Options(batchSize: 1, augmentation: .deepLab(crop: 16), shuffle: true, seed: 5)
    let loader = BatchLoader(source: set.source(), classes: 3, options: options)
    var whole: [Batch] = []
    let all = loader.epoch(2)
    while let b = try all.next() { whole.append(b) }
    var tail: [Batch] = []
    let rest = loader.epoch(2, from: 1)
    while let b = try rest.next() { tail.append(b) }
    #expect(tail.map(\.number) == Array(1..<whole.count))
    #expect(tail.map(\.ids) == whole.dropFirst().map(\.ids))
    #expect(tail.map(\.images.values) == whole.dropFirst().map(\.images.values))
  }
}
