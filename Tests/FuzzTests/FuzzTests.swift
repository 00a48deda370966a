import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation
import Testing
@testable import AEPSLData

/// Issue 7: fuzz targets for every reader of untrusted bytes. Each runs a bounded number of
/// mutated inputs in the normal test run (CI), prints and logs how many it tried, and fails
/// on an error of a type the reader does not document; a crash ends the run with the input in
/// <tmp>/aepsl-fuzz-current-<target>.bin. Run longer: AEPSL_FUZZ_SECONDS=600 (per target) or
/// AEPSL_FUZZ_ITERATIONS=1000000, with AEPSL_FUZZ_SEED=<n> for other mutations (README).
@Suite("Fuzzing the readers of untrusted files")
struct FuzzTests {
  // MARK: Seeds, written by the project's own writers at run time

  static func safetensorsSeeds() throws -> [Data] {
    [
      try SafetensorsFile.encode([("a", Tensor(shape: [3], values: [1, 2, 3])),
                                  ("conv.weight", Tensor(shape: [2, 1, 2, 2], values: (0..<8).map(Float.init)))],
                                 metadata: ["epoch": "2", "settings": "x"]),
      try SafetensorsFile.encode([("s", Tensor(shape: [], values: [7]))]),
      try SafetensorsFile.encode([("e", Tensor(shape: [0, 4], values: []))]),
      // Hand-written, with the dtypes only other writers use.
      safetensors(#"{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]},"d":{"dtype":"F64","shape":[1],"data_offsets":[6,14]}}"#,
                  data: [0, 60, 0, 188, 128, 63, 0, 0, 0, 0, 0, 0, 240, 63]),
    ]
  }

  static func safetensors(_ header: String, data: [UInt8]) -> Data {
    let h = Array(header.utf8)
    var out: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(h.count) >> (8 * UInt64($0))) }
    out += h + data
    return Data(out)
  }

  static func npySeeds() throws -> [Data] {
    [
      try NumPyArray.encode([1, 2, 3, 4, 5, 6], shape: [2, 3]),
      try NumPyArray.encode([], shape: [0]),
      try NumPyArray.encode([42], shape: []),
      try NumPyArray.encode((0..<24).map(Float.init), shape: [2, 3, 4]),
      npy("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }\n", data: [1, 2, 3]),
      npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }\n", data: [0, 0, 0, 0, 0, 0, 240, 63]),
    ]
  }

  static func npy(_ header: String, data: [UInt8]) -> Data {
    let h = Array(header.utf8)
    return Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(h.count & 0xFF), UInt8(h.count >> 8)] + h + data)
  }

  static let classes = try! ClassList(names: ["cat", "dog", "bird"])

  static func xmlSeeds() -> [Data] {
    let full = VOCAnnotation(filename: "x.jpg", width: 40, height: 30, objects: [
      .init(name: "cat", classIndex: 0, difficult: true, box: .init(xmin: 1, ymin: 2, xmax: 30, ymax: 20)),
      .init(name: "dog", classIndex: 1, truncated: true),
    ]).xmlData()
    return [
      full,
      Data("<?xml version=\"1.0\"?>\n<!-- c --><annotation><object><name> bird </name><part><name>head</name></part></object></annotation>".utf8),
      Data("<annotation><object><name><![CDATA[cat]]></name><difficult>0</difficult></object><filename>a&amp;b&#65;&#x42;</filename></annotation>".utf8),
      Data("<!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><annotation><object><name>&e;</name></object></annotation>".utf8),
    ]
  }

  static func listSeeds() -> [Data] {
    [
      Data("2007_000032\n2007_000039\n\n2007_000063\n".utf8),
      Data("/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png\n/JPEGImages/a.jpg /S/a.png\n".utf8),
      Data("2008_000002 -1\n2008_000003  1\r\nx.jpg\n".utf8),
    ]
  }

  static func imageSeeds() throws -> [Data] {
    var pixels = [UInt8](repeating: 0, count: 24 * 16 * 3)
    for i in pixels.indices { pixels[i] = UInt8(truncatingIfNeeded: i * 37 &+ i / 7) }
    let rgb = Image(width: 24, height: 16, channels: 3, pixels: pixels)
    let gray = rgb.converted(toChannels: 1)
    return [
      try rgb.jpegData(quality: 80), try rgb.jpegData(quality: 50, progressive: true), try gray.jpegData(quality: 90),
      try rgb.pngData(), try gray.pngData(),
      try LabelMap(width: 16, height: 12, labels: (0..<192).map { UInt8($0 % 4 == 3 ? 255 : $0 % 4) }).pngData(),
    ]
  }

  // MARK: Targets

  @Test func everySeedReads() throws {
    for seed in try Self.safetensorsSeeds() { _ = try SafetensorsFile(data: seed, name: "seed") }
    for seed in try Self.npySeeds() { _ = try NumPyArray.decode(seed, name: "seed") }
    for seed in Self.xmlSeeds().dropLast() { _ = try VOCAnnotation(xmlData: seed, classes: Self.classes) }
    for seed in Self.listSeeds() { _ = try VOCDataset.parseList(seed, file: URL(fileURLWithPath: "/l.txt")) }
    for seed in try Self.imageSeeds().dropLast() { _ = try decodeRGBImage(seed, file: URL(fileURLWithPath: "/i")) }
  }

  static func check(_ report: FuzzReport) {
    #expect(report.unexpected.isEmpty, "\(report.target): errors of undocumented types: \(report.unexpected)")
    #expect(report.tried > 0)
  }

  @Test func safetensorsReader() throws {
    Self.check(fuzz("safetensors", seeds: try Self.safetensorsSeeds(), defaultIterations: 8000,
                    expected: { $0 is AEPSLError }) { data in
      _ = try SafetensorsFile(data: data, name: "fuzz.safetensors")
    })
  }

  @Test func npyReader() throws {
    Self.check(fuzz("npy", seeds: try Self.npySeeds(), defaultIterations: 8000, expected: { $0 is AEPSLError }) { data in
      _ = try NumPyArray.decode(data, name: "fuzz.npy")
    })
  }

  @Test func annotationXMLReader() {
    Self.check(fuzz("xml", seeds: Self.xmlSeeds(), defaultIterations: 6000, expected: { $0 is AEPSLError }) { data in
      _ = try VOCAnnotation(xmlData: data, classes: Self.classes, file: "fuzz.xml")
    })
  }

  @Test func listFileReader() {
    let file = URL(fileURLWithPath: "/data/fuzz.txt")
    Self.check(fuzz("list", seeds: Self.listSeeds(), defaultIterations: 6000, expected: { $0 is AEPSLError }) { data in
      let ids = try VOCDataset.parseList(data, file: file)
      // Whatever is accepted is a plain file name: no path can leave the dataset.
      for id in ids where id.contains("/") || id == ".." || id == "." || id.isEmpty {
        Issue.record("list accepted the id '\(id)'")
      }
    })
  }

  @Test func imageReaders() throws {
    let file = URL(fileURLWithPath: "/data/JPEGImages/fuzz.jpg")
    Self.check(fuzz("image", seeds: try Self.imageSeeds(), defaultIterations: 5000,
                    expected: { $0 is AEPSLError || $0 is AEPSLError }) { data in
      _ = try decodeRGBImage(data, file: file)
    })
    Self.check(fuzz("mask", seeds: try Self.imageSeeds(), defaultIterations: 3000,
                    expected: { $0 is AEPSLError || $0 is AEPSLError }) { data in
      _ = try decodeLabelMap(data, file: file)
    })
  }
}
