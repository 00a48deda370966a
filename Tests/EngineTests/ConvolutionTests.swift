import AEPSLEngine
import AEPSLTestSupport
import Testing

/// A convolution geometry, as the tables below list them.
struct ConvCase: Sendable, CustomTestStringConvertible {
  var input: Int, output: Int
  var kernel = 3, stride = 1, padding = 0, dilation = 1
  var bias = true, relu = false
  var size = 7, batch = 2

  var testDescription: String {
    "\(input)->\(output) k\(kernel) s\(stride) p\(padding) d\(dilation)\(bias ? " +bias" : "")\(relu ? " +relu" : "") on \(batch)x\(size)x\(size)"
  }

  var inputShape: [Int] { [batch, input, size, size] }
  var outputShape: [Int] {
    let o = (size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1
    return [batch, output, o, o]
  }

  func makeLayer() -> Conv2d {
    Conv2d(name: "conv", inputChannels: input, outputChannels: output, kernelSize: kernel, stride: stride,
           padding: padding, dilation: dilation, bias: bias, fusedReLU: relu)
  }

  /// Inputs, weights scaled so outputs are of order one, and bias.
  func data(seed: UInt64) -> (x: HostTensor<Double>, weight: HostTensor<Double>, bias: HostTensor<Double>?) {
    let bound = (3 / Double(input * kernel * kernel)).squareRoot()
    return (TestData.uniform(inputShape, seed: seed),
            TestData.uniform([output, input, kernel, kernel], seed: seed + 1, in: -bound...bound),
            bias ? TestData.uniform([output], seed: seed + 2, in: -0.5...0.5) : nil)
  }

  func preActivation(_ x: HostTensor<Double>, _ w: HostTensor<Double>, _ b: HostTensor<Double>?) -> HostTensor<Double> {
    Reference.conv2d(x, weight: w, bias: b, stride: stride, padding: padding, dilation: dilation)
  }

  func reference(_ x: HostTensor<Double>, _ w: HostTensor<Double>, _ b: HostTensor<Double>?) -> HostTensor<Double> {
    let z = preActivation(x, w, b)
    return relu ? Reference.relu(z) : z
  }

  /// Pre-activations are the kinks of a fused ReLU.
  func kinks(_ x: HostTensor<Double>, _ w: HostTensor<Double>, _ b: HostTensor<Double>?) -> [Double]? {
    relu ? preActivation(x, w, b).values : nil
  }
}

extension EngineSuite {
  @Suite struct Convolution {
    static let cases: [ConvCase] = [
      ConvCase(input: 3, output: 8, padding: 1),                                    // a first layer
      ConvCase(input: 8, output: 8, padding: 1, bias: false, relu: true),           // tiny's body
      ConvCase(input: 8, output: 16, stride: 2, padding: 1),
      ConvCase(input: 8, output: 8, padding: 2, dilation: 2, relu: true),           // dilated
      ConvCase(input: 8, output: 8, stride: 2, padding: 2, dilation: 2),            // dilated and strided, oneDNN's
      ConvCase(input: 4, output: 8, kernel: 3, padding: 4, dilation: 4, size: 9),   // fc6-like, field wider than half the input
      ConvCase(input: 8, output: 8, padding: 12, dilation: 12, size: 9),          // fc6's dilation: only the centre tap lands
      ConvCase(input: 16, output: 5, kernel: 1),                                    // 1x1 score head, NCHW output
      ConvCase(input: 16, output: 32, padding: 1, relu: true),                      // 16-channel blocks on AVX-512
      ConvCase(input: 16, output: 16, padding: 12, dilation: 12, size: 15),         // fc6: GEMM over NCHW in oneDNN
      ConvCase(input: 8, output: 8, kernel: 5, stride: 1, padding: 0, bias: false, size: 8),
    ]

    @Test("forward matches the loop reference, in both input layouts", arguments: cases)
    func forwardMatchesReference(_ c: ConvCase) {
      let (x, w, b) = c.data(seed: 10)
      let layer = c.makeLayer()
      layer.weight.assign(w)
      if let b { layer.bias!.assign(b) }
      let expected = c.reference(x, w, b)
      for layout in engineLayouts(channels: c.input) {
        for training in [false, true] {
          let y = layer.forward(x.tensor(layout: layout), training: training)
          expectClose(y, expected, tolerance: 2e-5, "\(layout) training \(training)")
          #expect(y.layout == TensorLayout.preferred(channels: c.output), "output layout")
        }
      }
    }

    @Test("backward matches finite differences for input, weight and bias", arguments: cases)
    func backwardMatchesFiniteDifferences(_ c: ConvCase) {
      let (x, w, b) = c.data(seed: 20)
      let proj = TestData.uniform(c.outputShape, seed: 21)
      let check = GradientCheck(step: 1e-3, kinkBand: 1e-4, maxCoordinates: 250)
      for layout in engineLayouts(channels: c.input) {
        let layer = c.makeLayer()
        layer.weight.assign(w)
        if let b { layer.bias!.assign(b) }
        let (_, dx) = forwardBackward(layer, x.tensor(layout: layout), projection: proj)
        #expect(dx.layout == layout)
        check.expect(dx, matches: { c.reference($0, w, b).dot(proj) }, at: x,
                     kinks: c.relu ? { c.preActivation($0, w, b).values } : nil, "\(layout) dx")
        check.expect(layer.weight.grad, matches: { c.reference(x, $0, b).dot(proj) }, at: w,
                     kinks: c.relu ? { c.preActivation(x, $0, b).values } : nil, "\(layout) dW")
        if let b {
          check.expect(layer.bias!.grad, matches: { c.reference(x, w, $0).dot(proj) }, at: b,
                       kinks: c.relu ? { c.preActivation(x, w, $0).values } : nil, "\(layout) db")
        }
      }
    }

