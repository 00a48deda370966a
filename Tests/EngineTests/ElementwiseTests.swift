import AEPSLEngine
import AEPSLTestSupport
import Testing

struct ResizeCase: Sendable, CustomTestStringConvertible {
  var from: (Int, Int), to: (Int, Int)
  var alignCorners: Bool
  var channels = 2

  var testDescription: String {
    "\(from.0)x\(from.1) -> \(to.0)x\(to.1), \(channels) channels, align corners \(alignCorners)"
  }
  var shape: [Int] { [2, channels, from.0, from.1] }
  func makeLayer() -> BilinearUpsample {
    BilinearUpsample(name: "up", outHeight: to.0, outWidth: to.1, alignCorners: alignCorners)
  }
  func reference(_ x: HostTensor<Double>) -> HostTensor<Double> {
    Reference.bilinear(x, outHeight: to.0, outWidth: to.1, alignCorners: alignCorners)
  }
}

extension EngineSuite {
  @Suite struct Elementwise {
    // MARK: ReLU

    @Test("ReLU forward and backward, in every layout", arguments: [3, 8, 16])
    func relu(channels: Int) {
      let x = TestData.uniform([2, channels, 5, 5], seed: 300)
      let proj = TestData.uniform(x.shape, seed: 301)
      for layout in engineLayouts(channels: channels) {
        let layer = ReLU(name: "relu")
        expectClose(layer.forward(x.tensor(layout: layout), training: false), Reference.relu(x), tolerance: 0, "\(layout)")
        let (_, dx) = forwardBackward(layer, x.tensor(layout: layout), projection: proj)
        #expect(dx.layout == layout)
        GradientCheck(kinkBand: 1e-4).expect(dx, matches: { Reference.relu($0).dot(proj) }, at: x,
                                             kinks: { $0.values }, "\(layout) dx")
      }
    }

    // MARK: Dropout

    @Test func dropoutWithOneSeedDrawsOneMask() {
      let x = TestData.uniform([2, 8, 6, 6], seed: 310).tensor(layout: .nChw8c)
      let a = Dropout(name: "drop6", p: 0.5, seed: 3), b = Dropout(name: "drop6", p: 0.5, seed: 3)
      let c = Dropout(name: "drop6", p: 0.5, seed: 4)
      let ya = a.forward(x, training: true), yb = b.forward(x, training: true), yc = c.forward(x, training: true)
      #expect(ya.values == yb.values)
      #expect(ya.values != yc.values, "another seed, another mask")
      #expect(ya.layout == .nChw8c)
      let next = a.forward(x, training: true)
      #expect(next.values != ya.values, "each forward draws a new mask")
      a.reseed(3)
      #expect(a.forward(x, training: true).values == ya.values, "reseeding replays the masks")
    }

    @Test("dropout scales kept elements by 1/(1-p), drops about p, and backward uses the same mask",
          arguments: [0.1, 0.5, 0.8] as [Float])
    func dropoutScaling(p: Float) {
      let x = Tensor(shape: [4, 8, 16, 16], repeating: 1)
      let layer = Dropout(name: "d", p: p, seed: 11)
      let y = layer.forward(x, training: true)
      let kept = y.values.filter { $0 != 0 }
      #expect(kept.allSatisfy { abs($0 - 1 / (1 - p)) < 1e-6 }, "kept elements are scaled by 1/(1-p)")
      let dropped = 1 - Double(kept.count) / Double(x.count)
      #expect(abs(dropped - Double(p)) < 0.03, "dropped \(dropped) of the elements for p = \(p)")
      let dy = TestData.uniform(x.shape, seed: 12)
      let dx = layer.backward(dy.tensor())
      expectClose(dx.values, zip(dy.values, y.values).map { $0 * Double($1) }, tolerance: 1e-6, "dx = dy * mask")
    }

