import AEPSLEngine
import AEPSLTestSupport
import Testing

extension EngineSuite {
  @Suite struct Losses {
    /// Logits large enough to saturate the sigmoid in places.
    static let shapes: [[Int]] = [[2, 3], [8, 20]]

    @Test("sigmoid squared error: value and gradient", arguments: shapes)
    func sigmoidSquaredError(shape: [Int]) {
      let z = TestData.uniform(shape, seed: 400, in: -6...6), y = TestData.binaryTargets(shape, seed: 401)
      let result = Loss.sigmoidSquaredError(logits: z.tensor(), targets: y.tensor())
      expectClose(result.value, Reference.sigmoidSquaredError(logits: z, targets: y), tolerance: 1e-6, "loss")
      GradientCheck(step: 1e-4).expect(result.gradient, matches: { Reference.sigmoidSquaredError(logits: $0, targets: y) },
                                       at: z, tolerance: 1e-6, "dz")
    }

    @Test("binary cross-entropy on logits: value and gradient", arguments: shapes)
    func binaryCrossEntropy(shape: [Int]) {
      let z = TestData.uniform(shape, seed: 410, in: -6...6), y = TestData.binaryTargets(shape, seed: 411)
      let result = Loss.binaryCrossEntropy(logits: z.tensor(), targets: y.tensor())
      expectClose(result.value, Reference.binaryCrossEntropy(logits: z, targets: y), tolerance: 1e-6, "loss")
      GradientCheck(step: 1e-4).expect(result.gradient, matches: { Reference.binaryCrossEntropy(logits: $0, targets: y) },
                                       at: z, tolerance: 1e-6, "dz")
    }

    @Test func binaryCrossEntropyStaysFiniteForLargeLogits() {
      let z = Tensor(shape: [1, 4], values: [-80, 80, -80, 80]), y = Tensor(shape: [1, 4], values: [1, 0, 0, 1])
      let result = Loss.binaryCrossEntropy(logits: z, targets: y)
      expectClose(result.value, 40, tolerance: 1e-5)
      expectClose(result.gradient.values, [-0.25, 0.25, 0, 0], tolerance: 1e-6)
    }

    @Test("softmax cross-entropy ignores 255: value and gradient", arguments: [0.0, 0.3])
    func softmaxCrossEntropy(ignoreFraction: Double) {
      let shape = [2, 5, 4, 3]
      let z = TestData.uniform(shape, seed: 420, in: -4...4)
      let labels = TestData.labels(count: 2 * 4 * 3, classes: 5, seed: 421, ignoreFraction: ignoreFraction)
      #expect(ignoreFraction == 0 || labels.contains(255))
      for layout in [TensorLayout.nchw] {
        let result = Loss.softmaxCrossEntropy(logits: z.tensor(layout: layout), labels: labels)
        expectClose(result.value, Reference.softmaxCrossEntropy(logits: z, labels: labels), tolerance: 1e-6, "loss")
        GradientCheck(step: 1e-4).expect(result.gradient, matches: { Reference.softmaxCrossEntropy(logits: $0, labels: labels) },
                                         at: z, tolerance: 1e-6, "dz")
        // Ignored pixels get no gradient at all.
        let g = HostTensor<Double>(result.gradient)
        for (i, l) in labels.enumerated() where l == 255 {
          let (n, p) = (i / 12, i % 12)
          #expect((0..<5).allSatisfy { g.values[(n * 5 + $0) * 12 + p] == 0 })
        }
      }
    }

    @Test func softmaxCrossEntropyReadsBlockedLogits() {
      let z = TestData.uniform([2, 8, 3, 3], seed: 430, in: -3...3)
      let labels = TestData.labels(count: 18, classes: 8, seed: 431, ignoreFraction: 0.2)
      let result = Loss.softmaxCrossEntropy(logits: z.tensor(layout: .nChw8c), labels: labels)
      expectClose(result.value, Reference.softmaxCrossEntropy(logits: z, labels: labels), tolerance: 1e-6)
    }

    @Test func softmaxCrossEntropyWithEveryPixelIgnoredIsZero() {
      let z = TestData.uniform([1, 3, 2, 2], seed: 440).tensor()
      let result = Loss.softmaxCrossEntropy(logits: z, labels: [255, 255, 255, 255])
      #expect(result.value == 0)
      #expect(result.gradient.values.allSatisfy { $0 == 0 })
    }
  }
}
