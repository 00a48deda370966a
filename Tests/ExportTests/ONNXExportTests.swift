import AEPSLEngine
import AEPSLExport
import AEPSLFiles
import AEPSLImaging
import AEPSLMethod
import AEPSLTestSupport
import Foundation
import Testing

/// `aepsl export --onnx` end to end: the built binary exports a run's network, aepsl computes
/// its outputs on a few images of different sizes, and check_onnx.py runs the file in
/// onnxruntime and compares (max |diff| <= 1e-4 + 1e-3 max |aepsl|, argmax agreement >= 99.9%).
@Suite("ONNX export against onnxruntime")
struct ONNXExportTests {
  enum Kind: String, Sendable { case segmenter, classifier }

  struct Case: CustomTestStringConvertible, Sendable {
    let net: String
    let kind: Kind
    /// (batch, height, width) of each input: sizes on the grid, off it, and a batch of two.
    let inputs: [(n: Int, h: Int, w: Int)]
    var testDescription: String { "\(net) \(kind.rawValue)" }
  }

  static let cases = [
    Case(net: "tiny", kind: .segmenter, inputs: [(1, 64, 48), (2, 61, 47), (1, 33, 90)]),
    // largefov at small sizes: 8k + 1 (its grid) and off it; fc6's dilation of 12 then
    // reaches far into the padding.
    Case(net: "largefov", kind: .segmenter, inputs: [(1, 41, 49), (1, 35, 30)]),
    Case(net: "tiny", kind: .classifier, inputs: [(1, 64, 64), (2, 45, 70)]),
  ]

  @Test(arguments: cases)
  func onnxruntimeAgreesWithAEPSL(_ c: Case) throws {
    let python = try exportTestPython()
    let binary = try #require(builtAEPSLBinary, "swift test builds aepsl beside the tests")
    let fixture = try ExportFixture(name: "\(c.net)\(c.kind)")
    defer { fixture.remove() }
    let file = fixture.root.appendingPathComponent("model.onnx")
    let cases = fixture.root.appendingPathComponent("cases", isDirectory: true)
    try FileManager.default.createDirectory(at: cases, withIntermediateDirectories: true)

    var arguments = ["export", "--run", fixture.run.path, "--onnx", file.path]
    let exported: ExportedModel
    switch c.kind {
    case .segmenter:
      _ = try fixture.writeSegmenter(net: c.net, seed: 7)
      arguments += ["--model", "psl"]
      exported = try ExportSource.segmenter(run: fixture.run, model: .psl)
    case .classifier:
      _ = try fixture.writeClassifier(net: c.net, seed: 11)
      arguments += ["--step", "2"]
      exported = try ExportSource.classifier(run: fixture.run, step: 2)
    }
    // Two image files too, prepared by aepsl itself (resized, normalised, padded to the grid)
    // through the export command's reference outputs.
    let images = fixture.root.appendingPathComponent("images", isDirectory: true)
    try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
    for (name, w, h) in [("photo_a", 50, 37), ("photo_b", 23, 64)] {
      let pixels = (0..<(w * h * 3)).map { i in UInt8(truncatingIfNeeded: (i / 3 % w) * 5 + (i / (3 * w)) * 3 + (i % 3) * 80) }
      try Image(width: w, height: h, channels: 3, pixels: pixels).write(to: images.appendingPathComponent("\(name).png"))
    }
    arguments += ["--reference-images", images.path, "--reference-out", cases.path]
    let export = try runCapturing(binary, arguments)
    try #require(export.status == 0, "aepsl \(arguments.joined(separator: " ")) failed: \(export.stderr)")

    for (i, input) in c.inputs.enumerated() {
      let x = ExportFixture.images(n: input.n, height: input.h, width: input.w, seed: UInt64(100 + i))
      try NumPyArray.write(x, to: cases.appendingPathComponent("input_\(i).npy"))
      for (name, value) in exported.referenceOutputs(x) { try NumPyArray.write(value, to: cases.appendingPathComponent("\(name)_\(i).npy")) }
    }
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("check_onnx.py")
    let check = try runCapturing(python, [script.path, file.path, cases.path])
    #expect(check.status == 0, "check_onnx.py: \(check.stdout)\n\(check.stderr)")
    let report = try #require(try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any], "\(check.stdout)\n\(check.stderr)")
    #expect(report["classes"] as? [String] == ExportFixture.classNames)
    let rows = report["results"] as? [[String: Any]] ?? []
    let perCase = c.kind == .segmenter ? 3 : 2
    #expect(rows.count == perCase * (c.inputs.count + 2), "every output of every case compared: \(rows)")
    for row in rows {
      let agreement = row["argmax_agreement"] as? Double
      #expect(agreement == nil || agreement! >= 0.999, "\(row)")
    }
    let worst = rows.compactMap { $0["max_abs_diff"] as? Double }.max() ?? .nan
    let agreement = rows.compactMap { $0["argmax_agreement"] as? Double }.min() ?? .nan
    print("export \(c.testDescription): largest |onnxruntime - aepsl| \(worst), lowest argmax agreement \(agreement)")
  }
}
