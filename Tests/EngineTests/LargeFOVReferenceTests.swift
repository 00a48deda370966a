import AEPSLFiles
import AEPSLEngine
import AEPSLTestSupport
import Foundation
import Testing

/// DeepLab-LargeFOV computed by PyTorch (float64) from a VGG-16-shaped state dict made by a
/// formula. Regenerate with: /work/venv-torch/bin/python Tests/EngineTests/make_largefov_reference.py
struct LargeFOVReference: Decodable {
  let generator: String
  let image: [Int]
  let classes: Int
  let fc7_shape: [Int]
  let fc7_sample_indices: [Int]
  let fc7_samples: [Double]
  let fc7_channel_sums: [Double]
  let cams: [Double]
  let cam_logits: [Double]
  let scores: [Double]
  let seg_logits: [Double]

  static func load() throws -> LargeFOVReference {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/largefov_reference.json")
    return try JSONDecoder().decode(LargeFOVReference.self, from: Data(contentsOf: url))
  }
}

/// The formulas of make_largefov_reference.py: element i of tensor k is
/// float32(scale (2 u - 1)), u = (splitmix64((k << 40) | i) >> 11) / 2^53, scale = sqrt(6 /
/// fan_in) for weights and 0.05 for biases; the image float32(1.5 sin(0.05 i + 0.7 cos(0.0011 i))).
enum VGGFormula {
  static let convolutions = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256),
                             (14, 256, 256), (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512),
                             (26, 512, 512), (28, 512, 512)]

  /// torchvision's VGG-16 state dict, in its order.
  static var layout: [(String, [Int])] {
    convolutions.flatMap { index, cin, cout in
      [("features.\(index).weight", [cout, cin, 3, 3]), ("features.\(index).bias", [cout])]
    } + [("classifier.0.weight", [4096, 25088]), ("classifier.0.bias", [4096]),
         ("classifier.3.weight", [4096, 4096]), ("classifier.3.bias", [4096]),
         ("classifier.6.weight", [1000, 4096]), ("classifier.6.bias", [1000])]
  }

  static func value(_ k: Int, _ i: Int, scale: Double) -> Float {
    var z = (UInt64(k) << 40 | UInt64(i)) &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    z ^= z >> 31
    let u = Double(z >> 11) * 0x1p-53
    return Float(scale * (2 * u - 1))
  }

  static func scale(_ shape: [Int]) -> Double {
    shape.count > 1 ? (6 / Double(shape.reduce(1, *) / shape[0])).squareRoot() : 0.05
  }

  static func tensor(_ k: Int, _ shape: [Int]) -> Tensor {
    let t = Tensor(shape: shape)
    let (n, s) = (t.count, scale(shape))
    let chunks = 64
    nonisolated(unsafe) let out = t.data
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
      for i in (n * c / chunks)..<(n * (c + 1) / chunks) { out[i] = value(k, i, scale: s) }
    }
    return t
  }

  static func stateDict() -> [(String, Tensor)] {
    layout.enumerated().map { k, entry in (entry.0, tensor(k, entry.1)) }
  }

  /// The heads: tensor numbers continue after the 32 of VGG-16.
  static func head(_ name: String, classes: Int) -> Tensor {
    let shapes: [(String, [Int])] = [("cam.weight", [classes, 1024]), ("cam.bias", [classes]),
                                     ("fc8.weight", [classes + 1, 1024, 1, 1]), ("fc8.bias", [classes + 1]),
                                     ("cls.weight", [classes, 1024]), ("cls.bias", [classes])]
    let k = shapes.firstIndex { $0.0 == name }!
    return tensor(layout.count + k, shapes[k].1)
  }

  static func image(_ shape: [Int]) -> Tensor {
    let t = Tensor(shape: shape)
    for i in 0..<t.count { t.data[i] = Float(1.5 * sin(0.05 * Double(i) + 0.7 * cos(0.0011 * Double(i)))) }
    return t
  }
}

