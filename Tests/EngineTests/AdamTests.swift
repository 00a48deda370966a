import AEPSLEngine
import Foundation
import AEPSLTestSupport
import Testing

extension EngineSuite {
  /// Adam against a plain Double reference of its update, on a quadratic it must minimise,
  /// through a saved and restored state, and on a tiny network that must overfit one batch.
  @Suite struct AdamTests {
    /// The update of `Adam.step` written out in Double for one weight.
    static func reference(w0: Double, grads: [Double], lr: Double, beta1: Double, beta2: Double, eps: Double,
                          decay: Double) -> Double {
      var (w, m, v) = (w0, 0.0, 0.0)
      for (k, g0) in grads.enumerated() {
        let t = Double(k + 1)
        let g = g0 + decay * w
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        let mHat: Double = m / (1 - pow(beta1, t))
        let vHat: Double = v / (1 - pow(beta2, t))
        w -= lr * mHat / (vHat.squareRoot() + eps)
      }
      return w
    }

    @Test("five steps match the Double reference, with learning-rate and decay multipliers")
    func matchesReference() {
      var rng = SeededGenerator(seed: 3)
      let p = Parameter(name: "w", value: Tensor(shape: [6]), lrMultiplier: 2, decayMultiplier: 0.5)
      let w0 = (0..<6).map { _ in Double(rng.nextNormal()) }
      for i in 0..<6 { p.value.data[i] = Float(w0[i]) }
      let grads = (0..<6).map { _ in (0..<5).map { _ in Double(rng.nextNormal()) } }
      let adam = Adam(parameters: [p], learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1)
      for k in 0..<5 {
        for i in 0..<6 { p.grad.data[i] = Float(grads[i][k]) }
        adam.step()
        #expect((0..<6).allSatisfy { p.grad.data[$0] == 0 }, "gradients are cleared")
      }
      #expect(adam.stepCount == 5)
      for i in 0..<6 {
        let expected = Self.reference(w0: w0[i], grads: grads[i], lr: 0.02, beta1: 0.9, beta2: 0.999, eps: 1e-8, decay: 0.05)
        #expect(abs(Double(p.value.data[i]) - expected) < 1e-5, "weight \(i): \(p.value.data[i]) against \(expected)")
      }
    }

    @Test("the first step moves every weight by the learning rate, whatever its gradient's scale")
    func scaleFreeFirstStep() {
      let p = Parameter(name: "w", value: Tensor(shape: [3]))
      let adam = Adam(parameters: [p], learningRate: 0.1)
      for (i, g) in [1e-6, 1.0, 1e4].enumerated() { p.grad.data[i] = Float(g) }
      adam.step()
      for i in 0..<3 { #expect(abs(p.value.data[i] + 0.1) < 1e-3, "\(p.value.data[i])") }
    }

    @Test("minimises a quadratic; a restored state continues exactly as an uninterrupted run")
    func quadraticAndResume() throws {
      let target: [Float] = [3, -2, 0.5, 7]
      func make() -> (Parameter, Adam) {
        let p = Parameter(name: "w", value: Tensor(shape: [4]))
        return (p, Adam(parameters: [p], learningRate: 0.1))
      }
      func run(_ p: Parameter, _ adam: Adam, steps: Int) {
        for _ in 0..<steps {
          for i in 0..<4 { p.grad.data[i] = 2 * (p.value.data[i] - target[i]) }
          adam.step()
        }
      }
      let (a, adamA) = make()
      run(a, adamA, steps: 400)
      for i in 0..<4 { #expect(abs(a.value.data[i] - target[i]) < 0.05, "\(a.value.data[i]) against \(target[i])") }

      let (b, adamB) = make()
      run(b, adamB, steps: 150)
      let (c, adamC) = make()
      for (from, to) in zip([b.value] + adamB.state.map(\.value), [c.value] + adamC.state.map(\.value)) {
        for i in 0..<from.count { to.data[i] = from.data[i] }
      }
      run(b, adamB, steps: 250)
      run(c, adamC, steps: 250)
      for i in 0..<4 { #expect(b.value.data[i] == c.value.data[i]) }
      #expect(adamC.stepCount == 400)
    }

    @Test("the tiny classifier overfits one batch of 8 images with Adam")
    func tinyClassifierOverfits() {
      let scenes = SyntheticScenes(count: 8, size: 32, classes: 4, seed: 1)
      let model = Classifier(spec: .tiny, classes: 4, seed: 2)
      let adam = OptimizerKind.adam.make(parameters: model.parameters, learningRate: 0.003, momentum: 0.9, weightDecay: 0)
      var first: Float = 0, last: Float = 0
      for k in 0..<60 {
        let result = Loss.sigmoidSquaredError(logits: model.forward(scenes.images, training: true), targets: scenes.targets)
        model.backward(result.gradient)
        adam.step()
        if k == 0 { first = result.value }
        last = result.value
      }
      #expect(first > 0.2 && last < 0.005, "loss \(first) -> \(last)")
    }
  }
}
