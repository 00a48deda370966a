import AEPSLEngine
import AEPSLTestSupport
import Testing

struct BatchNormCase: Sendable, CustomTestStringConvertible {
  var channels: Int
  var relu = false
  var batch = 2, size = 7

  var testDescription: String { "\(channels) channels\(relu ? " +relu" : "") on \(batch)x\(size)x\(size)" }
  var shape: [Int] { [batch, channels, size, size] }

  func makeLayer() -> BatchNorm2d { BatchNorm2d(name: "bn", channels: channels, fusedReLU: relu) }

  /// Inputs off-centre and off-scale, so normalisation has something to do.
  func data(seed: UInt64) -> (x: HostTensor<Double>, scale: HostTensor<Double>, shift: HostTensor<Double>) {
    (TestData.uniform(shape, seed: seed, in: -1.5...2.5),
     TestData.uniform([channels], seed: seed + 1, in: 0.5...1.5),
     TestData.uniform([channels], seed: seed + 2, in: -0.5...0.5))
  }

  func preActivation(_ x: HostTensor<Double>, _ g: HostTensor<Double>, _ b: HostTensor<Double>) -> HostTensor<Double> {
    Reference.batchNormTraining(x, scale: g, shift: b).y
  }

  func reference(_ x: HostTensor<Double>, _ g: HostTensor<Double>, _ b: HostTensor<Double>) -> HostTensor<Double> {
    let z = preActivation(x, g, b)
    return relu ? Reference.relu(z) : z
  }
}

extension EngineSuite {
  @Suite struct BatchNormalization {
    static let cases: [BatchNormCase] = [
      BatchNormCase(channels: 8),
      BatchNormCase(channels: 8, relu: true),
      BatchNormCase(channels: 3, size: 5),
      BatchNormCase(channels: 16, relu: true, batch: 3, size: 4),
    ]

    @Test("training forward normalises with batch statistics and updates running ones", arguments: cases)
    func trainingForward(_ c: BatchNormCase) {
      let (x, g, b) = c.data(seed: 100)
      let (_, mean, variance) = Reference.batchNormTraining(x, scale: g, shift: b)
      let m = Double(c.batch * c.size * c.size)
      for layout in engineLayouts(channels: c.channels) {
        let layer = c.makeLayer()
        layer.scale.assign(g)
        layer.shift.assign(b)
        let y = layer.forward(x.tensor(layout: layout), training: true)
        #expect(y.layout == layout)
        expectClose(y, c.reference(x, g, b), tolerance: 2e-5, "\(layout) output")
        // PyTorch: running = 0.9 running + 0.1 batch, with the unbiased variance.
        expectClose(layer.runningMean.values, mean.map { 0.1 * $0 }, tolerance: 1e-5, "\(layout) running mean")
        expectClose(layer.runningVariance.values, variance.map { 0.9 + 0.1 * $0 * m / (m - 1) }, tolerance: 1e-5,
                    "\(layout) running variance")
      }
    }

    @Test("inference forward uses the running statistics", arguments: cases)
    func inferenceForward(_ c: BatchNormCase) {
      let (x, g, b) = c.data(seed: 110)
      let mean = TestData.uniform([c.channels], seed: 111).values
      let variance = TestData.uniform([c.channels], seed: 112, in: 0.2...2).values
      var expected = Reference.batchNormInference(x, scale: g, shift: b, mean: mean, variance: variance)
      if c.relu { expected = Reference.relu(expected) }
      for layout in engineLayouts(channels: c.channels) {
        let layer = c.makeLayer()
        layer.scale.assign(g)
        layer.shift.assign(b)
        for i in 0..<c.channels {
          layer.runningMean.data[i] = Float(mean[i])
          layer.runningVariance.data[i] = Float(variance[i])
        }
        expectClose(layer.forward(x.tensor(layout: layout), training: false), expected, tolerance: 2e-5, "\(layout)")
        #expect(layer.runningMean.values == mean.map { Float($0) }, "inference leaves running statistics alone")
      }
    }

