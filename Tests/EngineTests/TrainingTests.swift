import AEPSLEngine
import AEPSLTestSupport
import Testing

extension EngineSuite {
  /// Whole networks: the layers' forward and backward passes put together must learn.
  @Suite struct Training {
    @Test("the tiny classifier overfits one batch of 8 images", arguments: ["squared error", "bce"])
    func tinyClassifierOverfitsOneBatch(loss: String) {
      let scenes = SyntheticScenes(count: 8, size: 32, classes: 4, seed: 1)
      let model = Classifier(spec: .tiny, classes: 4, seed: 2)
      let sgd = SGD(parameters: model.parameters, learningRate: loss == "bce" ? 0.05 : 0.2, momentum: 0.9, weightDecay: 0)
      func step() -> Float {
        let logits = model.forward(scenes.images, training: true)
        let result = loss == "bce" ? Loss.binaryCrossEntropy(logits: logits, targets: scenes.targets)
                                   : Loss.sigmoidSquaredError(logits: logits, targets: scenes.targets)
        model.backward(result.gradient)
        sgd.step()
        return result.value
      }
      let initial = step()
      var last = initial
      for _ in 0..<60 { last = step() }
      #expect(initial > (loss == "bce" ? 0.5 : 0.2), "the untrained loss is near chance: \(initial)")
      #expect(last < (loss == "bce" ? 0.02 : 0.005), "loss \(initial) -> \(last)")
      // Every label of the batch is now predicted right.
      let logits = model.forward(scenes.images, training: true)
      let predicted = logits.values.map { $0 > 0 ? Float(1) : 0 }
      #expect(predicted == scenes.targets.values)
    }

    /// Layers overwrite the gradients other layers hand them, never the caller's: the same
    /// backward with every gradient copied first (so nothing is overwritten) gives the same
    /// result bit for bit, and the caller's gradient is left as it was.
    @Test func inPlaceGradientsChangeNothing() {
      func network() -> Sequential {
        let convs = [Conv2d(name: "a", inputChannels: 3, outputChannels: 16, kernelSize: 3, padding: 1, fusedReLU: true),
                     Conv2d(name: "b", inputChannels: 16, outputChannels: 16, kernelSize: 3, padding: 1, bias: false),
                     Conv2d(name: "c", inputChannels: 16, outputChannels: 32, kernelSize: 3, padding: 2, dilation: 2, fusedReLU: true)]
        var rng = SeededGenerator(seed: 7)
        for c in convs { c.initializeHe(&rng) }
        return Sequential(name: "n", layers: [convs[0], MaxPool2d(name: "p", kernelSize: 2, stride: 2), convs[1],
                                              BatchNorm2d(name: "bn", channels: 16, fusedReLU: true), ReLU(name: "r"),
                                              convs[2], Dropout(name: "d", p: 0.5, seed: 3)])
      }
      let x = TestData.uniform([2, 3, 12, 12], seed: 80).tensor()
      let dy = TestData.uniform([2, 32, 6, 6], seed: 81).tensor()
      let before = dy.values
      let (a, b) = (network(), network())
      _ = a.forward(x, training: true)
      let dxA = a.backward(dy).values
      #expect(dy.values == before, "the caller's gradient is untouched")
      _ = b.forward(x, training: true)
      var g = dy
      for layer in b.layers.reversed() { g = layer.backward(g.copy()) }
      #expect(dxA == g.values, "input gradient")
      #expect(a.parameters.map(\.grad.values) == b.parameters.map(\.grad.values), "parameter gradients")
    }

    @Test func segmenterLearnsFromBothHeadsAtOnce() {
      let scenes = SyntheticScenes(count: 8, size: 32, classes: 4, seed: 3)
      let labels = scenes.labels(stride: 8)
      let model = Segmenter(spec: .tiny, classes: 4, seed: 4)
      let sgd = SGD(parameters: model.parameters, learningRate: 0.05, momentum: 0.9, weightDecay: 0)
      var losses: [Float] = []
      for _ in 0..<25 {
        let (scores, logits) = model.forward(scenes.images, training: true)
        #expect(scores.shape == [8, 5, 4, 4] && logits.shape == [8, 4])
        let seg = Loss.softmaxCrossEntropy(logits: scores, labels: labels)
        let cls = Loss.binaryCrossEntropy(logits: logits, targets: scenes.targets)
        model.backward(dScores: seg.gradient, dLogits: cls.gradient)
        sgd.step()
        losses.append(seg.value + cls.value)
      }
      #expect(losses.last! < 0.4 * losses.first!, "loss \(losses.first!) -> \(losses.last!)")
    }

    /// The two heads' gradients meet at the last feature map: one backward with both equals
    /// the sum of one backward with each.
    @Test func segmenterCombinedBackwardIsTheSumOfEachHead() {
      let scenes = SyntheticScenes(count: 2, size: 32, classes: 3, seed: 5)
      let model = Segmenter(spec: .tiny, classes: 3, seed: 6)
      let dScores = TestData.uniform([2, 4, 4, 4], seed: 7).tensor()
      let dLogits = TestData.uniform([2, 3], seed: 8).tensor()
      func gradients(_ s: Tensor, _ l: Tensor) -> [[Float]] {
        for p in model.parameters { p.grad.zero() }
        _ = model.forward(scenes.images, training: true)
        model.backward(dScores: s, dLogits: l)
        return model.parameters.map(\.grad.values)
      }
      let onlyScores = gradients(dScores, dLogits.zerosLike())
      let onlyLogits = gradients(dScores.zerosLike(), dLogits)
      let both = gradients(dScores, dLogits)
      #expect(onlyLogits.last!.contains { $0 != 0 } && onlyScores[0].contains { $0 != 0 })
      for (i, p) in model.parameters.enumerated() {
        let sum = zip(onlyScores[i], onlyLogits[i]).map { Double($0) + Double($1) }
        let scale = max(1, sum.map(abs).max()!)
        expectClose(both[i].map { Double($0) / scale }, sum.map { $0 / scale }, tolerance: 1e-4, p.name)
      }
    }
  }
}