/// Assigns `source`'s values to a parameter and marks it changed.
private func assign(_ parameter: Parameter, _ source: Tensor) {
  precondition(parameter.value.count == source.count)
  parameter.value.data.update(from: source.data, count: source.count)
  parameter.version += 1
}

/// Every value within `relative` times the reference's largest magnitude.
private func expectNear(_ actual: [Float], _ expected: [Double], relative: Double, _ what: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(actual.count == expected.count, "\(what): \(actual.count) values, reference has \(expected.count)", sourceLocation: sourceLocation)
  let scale = max(expected.map(abs).max() ?? 0, 1e-12)
  var worst = (0.0, 0)
  for (i, (a, e)) in zip(actual, expected).enumerated() where abs(Double(a) - e) > worst.0 { worst = (abs(Double(a) - e), i) }
  #expect(worst.0 <= relative * scale,
          "\(what): largest difference \(worst.0) at \(worst.1) (aepsl \(actual[worst.1]), torch \(expected[worst.1])), allowed \(relative * scale)",
          sourceLocation: sourceLocation)
}

extension EngineSuite {
  @Suite struct LargeFOVInitialisation {
    /// Values that encode their own index show which outputs, inputs and taps are kept.
    @Test func decimationKeepsEveryFourthOutputAndTapsZeroThreeSix() {
      let (outputs, inputs, window) = (8, 2, 7)
      let source = Tensor(shape: [outputs, inputs * window * window], values: (0..<(outputs * inputs * 49)).map(Float.init))
      let fc6 = VGG16Import.decimate(source, outputs: outputs, inputs: inputs, inputStep: 1, window: window, taps: VGG16Import.fc6Taps)
      #expect(fc6.shape == [2, 2, 3, 3])
      for o in 0..<2 { for c in 0..<2 { for r in 0..<3 { for q in 0..<3 {
        #expect(fc6[o, c, r, q] == Float(((4 * o * inputs + c) * 7 + 3 * r) * 7 + 3 * q))
      } } } }
      let square = Tensor(shape: [8, 8], values: (0..<64).map(Float.init))
      let fc7 = VGG16Import.decimate(square, outputs: 8, inputs: 8, inputStep: 4, window: 1, taps: [0])
      #expect(fc7.shape == [2, 2, 1, 1])
      #expect(fc7.values == [0, 4, 32, 36])
      let bias = VGG16Import.decimate(Tensor(shape: [8], values: (0..<8).map(Float.init)), outputs: 8, inputs: 1,
                                      inputStep: 1, window: 1, taps: [0])
      #expect(bias.values == [0, 4])
    }

    @Test func wrongFullyConnectedShapesAreNamed() throws {
      var dict = VGGFormula.layout.filter { !$0.0.hasPrefix("classifier") }.map { ($0.0, Tensor(shape: $0.1)) }
      dict += [("classifier.0.weight", Tensor(shape: [4096, 100])), ("classifier.0.bias", Tensor(shape: [4096])),
               ("classifier.3.weight", Tensor(shape: [4096, 4096])), ("classifier.3.bias", Tensor(shape: [4096]))]
      let model = Classifier(spec: .largeFOV, classes: 2, seed: 0)
      let error = try #require(throws: AEPSLError.self) {
        try VGG16Import.load(SafetensorsFile(tensors: dict), name: "small.safetensors", into: model.parameters)
      }
      #expect(error.description.contains("classifier.0: has weight [4096, 100]"))
      #expect(error.description.contains("aepsl weights fetch vgg16"))
    }

    /// DeepLab's learning rates: ImageNet layers (fc6 and fc7 included) 1x weights / 2x
    /// biases, the new layers 10x / 20x.
    @Test func newLayersLearnTenTimesFaster() {
      let classifier = Classifier(spec: .largeFOV, classes: 20, seed: 0, headLRMultiplier: 10)
      let segmenter = Segmenter(spec: .largeFOV, classes: 20, seed: 0, headLRMultiplier: 10)
      for model in [classifier.parameters, segmenter.parameters] {
        for p in model {
          let isNew = p.name.hasPrefix("classifier.") || p.name.hasPrefix("fc8.") || p.name.hasPrefix("cls.")
          let expected: Float = (isNew ? 10 : 1) * (p.name.hasSuffix(".bias") ? 2 : 1)
          #expect(p.lrMultiplier == expected, "\(p.name)")
        }
      }
    }

