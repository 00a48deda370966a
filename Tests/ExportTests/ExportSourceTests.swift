import AEPSLEngine
import AEPSLFiles
import AEPSLMethod
import Foundation
import Testing
@testable import AEPSLExport

/// Where the network to export comes from, and what a wrong --run, --model or --step says.
@Suite("Export sources and errors")
struct ExportSourceTests {
  @Test func aMissingRunIsNamed() throws {
    let run = URL(fileURLWithPath: "/nonexistent/aepsl-run")
    let error = #expect(throws: AEPSLError.self) { try ExportSource.segmenter(run: run, model: nil) }
    #expect(error?.file == run.path)
    #expect(error?.problem.contains("not a run directory") == true, "\(String(describing: error))")
  }

  @Test func aModelThatWasNotTrainedSaysHowToTrainIt() throws {
    let fixture = try ExportFixture()
    defer { fixture.remove() }
    _ = try fixture.writeSegmenter(net: "tiny", seed: 1)
    let error = #expect(throws: AEPSLError.self) { try ExportSource.segmenter(run: fixture.run, model: .pslPlus) }
    #expect(error?.problem.contains("holds no finished segmenter") == true, "\(String(describing: error))")
    #expect(error?.fix?.contains("aepsl train-seg") == true)
    // Without --model, the one aepsl predict would use: psl here.
    let network = try ExportSource.segmenter(run: fixture.run, model: nil)
    #expect(network.network.metadata.first { $0.key == "variant" }?.value == "psl")
  }

  @Test func aMissingStepNamesItsClassifierFile() throws {
    let fixture = try ExportFixture()
    defer { fixture.remove() }
    _ = try fixture.writeClassifier(net: "tiny", seed: 1)
    let error = #expect(throws: AEPSLError.self) { try ExportSource.classifier(run: fixture.run, step: 3) }
    #expect(error?.kind == .missingFile)
    #expect(error?.file?.hasSuffix("erase/step-3/classifier.safetensors") == true, "\(String(describing: error))")
    #expect(try ExportSource.classifier(run: fixture.run, step: 2).network.classNames == ExportFixture.classNames)
  }

  /// The graph of the tiny segmenter: batch norm folded (no BatchNormalization node, a bias
  /// on every convolution), dropout gone, the heads as the docs describe.
  @Test func theTinyGraphHasBatchNormFolded() throws {
    let fixture = try ExportFixture()
    defer { fixture.remove() }
    _ = try fixture.writeSegmenter(net: "tiny", seed: 3)
    let graph = ONNXExport.model(try ExportSource.segmenter(run: fixture.run, model: .psl).network).graph
    let ops = graph.nodes.map(\.opType)
    #expect(!ops.contains("BatchNormalization"))
    #expect(ops.filter { $0 == "Conv" }.count == 10)  // 9 backbone + fc8
    #expect(graph.nodes.filter { $0.opType == "Conv" }.allSatisfy { $0.inputs.count == 3 })
    #expect(ops.filter { $0 == "MaxPool" }.count == 3)
    #expect(graph.outputs.map(\.name) == ["scores", "upsampled_scores", "confidences"])
    #expect(graph.inputs.first?.dims == [.named("batch"), .fixed(3), .named("height"), .named("width")])
  }

  /// The PyTorch state dict: plain names in PyTorch's shapes, and the layer list.
  @Test func theTorchStateDictHasPlainNames() throws {
    let fixture = try ExportFixture()
    defer { fixture.remove() }
    _ = try fixture.writeSegmenter(net: "tiny", seed: 3)
    let network = try ExportSource.segmenter(run: fixture.run, model: .psl).network
    let file = fixture.root.appendingPathComponent("state.safetensors")
    try TorchExport.write(network, to: file)
    let read = try SafetensorsFile(contentsOf: file)
    #expect(read.order.first == "backbone.conv1_1.weight")
    #expect(read.tensors["backbone.conv1_1.weight"]?.shape == [16, 3, 3, 3])
    #expect(read.tensors["backbone.conv1_1.bias"]?.shape == [16])
    #expect(read.tensors["score.weight"]?.shape == [4, 256, 1, 1])
    #expect(read.tensors["classifier.weight"]?.shape == [3, 256])
    #expect(!read.order.contains { $0.contains("_bn") || $0.contains("running") })
    let layers = try #require(try JSONSerialization.jsonObject(with: Data((read.metadata["layers"] ?? "").utf8)) as? [[String: Any]])
    #expect(layers.count == 12)  // 9 convolutions, 3 poolings
  }
}

/// The wire format against encodings worked out by hand from the protobuf specification.
@Suite("Protobuf writer")
struct ProtobufWriterTests {
  struct Case: CustomTestStringConvertible, Sendable {
    let name: String
    let write: @Sendable (inout ProtobufWriter) -> Void
    let bytes: [UInt8]
    var testDescription: String { name }
  }

  static let cases: [Case] = [
    Case(name: "varint 150", write: { $0.int(1, 150) }, bytes: [0x08, 0x96, 0x01]),
    Case(name: "varint 300 in field 3", write: { $0.int(3, 300) }, bytes: [0x18, 0xAC, 0x02]),
    Case(name: "negative int64", write: { $0.int(1, -1) }, bytes: [0x08] + [UInt8](repeating: 0xFF, count: 9) + [0x01]),
    Case(name: "string", write: { $0.string(2, "testing") }, bytes: [0x12, 0x07] + Array("testing".utf8)),
    Case(name: "float 1.0", write: { $0.float(2, 1) }, bytes: [0x15, 0x00, 0x00, 0x80, 0x3F]),
    Case(name: "field 20 needs a two-byte tag", write: { $0.int(20, 7) }, bytes: [0xA0, 0x01, 0x07]),
    Case(name: "packed int64", write: { $0.packedInts(7, [3, 270, 86942]) },
         bytes: [0x3A, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05]),
    Case(name: "nested message", write: { w in w.message(3) { $0.int(1, 150) } }, bytes: [0x1A, 0x03, 0x08, 0x96, 0x01]),
  ]

  @Test(arguments: cases)
  func encodes(_ c: Case) {
    var w = ProtobufWriter()
    c.write(&w)
    #expect(w.bytes == c.bytes)
  }
}