    @Test("backward matches finite differences for input, scale and shift", arguments: cases)
    func backwardMatchesFiniteDifferences(_ c: BatchNormCase) {
      let (x, g, b) = c.data(seed: 120)
      let proj = TestData.uniform(c.shape, seed: 121)
      let check = GradientCheck(step: 1e-3, kinkBand: 1e-4, maxCoordinates: 200)
      for layout in engineLayouts(channels: c.channels) {
        let layer = c.makeLayer()
        layer.scale.assign(g)
        layer.shift.assign(b)
        let (_, dx) = forwardBackward(layer, x.tensor(layout: layout), projection: proj)
        #expect(dx.layout == layout)
        check.expect(dx, matches: { c.reference($0, g, b).dot(proj) }, at: x,
                     kinks: c.relu ? { c.preActivation($0, g, b).values } : nil, tolerance: 2e-4, "\(layout) dx")
        check.expect(layer.scale.grad, matches: { c.reference(x, $0, b).dot(proj) }, at: g,
                     kinks: c.relu ? { c.preActivation(x, $0, b).values } : nil, tolerance: 2e-4, "\(layout) dgamma")
        check.expect(layer.shift.grad, matches: { c.reference(x, g, $0).dot(proj) }, at: b,
                     kinks: c.relu ? { c.preActivation(x, g, $0).values } : nil, tolerance: 2e-4, "\(layout) dbeta")
      }
    }

    @Test("folding into the convolution gives conv then batch norm at inference",
          arguments: [false, true], [false, true])
    func foldIntoConvolution(bias: Bool, relu: Bool) {
      let variant = (bias: bias, relu: relu)
      let conv = Conv2d(name: "c", inputChannels: 8, outputChannels: 16, kernelSize: 3, padding: 1, bias: variant.bias)
      conv.weight.assign(TestData.uniform(conv.weight.value.shape, seed: 130, in: -0.3...0.3))
      conv.bias?.assign(TestData.uniform([16], seed: 131))
      let bn = BatchNorm2d(name: "bn", channels: 16, fusedReLU: variant.relu)
      bn.scale.assign(TestData.uniform([16], seed: 132, in: 0.5...2))
      bn.shift.assign(TestData.uniform([16], seed: 133))
      for i in 0..<16 {
        bn.runningMean.data[i] = Float(i) * 0.1 - 0.7
        bn.runningVariance.data[i] = 0.3 + Float(i) * 0.05
      }
      let x = TestData.uniform([2, 8, 6, 6], seed: 134).tensor(layout: .nChw8c)
      let expected = HostTensor<Double>(bn.forward(conv.forward(x, training: false), training: false))
      let folded = bn.fold(into: conv)
      #expect(folded.fusedReLU == variant.relu)
      expectClose(folded.forward(x, training: false), expected, tolerance: 1e-5)
    }

    @Test func foldedTinyBackboneMatchesTheOriginalAtInference() {
      let net = Sequential(spec: .tiny, seed: 7)
      var rng = SeededGenerator(seed: 135)
      for case let bn as BatchNorm2d in net.layers {
        for i in 0..<bn.channels {
          bn.runningMean.data[i] = 0.2 * rng.nextNormal()
          bn.runningVariance.data[i] = 0.5 + rng.nextUniform()
          bn.scale.value.data[i] = 0.5 + rng.nextUniform()
          bn.shift.value.data[i] = 0.2 * rng.nextNormal()
        }
      }
      let folded = net.foldedForInference()
      #expect(folded.layers.count == net.layers.count - 9, "nine batch norms folded away")
      #expect(!folded.layers.contains { $0 is BatchNorm2d })
      let x = TestData.uniform([2, 3, 24, 24], seed: 136).tensor()
      let expected = HostTensor<Double>(net.forward(x, training: false))
      expectClose(folded.forward(x, training: false), expected, tolerance: 1e-4)
    }
  }
}
