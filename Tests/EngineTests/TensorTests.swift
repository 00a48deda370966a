import AEPSLEngine
import AEPSLTestSupport
import Testing

extension EngineSuite {
  @Suite struct Tensors {
    @Test("blocked and NCHW convert back and forth exactly", arguments: [[1, 8, 1, 1], [2, 16, 3, 5], [3, 24, 4, 4]])
    func blockedRoundTrip(shape: [Int]) {
      let plain = TestData.uniform(shape, seed: 500).tensor()
      let blocked = plain.blocked()
      #expect(blocked.layout == .nChw8c && blocked.shape == shape)
      #expect(blocked.values == plain.values, "values reads NCHW order from either layout")
      #expect(blocked.nchw().layout == .nchw)
      let back = blocked.nchw()
      withExtendedLifetime(back) { #expect(Array(back.buffer) == Array(plain.buffer), "memory after the round trip") }
      #expect(plain.to(.nchw) === plain && blocked.to(.nChw8c) === blocked, "converting to the same layout is free")
      // nChw8c memory order: [N][C/8][H][W][8].
      let (c, h, w) = (shape[1], shape[2], shape[3])
      for (n, ci, r, q) in [(0, 0, 0, 0), (shape[0] - 1, c - 1, h - 1, w - 1), (0, c / 2 + 1, h / 2, w - 1)] {
        let memory = (n * c + (ci / 8) * 8) * h * w + (r * w + q) * 8 + ci % 8
        #expect(blocked.data[memory] == plain[n, ci, r, q], "memory order at \([n, ci, r, q])")
      }
    }

    @Test("every layout converts to every other exactly", arguments: [[1, 16, 1, 1], [2, 32, 3, 5]])
    func sixteenChannelBlocks(shape: [Int]) {
      let plain = TestData.uniform(shape, seed: 501).tensor()
      let b16 = plain.to(.nChw16c)
      #expect(b16.layout == .nChw16c && b16.values == plain.values)
      #expect(b16.to(.nChw8c).values == plain.values && plain.to(.nChw8c).to(.nChw16c).values == plain.values)
      // nChw16c memory order: [N][C/16][H][W][16].
      let (c, h, w) = (shape[1], shape[2], shape[3])
      for (n, ci, r, q) in [(0, 0, 0, 0), (shape[0] - 1, c - 1, h - 1, w - 1), (0, c / 2 + 1, h / 2, w - 1)] {
        let memory = (n * c + (ci / 16) * 16) * h * w + (r * w + q) * 16 + ci % 16
        #expect(b16.data[memory] == plain[n, ci, r, q], "memory order at \([n, ci, r, q])")
        #expect(b16[n, ci, r, q] == plain[n, ci, r, q])
      }
    }

    /// Large buffers are recycled by size: a zero-filled tensor must be zero even when its
    /// memory held another tensor's values a moment ago.
    @Test func recycledStorageIsZeroedWhenAskedFor() {
      let shape = [3, 1 << 18]  // 3 MiB, above the recycling threshold
      for _ in 0..<3 {
        let dirty = Tensor(shape: shape, repeating: 7)
        #expect(dirty.values.allSatisfy { $0 == 7 })
        let pointer = dirty.data
        _ = consume dirty
        let clean = Tensor(shape: shape)
        #expect(clean.values.allSatisfy { $0 == 0 }, "zeroed after reuse (same memory: \(clean.data == pointer))")
      }
    }

    @Test func preferredLayoutFollowsTheChannels() {
      #expect(TensorLayout.preferred(channels: 21) == .nchw)
      #expect(TensorLayout.preferred(channels: 24) == .nChw8c)
      #expect([.nChw8c, .nChw16c].contains(TensorLayout.preferred(channels: 64)))
    }

    @Test func subscriptReadsAndWritesLogicalIndicesInEitherLayout() {
      let plain = Tensor(shape: [2, 16, 3, 3], values: (0..<288).map(Float.init))
      let blocked = plain.blocked()
      for index in [[0, 0, 0, 0], [1, 9, 2, 1], [0, 15, 1, 2], [1, 7, 0, 0]] {
        #expect(blocked[index[0], index[1], index[2], index[3]] == plain[index[0], index[1], index[2], index[3]])
      }
      blocked[1, 9, 2, 1] = -5
      #expect(blocked.values[((1 * 16 + 9) * 3 + 2) * 3 + 1] == -5)
      #expect(blocked.values.filter { $0 == -5 }.count == 1, "one element written")
      #expect(blocked.offset([1, 9, 2, 1]) != plain.offset([1, 9, 2, 1]))
    }

    @Test func copyReshapeAndAdd() {
      let a = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
      let b = a.copy()
      b.add(a)
      #expect(b.values == [2, 4, 6, 8, 10, 12] && a.values == [1, 2, 3, 4, 5, 6])
      #expect(a.reshaped([3, 2]).shape == [3, 2] && a.reshaped([6]).values == a.values)
      #expect(a.zerosLike().values == [0, 0, 0, 0, 0, 0])
    }
  }

