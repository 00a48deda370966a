@testable import AEPSLEngine
import AEPSLTestSupport
import Testing

extension EngineSuite {
  /// `Conv2d` falls back to per-tap GEMMs only where oneDNN has nothing but a reference loop,
  /// which no shape of these tests hits on AVX2 or AVX-512: so the fallback is checked on its
  /// own, against the oneDNN path (itself checked by finite differences).
  @Suite struct TapConvolutionFallback {
    @Test("per-tap GEMMs agree with oneDNN: forward, input and parameter gradients", arguments: [
      ConvCase(input: 8, output: 8, padding: 2, dilation: 2),
      ConvCase(input: 4, output: 8, kernel: 3, padding: 4, dilation: 4, size: 9),
      ConvCase(input: 8, output: 16, padding: 12, dilation: 12, size: 9),
    ])
    func agreesWithDNNL(_ c: ConvCase) {
      let (x, w, b) = c.data(seed: 70)
      let proj = TestData.uniform(c.outputShape, seed: 71)
      let layer = c.makeLayer()
      layer.weight.assign(w)
      layer.bias!.assign(b!)
      let (y, dx) = forwardBackward(layer, x.tensor(), projection: proj)

      let o = c.outputShape
      let g = TapConvolution.Geometry(n: c.batch, c: c.input, h: c.size, w: c.size, o: c.output, ho: o[2], wo: o[3],
                                      k: c.kernel, dilation: c.dilation, padding: c.padding)
      let tapY = TapConvolution.forward(x: x.tensor(), weight: layer.weight.value, bias: layer.bias!.value, g)
      expectClose(tapY, HostTensor<Double>(y), tolerance: 1e-5, "forward")
      let tapDx = TapConvolution.backwardData(dy: proj.tensor(), weight: layer.weight.value, g)
      expectClose(tapDx, HostTensor<Double>(dx), tolerance: 1e-5, "dx")
      let (dW, db) = (Tensor(shape: w.shape), Tensor(shape: [c.output]))
      TapConvolution.accumulateWeightGradient(x: x.tensor(), dy: proj.tensor(), g, weightGrad: dW, biasGrad: db)
      expectClose(dW, HostTensor<Double>(layer.weight.grad), tolerance: 1e-4, "dW")
      expectClose(db, HostTensor<Double>(layer.bias!.grad), tolerance: 1e-4, "db")
    }
  }
}