    /// The classifier loads torchvision's keys, the segmenter timm's (the same weights as
    /// 4-D convolutions under pre_logits.*): both must match PyTorch.
    @Test func classifierAndSegmenterMatchPyTorch() throws {
      let reference = try LargeFOVReference.load()
      #expect(reference.generator == "Tests/EngineTests/make_largefov_reference.py")
      let classes = reference.classes
      let torchvision = VGGFormula.stateDict()
      let timm = torchvision.map { name, t -> (String, Tensor) in
        switch name {
        case "classifier.0.weight": ("pre_logits.fc1.weight", t.reshaped([4096, 512, 7, 7]))
        case "classifier.0.bias": ("pre_logits.fc1.bias", t)
        case "classifier.3.weight": ("pre_logits.fc2.weight", t.reshaped([4096, 4096, 1, 1]))
        case "classifier.3.bias": ("pre_logits.fc2.bias", t)
        default: (name.replacingOccurrences(of: "classifier.6", with: "head.fc"), t)
        }
      }
      let x = VGGFormula.image(reference.image)

      let classifier = Classifier(spec: .largeFOV, classes: classes, seed: 0, headLRMultiplier: 10)
      let unused = try VGG16Import.load(SafetensorsFile(tensors: torchvision), name: "formula", into: classifier.parameters)
      #expect(unused == 2)
      let fc6 = try #require(classifier.parameters.first { $0.name == "fc6.weight" })
      let source = torchvision[26].1
      for (o, c, r, q) in [(0, 0, 0, 0), (1, 5, 2, 1), (1023, 511, 2, 2), (300, 17, 1, 0)] {
        #expect(fc6.value[o, c, r, q] == source.data[4 * o * 25088 + c * 49 + 21 * r + 3 * q])
      }
      assign(classifier.classifier.weight, VGGFormula.head("cam.weight", classes: classes))
      assign(classifier.classifier.bias, VGGFormula.head("cam.bias", classes: classes))
      let logits = classifier.forward(x, training: false)
      let features = try #require(classifier.lastFeatures).nchw()
      #expect(features.shape == reference.fc7_shape)
      let channelSums = (0..<features.shape[1]).map { c in
        (0..<(features.shape[2] * features.shape[3])).reduce(Float(0)) { $0 + features.data[c * features.shape[2] * features.shape[3] + $1] }
      }
      // fc7 sits 16 layers deep: float32 against float64 agrees to about 1e-5 of the scale.
      expectNear(reference.fc7_sample_indices.map { features.data[$0] }, reference.fc7_samples, relative: 1e-4, "fc7 samples")
      expectNear(channelSums, reference.fc7_channel_sums, relative: 1e-4, "fc7 channel sums")
      expectNear(classifier.classActivationMaps(features: features).values, reference.cams, relative: 1e-4, "CAMs")
      expectNear(logits.values, reference.cam_logits, relative: 1e-4, "classifier logits")

      let segmenter = Segmenter(spec: .largeFOV, classes: classes, seed: 0, headLRMultiplier: 10)
      #expect(try VGG16Import.load(SafetensorsFile(tensors: timm), name: "formula (timm keys)", into: segmenter.parameters) == 2)
      assign(segmenter.scoreLayer.weight, VGGFormula.head("fc8.weight", classes: classes))
      assign(segmenter.scoreLayer.bias!, VGGFormula.head("fc8.bias", classes: classes))
      assign(segmenter.classifier.weight, VGGFormula.head("cls.weight", classes: classes))
      assign(segmenter.classifier.bias, VGGFormula.head("cls.bias", classes: classes))
      let (scores, segLogits) = segmenter.forward(x, training: false)
      expectNear(scores.values, reference.scores, relative: 1e-4, "score maps")
      expectNear(segLogits.values, reference.seg_logits, relative: 1e-4, "segmenter logits")
    }
  }
}