  @Suite struct Optimizer {
    /// v = momentum v + lr lr_mult (g + decay decay_mult w);  w -= v, worked by hand.
    @Test func sgdUpdateWithMomentumDecayAndMultipliers() {
      let w = Parameter(name: "w", value: Tensor(shape: [2], values: [1, -2]))
      let b = Parameter(name: "b", value: Tensor(shape: [1], values: [0.5]), lrMultiplier: 2, decayMultiplier: 0)
      let sgd = SGD(parameters: [w, b], learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
      let version = w.version
      for _ in 0..<2 {
        w.grad.data[0] = 0.5; w.grad.data[1] = 0.25; b.grad.data[0] = 1
        sgd.step()
        #expect(w.grad.values == [0, 0] && b.grad.values == [0], "step clears the gradients")
      }
      // Step 1: v = 0.1 (0.5 + 0.01) = 0.051, 0.1 (0.25 - 0.02) = 0.023, 0.2 (1) = 0.2.
      // Step 2: v = 0.9 v + 0.1 (g + 0.01 w): 0.096849, 0.043677; bias 0.9 (0.2) + 0.2 = 0.38.
      expectClose(w.value.values, [0.852151, -2.066677], tolerance: 1e-6, "weights")
      expectClose(b.value.values, [-0.08], tolerance: 1e-6, "bias")
      expectClose(sgd.state.map { $0.value.values[0] }, [0.096849, 0.38], tolerance: 1e-6, "momentum buffers")
      #expect(w.version == version + 2, "each update bumps the version")
    }

    @Test func polyScheduleDecaysToZero() {
      let poly = LearningRateSchedule.poly(maxIterations: 100, power: 0.9)
      expectClose(poly.rate(base: 0.01, iteration: 0), 0.01, tolerance: 1e-9)
      expectClose(poly.rate(base: 0.01, iteration: 50), 0.01 * 0.535_886_731, tolerance: 1e-8)
      expectClose(poly.rate(base: 0.01, iteration: 90), 0.01 * 0.125_892_541, tolerance: 1e-8)
      #expect(poly.rate(base: 0.01, iteration: 100) == 0)
      #expect(poly.rate(base: 0.01, iteration: 150) == 0)
    }
  }

  @Suite struct Networks {
    @Test func largeFOVKeepsOutputStride8OnA321Crop() {
      let net = Sequential(spec: .largeFOV, seed: 0)
      #expect(net.outputShape([1, 3, 321, 321]) == [1, 1024, 41, 41])
      #expect(BackboneSpec.largeFOV.featureChannels == 1024)
      #expect(net.layers.compactMap { $0 as? Conv2d }.count == 15, "13 VGG convolutions, fc6, fc7")
      #expect(net.layers.compactMap { $0 as? Conv2d }.first?.computesInputGradient == false)
      // Reported, not forced: DESIGN quotes ~101.8 GFLOP (forward, 321x321), i.e. ~50.9 GMAC.
      let gmac = Double(net.multiplyAdds(inputShape: [1, 3, 321, 321])) / 1e9
      #expect(gmac > 45 && gmac < 60, "largefov forward: \(gmac) GMAC")
    }

    @Test(arguments: [32, 64, 128])
    func tinyHasOutputStride8(size: Int) {
      let net = Sequential(spec: .tiny, seed: 0)
      #expect(net.outputShape([2, 3, size, size]) == [2, 256, size / 8, size / 8])
      let y = net.forward(TestData.uniform([2, 3, size, size], seed: 1).tensor(), training: false)
      #expect(y.shape == [2, 256, size / 8, size / 8])
      #expect(net.layers.compactMap { $0 as? BatchNorm2d }.count == 9)
    }

    @Test func classActivationMapsAreReLUOfTheWeightedFeatures() {
      let model = Classifier(spec: .tiny, classes: 3, seed: 9)
      let f = TestData.uniform([2, 256, 2, 3], seed: 10)
      let w = HostTensor<Double>(model.classifier.weight.value)
      let cam = model.classActivationMaps(features: f.tensor(layout: .nChw8c))
      var expected = HostTensor<Double>(zeros: [2, 3, 2, 3])
      for n in 0..<2 { for c in 0..<3 { for r in 0..<2 { for q in 0..<3 {
        var s = 0.0
        for k in 0..<256 { s += w[c, k] * f[n, k, r, q] }
        expected[n, c, r, q] = max(s, 0)
      } } } }
      #expect(expected.values.contains(0) && expected.values.contains { $0 > 0 })
      expectClose(cam, expected, tolerance: 1e-5)
    }
  }
}
