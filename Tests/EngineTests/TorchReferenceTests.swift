import AEPSLEngine
import AEPSLTestSupport
import Foundation
import Testing

/// Values and gradients computed by PyTorch (float64) on fixed inputs.
/// Regenerate with: /opt/aepsl-torch/bin/python Tests/EngineTests/make_torch_reference.py
struct TorchReference: Decodable {
  struct Entry: Decodable {
    let shape: [Int]
    let values: [Double]
    var host: HostTensor<Double> { HostTensor(shape: shape, values: values) }
  }
  struct Case: Decodable {
    let config: [String: Double]
    let tensors: [String: Entry]
    func callAsFunction(_ name: String) -> HostTensor<Double> {
      guard let e = tensors[name] else { preconditionFailure("fixture has no tensor \(name)") }
      return e.host
    }
    func int(_ key: String) -> Int { Int(config[key]!) }
    func flag(_ key: String) -> Bool { config[key]! != 0 }
  }
  let generator: String
  let torch: String
  let cases: [String: Case]

  static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/torch_reference.json")

  static func load() throws -> TorchReference {
    try JSONDecoder().decode(TorchReference.self, from: Data(contentsOf: url))
  }
}

extension EngineSuite {
  @Suite struct AgainstPyTorch {
    let fixture: TorchReference
    init() throws { fixture = try TorchReference.load() }

    /// Float engine against float64 PyTorch.
    let tolerance = 2e-5

    @Test func fixtureHoldsEveryCase() {
      #expect(fixture.generator == "Tests/EngineTests/make_torch_reference.py")
      #expect(fixture.cases.count == 16)
    }

    @Test(arguments: ["conv_dilated_strided", "conv_dilated", "conv_relu"])
    func convolution(_ name: String) throws {
      let c = try #require(fixture.cases[name])
      let w = c("weight"), x = c("x")
      let layer = Conv2d(name: name, inputChannels: w.shape[1], outputChannels: w.shape[0], kernelSize: w.shape[2],
                         stride: c.int("stride"), padding: c.int("padding"), dilation: c.int("dilation"),
                         bias: c.flag("bias"), fusedReLU: c.flag("relu"))
      layer.weight.assign(w)
      layer.bias!.assign(c("bias"))
      let (y, dx) = forwardBackward(layer, x.tensor(), projection: c("proj"))
      expectClose(y, c("y"), tolerance: tolerance, "y")
      expectClose(dx, c("grad_x"), tolerance: tolerance, "dx")
      expectClose(layer.weight.grad, c("grad_weight"), tolerance: tolerance, "dW")
      expectClose(layer.bias!.grad, c("grad_bias"), tolerance: tolerance, "db")
    }

    @Test(arguments: ["maxpool_k3s2p1_ceil", "maxpool_k3s2p1_ceil_odd", "maxpool_k3s3p1_ceil_drop"])
    func maxPooling(_ name: String) throws {
      let c = try #require(fixture.cases[name])
      let layer = MaxPool2d(name: name, kernelSize: c.int("kernel"), stride: c.int("stride"), padding: c.int("padding"),
                            ceilMode: c.flag("ceil"))
      let (y, dx) = forwardBackward(layer, c("x").tensor(), projection: c("proj"))
      expectClose(y, c("y"), tolerance: tolerance, "y")
      expectClose(dx, c("grad_x"), tolerance: tolerance, "dx")
    }

    @Test func batchNormTraining() throws {
      let c = try #require(fixture.cases["batchnorm_training"])
      let layer = BatchNorm2d(name: "bn", channels: c("x").shape[1], epsilon: Float(c.config["eps"]!),
                              momentum: Float(c.config["momentum"]!))
      layer.scale.assign(c("weight"))
      layer.shift.assign(c("bias"))
      let (y, dx) = forwardBackward(layer, c("x").tensor(), projection: c("proj"))
      expectClose(y, c("y"), tolerance: tolerance, "y")
      expectClose(dx, c("grad_x"), tolerance: tolerance, "dx")
      expectClose(layer.scale.grad, c("grad_weight"), tolerance: tolerance, "dgamma")
      expectClose(layer.shift.grad, c("grad_bias"), tolerance: tolerance, "dbeta")
      expectClose(layer.runningMean, c("running_mean"), tolerance: tolerance, "running mean")
      expectClose(layer.runningVariance, c("running_var"), tolerance: tolerance, "running variance")
    }

    @Test func linear() throws {
      let c = try #require(fixture.cases["linear"])
      let w = c("weight")
      let layer = Linear(name: "fc", inFeatures: w.shape[1], outFeatures: w.shape[0])
      layer.weight.assign(w)
      layer.bias.assign(c("bias"))
      let (y, dx) = forwardBackward(layer, c("x").tensor(), projection: c("proj"))
      expectClose(y, c("y"), tolerance: tolerance, "y")
      expectClose(dx, c("grad_x"), tolerance: tolerance, "dx")
      expectClose(layer.weight.grad, c("grad_weight"), tolerance: tolerance, "dW")
      expectClose(layer.bias.grad, c("grad_bias"), tolerance: tolerance, "db")
    }

    @Test(arguments: ["bilinear_up_align", "bilinear_up", "bilinear_down_align", "bilinear_down"])
    func bilinear(_ name: String) throws {
      let c = try #require(fixture.cases[name])
      let layer = BilinearUpsample(name: name, outHeight: c.int("out_h"), outWidth: c.int("out_w"),
                                   alignCorners: c.flag("align"))
      let (y, dx) = forwardBackward(layer, c("x").tensor(), projection: c("proj"))
      expectClose(y, c("y"), tolerance: tolerance, "y")
      expectClose(dx, c("grad_x"), tolerance: tolerance, "dx")
    }

    @Test func softmaxCrossEntropyIgnoring255() throws {
      let c = try #require(fixture.cases["softmax_cross_entropy"])
      let labels = c("labels").values.map { UInt8($0) }
      #expect(labels.contains(255))
      let result = Loss.softmaxCrossEntropy(logits: c("logits").tensor(), labels: labels)
      expectClose(result.value, c("loss").values[0], tolerance: tolerance, "loss")
      expectClose(result.gradient, c("grad_logits"), tolerance: tolerance, "dz")
    }

    @Test func binaryCrossEntropyWithLogits() throws {
      let c = try #require(fixture.cases["bce_with_logits"])
      let result = Loss.binaryCrossEntropy(logits: c("logits").tensor(), targets: c("targets").tensor())
      expectClose(result.value, c("loss").values[0], tolerance: tolerance, "loss")
      expectClose(result.gradient, c("grad_logits"), tolerance: tolerance, "dz")
    }

    @Test func sigmoidSquaredErrorIsCaffesEuclideanLossOnSigmoid() throws {
      let c = try #require(fixture.cases["sigmoid_squared_error"])
      let result = Loss.sigmoidSquaredError(logits: c("logits").tensor(), targets: c("targets").tensor())
      expectClose(result.value, c("loss").values[0], tolerance: tolerance, "loss")
      expectClose(result.gradient, c("grad_logits"), tolerance: tolerance, "dz")
    }
  }
}
