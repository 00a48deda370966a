import AEPSLEngine
import AEPSLTestSupport
import Testing

struct PoolCase: Sendable, CustomTestStringConvertible {
  var kernel: Int, stride: Int, padding = 0, ceil = false
  var size: Int
  var channels = 8, batch = 2

  var testDescription: String { "k\(kernel) s\(stride) p\(padding) \(ceil ? "ceil" : "floor") on \(size)x\(size)" }
  var shape: [Int] { [batch, channels, size, size] }
  var outputShape: [Int] {
    let o = Reference.pooledSize(size, kernel: kernel, stride: stride, padding: padding, ceilMode: ceil)
    return [batch, channels, o, o]
  }

  func makeLayer() -> MaxPool2d { MaxPool2d(name: "pool", kernelSize: kernel, stride: stride, padding: padding, ceilMode: ceil) }
  func reference(_ x: HostTensor<Double>) -> HostTensor<Double> {
    Reference.maxPool2d(x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceil)
  }
  func margins(_ x: HostTensor<Double>) -> [Double] {
    Reference.maxPoolMargins(x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceil)
  }
}

extension EngineSuite {
  @Suite struct Pooling {
    static let cases: [PoolCase] = [
      PoolCase(kernel: 2, stride: 2, size: 8),                            // tiny's halving pools
      PoolCase(kernel: 2, stride: 2, size: 7),                            // odd: the last row is dropped
      PoolCase(kernel: 3, stride: 2, padding: 1, ceil: true, size: 9),    // DeepLab pool1-3
      PoolCase(kernel: 3, stride: 2, padding: 1, ceil: true, size: 8),
      PoolCase(kernel: 3, stride: 1, padding: 1, ceil: true, size: 7),    // DeepLab pool4-5
      PoolCase(kernel: 3, stride: 2, ceil: true, size: 8),                // ceil adds a partial window
      PoolCase(kernel: 2, stride: 2, ceil: true, size: 7),
      PoolCase(kernel: 3, stride: 3, padding: 1, ceil: true, size: 5),    // ceil's window in the padding is dropped
      PoolCase(kernel: 3, stride: 2, padding: 1, ceil: true, size: 9, channels: 16),  // nChw16c too
    ]

    @Test("output shape follows PyTorch's rule", arguments: 1...12, [false, true])
    func outputShapeFollowsPyTorch(size: Int, ceil: Bool) {
      for (k, s, p) in [(2, 2, 0), (3, 2, 0), (3, 2, 1), (3, 1, 1), (3, 3, 1), (4, 3, 2)] where size + 2 * p >= k {
        let layer = MaxPool2d(name: "p", kernelSize: k, stride: s, padding: p, ceilMode: ceil)
        let o = Reference.pooledSize(size, kernel: k, stride: s, padding: p, ceilMode: ceil)
        #expect(layer.outputShape([1, 2, size, size + 1])
                  == [1, 2, o, Reference.pooledSize(size + 1, kernel: k, stride: s, padding: p, ceilMode: ceil)],
                "k\(k) s\(s) p\(p)")
      }
    }

    @Test("forward matches the loop reference, in both layouts", arguments: cases)
    func forwardMatchesReference(_ c: PoolCase) {
      let x = TestData.uniform(c.shape, seed: 200)
      let layer = c.makeLayer()
      for layout in engineLayouts(channels: c.channels) {
        for training in [false, true] {
          let y = layer.forward(x.tensor(layout: layout), training: training)
          #expect(y.layout == layout)
          expectClose(y, c.reference(x), tolerance: 0, "\(layout) training \(training)")
        }
      }
    }

    /// Random inputs: windows whose two largest values lie within the kink band are skipped.
    @Test("backward matches finite differences away from ties", arguments: cases)
    func backwardMatchesFiniteDifferences(_ c: PoolCase) {
      let x = TestData.uniform(c.shape, seed: 210)
      let proj = TestData.uniform(c.outputShape, seed: 211)
      let check = GradientCheck(step: 1e-3, kinkBand: 1e-3, maxCoordinates: 300)
      for layout in engineLayouts(channels: c.channels) {
        let (_, dx) = forwardBackward(c.makeLayer(), x.tensor(layout: layout), projection: proj)
        #expect(dx.layout == layout)
        check.expect(dx, matches: { c.reference($0).dot(proj) }, at: x, kinks: c.margins, "\(layout) dx")
      }
    }

    @Test("global average pooling, forward and backward, in both layouts", arguments: [3, 8, 16])
    func globalAveragePooling(channels: Int) {
      let x = TestData.uniform([2, channels, 5, 6], seed: 220)
      let proj = TestData.uniform([2, channels], seed: 221)
      for layout in engineLayouts(channels: channels) {
        let layer = GlobalAvgPool(name: "gap")
        #expect(layer.outputShape(x.shape) == [2, channels])
        expectClose(layer.forward(x.tensor(layout: layout), training: false), Reference.globalAvgPool(x),
                    tolerance: 1e-6, "\(layout) forward")
        let (_, dx) = forwardBackward(layer, x.tensor(layout: layout), projection: proj)
        #expect(dx.layout == layout)
        GradientCheck().expect(dx, matches: { Reference.globalAvgPool($0).dot(proj) }, at: x, "\(layout) dx")
      }
    }
  }
}