    @Test func newWeightsReachForwardAndBackwardOnceTheVersionIsBumped() {
      let c = ConvCase(input: 8, output: 8, padding: 1)
      let (x, w1, b) = c.data(seed: 30)
      let w2 = TestData.uniform(w1.shape, seed: 31, in: -0.3...0.3)
      let proj = TestData.uniform(c.outputShape, seed: 32)
      let layer = c.makeLayer()
      layer.weight.assign(w1)
      layer.bias!.assign(b!)
      let xt = x.tensor(layout: .nChw8c)
      _ = forwardBackward(layer, xt, projection: proj)  // caches reordered copies of w1
      layer.weight.assign(w2)
      let (y, dx) = forwardBackward(layer, xt, projection: proj)
      expectClose(y, c.reference(x, w2, b), tolerance: 2e-5, "forward after update")
      let check = GradientCheck(maxCoordinates: 100)
      check.expect(dx, matches: { c.reference($0, w2, b).dot(proj) }, at: x, "dx after update")
    }

    @Test func backwardAccumulatesParameterGradients() {
      let c = ConvCase(input: 8, output: 8, padding: 2, dilation: 2)  // dilated
      for c in [c, ConvCase(input: 8, output: 8, padding: 1)] {      // and not
        let (x, w, b) = c.data(seed: 40)
        let proj = TestData.uniform(c.outputShape, seed: 41)
        let layer = c.makeLayer()
        layer.weight.assign(w)
        layer.bias!.assign(b!)
        _ = forwardBackward(layer, x.tensor(), projection: proj)
        let once = (layer.weight.grad.values, layer.bias!.grad.values)
        _ = layer.forward(x.tensor(), training: true)
        _ = layer.backward(proj.tensor())  // NCHW gradient for a blocked output
        expectClose(layer.weight.grad.values, once.0.map { 2 * Double($0) }, tolerance: 1e-5, "\(c) dW twice")
        expectClose(layer.bias!.grad.values, once.1.map { 2 * Double($0) }, tolerance: 1e-5, "\(c) db twice")
      }
    }

    /// One layer seeing NCHW then blocked inputs of two sizes (a network evaluated at a new
    /// crop size) keeps one set of primitives per shape; the weight gradient must be right
    /// for each.
    @Test func oneLayerServesSeveralShapesAndLayouts() {
      let layer = ConvCase(input: 8, output: 16, padding: 1).makeLayer()
      let w = TestData.uniform([16, 8, 3, 3], seed: 50, in: -0.2...0.2)
      layer.weight.assign(w)
      let check = GradientCheck(maxCoordinates: 150)
      for (size, layout) in [(7, TensorLayout.nchw), (9, .nChw8c), (7, .nChw8c), (9, .nchw)] {
        let c = ConvCase(input: 8, output: 16, padding: 1, size: size)
        let x = TestData.uniform(c.inputShape, seed: UInt64(size))
        let b = HostTensor<Double>(zeros: [16])
        let proj = TestData.uniform(c.outputShape, seed: 51)
        let (y, _) = forwardBackward(layer, x.tensor(layout: layout), projection: proj)
        expectClose(y, c.reference(x, w, b), tolerance: 2e-5, "\(size) \(layout) forward")
        check.expect(layer.weight.grad, matches: { c.reference(x, $0, b).dot(proj) }, at: w, "\(size) \(layout) dW")
      }
    }

    @Test func aFirstLayerSkipsTheInputGradientButNotTheWeightGradient() {
      let c = ConvCase(input: 3, output: 8, padding: 1)
      let (x, w, b) = c.data(seed: 60)
      let proj = TestData.uniform(c.outputShape, seed: 61)
      let layer = c.makeLayer()
      layer.computesInputGradient = false
      layer.weight.assign(w)
      layer.bias!.assign(b!)
      let (_, dx) = forwardBackward(layer, x.tensor(), projection: proj)
      #expect(dx.shape == x.shape)
      GradientCheck(maxCoordinates: 100).expect(layer.weight.grad, matches: { c.reference(x, $0, b).dot(proj) }, at: w, "dW")
    }

    @Test func shapesAndMultiplyAdds() {
      let layer = Conv2d(name: "fc6", inputChannels: 512, outputChannels: 1024, kernelSize: 3, padding: 12, dilation: 12)
      #expect(layer.outputShape([1, 512, 41, 41]) == [1, 1024, 41, 41])
      #expect(layer.multiplyAdds(inputShape: [1, 512, 41, 41]) == 41 * 41 * 1024 * 512 * 9)
      let strided = Conv2d(name: "s", inputChannels: 3, outputChannels: 8, kernelSize: 3, stride: 2, padding: 1)
      #expect(strided.outputShape([2, 3, 8, 7]) == [2, 8, 4, 4])
    }
  }
}