    @Test func dropoutIsTheIdentityForPZeroAndAtInference() {
      let x = TestData.uniform([2, 3, 4, 4], seed: 320).tensor()
      let off = Dropout(name: "d", p: 0, seed: 1)
      #expect(off.forward(x, training: true).values == x.values)
      #expect(off.backward(x).values == x.values)
      let on = Dropout(name: "d", p: 0.5, seed: 1)
      #expect(on.forward(x, training: false).values == x.values)
    }

    // MARK: Linear

    @Test func linearForwardAndBackward() {
      let x = TestData.uniform([3, 12], seed: 330)
      let w = TestData.uniform([5, 12], seed: 331, in: -0.5...0.5)
      let b = TestData.uniform([5], seed: 332)
      let proj = TestData.uniform([3, 5], seed: 333)
      let layer = Linear(name: "fc", inFeatures: 12, outFeatures: 5)
      layer.weight.assign(w)
      layer.bias.assign(b)
      #expect(layer.multiplyAdds(inputShape: [3, 12]) == 3 * 12 * 5)
      let (y, dx) = forwardBackward(layer, x.tensor(), projection: proj)
      expectClose(y, Reference.linear(x, weight: w, bias: b), tolerance: 1e-5)
      let check = GradientCheck()
      check.expect(dx, matches: { Reference.linear($0, weight: w, bias: b).dot(proj) }, at: x, "dx")
      check.expect(layer.weight.grad, matches: { Reference.linear(x, weight: $0, bias: b).dot(proj) }, at: w, "dW")
      check.expect(layer.bias.grad, matches: { Reference.linear(x, weight: w, bias: $0).dot(proj) }, at: b, "db")
    }

    // MARK: Bilinear resizing

    static let resizes: [ResizeCase] = [
      ResizeCase(from: (3, 4), to: (5, 7), alignCorners: true),
      ResizeCase(from: (3, 4), to: (5, 7), alignCorners: false),
      ResizeCase(from: (7, 5), to: (3, 2), alignCorners: true),
      ResizeCase(from: (7, 5), to: (3, 2), alignCorners: false),
      ResizeCase(from: (4, 4), to: (32, 32), alignCorners: false, channels: 8),  // CAM upsampling, blocked input
      ResizeCase(from: (5, 5), to: (5, 5), alignCorners: false),
      ResizeCase(from: (1, 3), to: (4, 1), alignCorners: true),
    ]

    @Test("bilinear resize, forward and backward", arguments: resizes)
    func bilinear(_ c: ResizeCase) {
      let x = TestData.uniform(c.shape, seed: 340)
      let proj = TestData.uniform([2, c.channels, c.to.0, c.to.1], seed: 341)
      for layout in engineLayouts(channels: c.channels) {
        let layer = c.makeLayer()
        #expect(layer.outputShape(c.shape) == proj.shape)
        expectClose(layer.forward(x.tensor(layout: layout), training: false), c.reference(x), tolerance: 1e-5, "\(layout)")
        let (_, dx) = forwardBackward(layer, x.tensor(layout: layout), projection: proj)
        GradientCheck().expect(dx, matches: { c.reference($0).dot(proj) }, at: x, "\(layout) dx")
      }
    }

    @Test func bilinearWithoutResizingIsTheIdentity() {
      let x = TestData.uniform([1, 2, 5, 6], seed: 345)
      let y = BilinearUpsample(name: "up", outHeight: 5, outWidth: 6, alignCorners: false).forward(x.tensor(), training: false)
      expectClose(y, x, tolerance: 0)
    }

    // MARK: Softmax

    @Test("channel softmax (the cross-entropy\'s probabilities)", arguments: [[2, 5, 3, 3], [4, 6], [1, 8, 2, 2]])
    func channelSoftmaxMatchesTheReference(shape: [Int]) {
      let x = TestData.uniform(shape, seed: 350, in: -3...3)
      let y = channelSoftmax(x.tensor(layout: .nchw))
      expectClose(y, Reference.channelSoftmax(x), tolerance: 1e-6)
    }
  }
}
