import AEPSLEngine
import AEPSLTestSupport
import Foundation
import Testing

extension EngineSuite {
  /// The same training twice in one process gives the same weights bit for bit: nothing a
  /// first training leaves behind (recycled tensor storage, shared scratch buffers, cached
  /// primitives and reorders) may change a second one. Resuming an interrupted training in
  /// the same process relies on it.
  @Suite struct Determinism {
    /// Losses and final parameters of a few SGD steps of a tiny classifier on `scenes`.
    static func trainClassifier(_ scenes: SyntheticScenes, steps: Int) -> (losses: [Float], parameters: [[Float]]) {
      let model = Classifier(spec: .tiny, classes: scenes.classes, seed: 2)
      let sgd = SGD(parameters: model.parameters, learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4)
      var losses: [Float] = []
      for _ in 0..<steps {
        let logits = model.forward(scenes.images, training: true)
        let result = Loss.sigmoidSquaredError(logits: logits, targets: scenes.targets)
        model.backward(result.gradient)
        sgd.step()
        losses.append(result.value)
      }
      return (losses, model.parameters.map(\.value.values) + model.buffers.map(\.value.values))
    }

    static func trainSegmenter(_ scenes: SyntheticScenes, steps: Int) -> (losses: [Float], parameters: [[Float]]) {
      let labels = scenes.labels(stride: 8)
      let model = Segmenter(spec: .tiny, classes: scenes.classes, seed: 4)
      let sgd = SGD(parameters: model.parameters, learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4)
      var losses: [Float] = []
      for _ in 0..<steps {
        let (scores, logits) = model.forward(scenes.images, training: true)
        let seg = Loss.softmaxCrossEntropy(logits: scores, labels: labels)
        let cls = Loss.binaryCrossEntropy(logits: logits, targets: scenes.targets)
        model.backward(dScores: seg.gradient, dLogits: cls.gradient)
        sgd.step()
        losses.append(seg.value + cls.value)
      }
      return (losses, model.parameters.map(\.value.values) + model.buffers.map(\.value.values))
    }

    static func firstDifference(_ a: [[Float]], _ b: [[Float]]) -> String {
      for (i, (x, y)) in zip(a, b).enumerated() where x != y {
        let j = zip(x, y).enumerated().first { $0.1.0 != $0.1.1 }!.offset
        return "tensor \(i), element \(j): \(x[j]) vs \(y[j])"
      }
      return "none"
    }

    // Size 40 keeps every tensor under TensorMemory's pooling threshold, size 64 puts the
    // first activations (4 x 16 x 64 x 64 floats) at 1 MiB, in the recycled pool.
    @Test("a tiny classifier trains the same twice in one process", arguments: [40, 64])
    func classifierTrainsTheSameTwice(size: Int) {
      let scenes = SyntheticScenes(count: 4, size: size, classes: 4, seed: 1)
      let first = Self.trainClassifier(scenes, steps: 4)
      let second = Self.trainClassifier(scenes, steps: 4)
      #expect(first.losses == second.losses)
      // Compared as a Bool: a failing #expect on arrays this long spends minutes diffing them.
      let same = first.parameters == second.parameters
      #expect(same, "\(Self.firstDifference(first.parameters, second.parameters))")
    }

    @Test("a tiny segmenter trains the same twice in one process", arguments: [40, 64])
    func segmenterTrainsTheSameTwice(size: Int) {
      let scenes = SyntheticScenes(count: 4, size: size, classes: 4, seed: 3)
      let first = Self.trainSegmenter(scenes, steps: 4)
      let second = Self.trainSegmenter(scenes, steps: 4)
      #expect(first.losses == second.losses)
      // Compared as a Bool: a failing #expect on arrays this long spends minutes diffing them.
      let same = first.parameters == second.parameters
      #expect(same, "\(Self.firstDifference(first.parameters, second.parameters))")
    }

    /// Two trainings at once on two threads (as tests of different suites run) end where
    /// each ends alone: engine layers share no mutable buffers across threads.
    @Test func concurrentTrainingsMatchSerialOnes() {
      nonisolated(unsafe) let a = SyntheticScenes(count: 4, size: 40, classes: 4, seed: 1)
      nonisolated(unsafe) let b = SyntheticScenes(count: 4, size: 64, classes: 4, seed: 3)
      let aloneA = Self.trainClassifier(a, steps: 4)
      let aloneB = Self.trainSegmenter(b, steps: 4)
      for _ in 0..<2 {
        nonisolated(unsafe) var togetherA: (losses: [Float], parameters: [[Float]])?
        nonisolated(unsafe) var togetherB: (losses: [Float], parameters: [[Float]])?
        let done = DispatchGroup()
        done.enter()
        done.enter()
        Thread { togetherA = Self.trainClassifier(a, steps: 4); done.leave() }.start()
        Thread { togetherB = Self.trainSegmenter(b, steps: 4); done.leave() }.start()
        done.wait()
        #expect(togetherA!.losses == aloneA.losses)
        let sameA = togetherA!.parameters == aloneA.parameters
        #expect(sameA, "\(Self.firstDifference(aloneA.parameters, togetherA!.parameters))")
        #expect(togetherB!.losses == aloneB.losses)
        let sameB = togetherB!.parameters == aloneB.parameters
        #expect(sameB, "\(Self.firstDifference(aloneB.parameters, togetherB!.parameters))")
      }
    }
  }
}
