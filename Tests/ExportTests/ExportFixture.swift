import AEPSLEngine
import AEPSLFiles
import AEPSLMethod
import AEPSLTestSupport
import Foundation
import Testing

/// Runs made by hand for the export tests: a segmenter or an erasing classifier from a seeded
/// random initialisation, with batch-norm statistics and heads far from their defaults so
/// that folding and every output are exercised. The export is under test, not training.
struct ExportFixture {
  let root: URL
  var run: URL { root.appendingPathComponent("run", isDirectory: true) }
  var dataset: URL { root.appendingPathComponent("data", isDirectory: true) }
  static let classNames = ["cat", "dog\"quoted\"", "person"]

  init(name: String = #function) throws {
    let tag = name.filter { $0.isLetter || $0.isNumber }
    root = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-export-\(tag)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
  }

  func remove() { try? FileManager.default.removeItem(at: root) }

  /// Moves every batch norm away from the identity and the heads to a useful scale.
  static func perturb(_ backbone: Sequential, heads: [Parameter], seed: UInt64) {
    var rng = SeededGenerator(seed: seed).split("perturb")
    for case let bn as BatchNorm2d in backbone.layers {
      for c in 0..<bn.channels {
        bn.runningMean.data[c] = 0.3 * rng.nextNormal()
        bn.runningVariance.data[c] = 0.5 + rng.nextUniform()
        bn.scale.value.data[c] = 0.8 + 0.4 * rng.nextUniform()
        bn.shift.value.data[c] = 0.1 * rng.nextNormal()
      }
      bn.scale.version += 1
    }
    for p in heads {
      for i in 0..<p.value.count { p.value.data[i] = 0.1 * rng.nextNormal() }
      p.version += 1
    }
  }

  /// RUN/seg/psl/segmenter.safetensors with train-seg's metadata and a finished manifest.
  func writeSegmenter(net: String, seed: UInt64) throws -> Segmenter {
    let spec = try #require(BackboneSpec.named(net))
    let model = Segmenter(spec: spec, classes: Self.classNames.count, seed: seed)
    Self.perturb(model.backbone, heads: model.scoreLayer.parameters + model.classifier.parameters, seed: seed)
    let layout = RunLayout(run: run).segmentation
    try FileManager.default.createDirectory(at: layout.directory(.psl), withIntermediateDirectories: true)
    let metadata = ["net": net, "classes": "\(Self.classNames.count)", "class_names": Self.classNames.joined(separator: ","),
                    "variant": "psl", "classification_branch": "trained"]
    try Checkpoint.save(parameters: model.parameters, buffers: model.buffers, metadata: metadata, to: layout.checkpoint(.psl))
    try StageManifest(stage: "train-seg", parameters: ["variant": "psl"], inputs: [], startedAt: Date()).write(to: layout.directory(.psl))
    return model
  }

  /// RUN/erase/step-2/classifier.safetensors, the erasing configuration and a dataset that
  /// holds only classes.txt (all an export reads of it).
  func writeClassifier(net: String, seed: UInt64) throws -> Classifier {
    let spec = try #require(BackboneSpec.named(net))
    let model = Classifier(spec: spec, classes: Self.classNames.count, seed: seed)
    Self.perturb(model.backbone, heads: model.classifier.parameters, seed: seed)
    try FileManager.default.createDirectory(at: dataset, withIntermediateDirectories: true)
    try writeFileAtomically(Data((Self.classNames.joined(separator: "\n") + "\n").utf8), to: dataset.appendingPathComponent("classes.txt"))
    let layout = EraseLayout(run: run)
    try FileManager.default.createDirectory(at: layout.step(2), withIntermediateDirectories: true)
    try writeFileAtomically(try JSONEncoder().encode(EraseConfiguration(dataset: dataset.path, net: net)), to: layout.configurationFile)
    try Checkpoint.save(parameters: model.parameters, buffers: model.buffers, metadata: ["step": "2"], to: layout.checkpoint(2))
    return model
  }

  /// A normalised batch [n, 3, h, w]: noise with a few flat rectangles, like objects.
  static func images(n: Int, height h: Int, width w: Int, seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed).split("images")
    let x = Tensor(shape: [n, 3, h, w])
    for i in 0..<x.count { x.data[i] = 0.5 * rng.nextNormal() }
    for s in 0..<n {
      for _ in 0..<3 {
        let (bh, bw) = (1 + Int(rng.nextUniform() * Float(h / 2)), 1 + Int(rng.nextUniform() * Float(w / 2)))
        let (top, left) = (Int(rng.nextUniform() * Float(h - bh)), Int(rng.nextUniform() * Float(w - bw)))
        let colour = (0..<3).map { _ in 2 * rng.nextNormal() }
        for c in 0..<3 { for y in top..<(top + bh) { for q in left..<(left + bw) { x[s, c, y, q] = colour[c] } } }
      }
    }
    return x
  }
}

/// The Python of .venv-test (scripts/python-test-env.sh), or $AEPSL_TEST_PYTHON. A missing
/// one fails the test that needs it: `make test` makes it.
func exportTestPython(sourceLocation: SourceLocation = #_sourceLocation) throws -> URL {
  if let override = ProcessInfo.processInfo.environment["AEPSL_TEST_PYTHON"] { return URL(fileURLWithPath: override) }
  let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  let python = root.appendingPathComponent(".venv-test/bin/python")
  guard FileManager.default.isExecutableFile(atPath: python.path) else {
    Issue.record("\(python.path) is missing: run `bash scripts/python-test-env.sh` (make test does)", sourceLocation: sourceLocation)
    throw AEPSLError(kind: .missingFile, file: python.path, problem: "does not exist", fix: "Run bash scripts/python-test-env.sh.")
  }
  return python
}
