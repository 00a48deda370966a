import AEPSLEngine
import Foundation

/// A network of the benchmark: the backbone, input side, batch and default iteration counts.
public struct BenchNetwork: Sendable {
  public let name: String
  public let spec: BackboneSpec
  public let side: Int
  public let batch: Int
  public let warmup: Int
  public let iterations: Int
  public static let classes = 20

  public static let all = [
    BenchNetwork(name: "tiny", spec: .tiny, side: 128, batch: 32, warmup: 3, iterations: 20),
    BenchNetwork(name: "largefov", spec: .largeFOV, side: 321, batch: 2, warmup: 1, iterations: 5),
  ]

  public static func named(_ name: String) -> BenchNetwork? { all.first { $0.name == name } }

  public var inputShape: [Int] { [batch, 3, side, side] }

  /// 2 x multiply-adds of one image's forward pass (backbone and linear layer), in GFLOP.
  public var forwardGFLOPPerImage: Double {
    let backbone = Sequential(spec: spec, seed: 0)
    let macs = backbone.multiplyAdds(inputShape: [1, 3, side, side]) + spec.featureChannels * Self.classes
    return 2 * Double(macs) / 1e9
  }

  /// Inference (folded batch norm), then the classifier's training step, then the segmenter's
  /// PSL training step, in this process; returns the figures. Peak memory is the classifier's:
  /// the segmenter is measured after it, in the same process.
  public func measure(seed: UInt64, warmup: Int, iterations: Int) -> [String: Any] {
    let baseline = BenchMemory.currentRSSMiB()
    let model = Classifier(spec: spec, classes: Self.classes, seed: seed)
    let macs = model.backbone.multiplyAdds(inputShape: inputShape) + batch * spec.featureChannels * Self.classes
    let forwardGFLOP = 2 * Double(macs) / 1e9
    var rng = SeededGenerator(seed: seed).split("bench data")
    let x = Tensor(shape: inputShape)
    for i in 0..<x.count { x.data[i] = rng.nextNormal() }
    let y = Tensor(shape: [batch, Self.classes])
    for i in 0..<y.count { y.data[i] = rng.nextUniform() < 0.5 ? 1 : 0 }

    // Inference, as the pipeline runs it (the classifier folds batch norm into the
    // convolutions; the first call, a warm-up, builds the folded copy).
    let infer = { _ = model.forward(x, training: false) }
    _ = Self.timed(warmup, infer)
    let inferFigures = Self.figures(Self.timed(iterations, infer), batch: batch, gflop: forwardGFLOP)
    let peakInfer = BenchMemory.peakRSSMiB()

    let sgd = SGD(parameters: model.parameters, learningRate: 1e-3, momentum: 0.9, weightDecay: 5e-4)
    var losses: [Float] = []
    let train = {
      let logits = model.forward(x, training: true)
      let loss = Loss.sigmoidSquaredError(logits: logits, targets: y)
      model.backward(loss.gradient)
      sgd.step()
      losses.append(loss.value)
    }
    _ = Self.timed(warmup, train)
    let trainFigures = Self.figures(Self.timed(iterations, train), batch: batch, gflop: 3 * forwardGFLOP)
    let peakTrain = BenchMemory.peakRSSMiB()
    let segmentFigures = measureSegmenterStep(seed: seed, warmup: warmup, iterations: iterations)

    return [
      "network": name, "batch": batch, "input": inputShape, "threads": ComputeThreads.current,
      "warmup": warmup, "iterations": iterations,
      "forward_gflop_per_image": forwardGFLOP / Double(batch),
      "train": trainFigures, "infer": inferFigures, "segment_train": segmentFigures,
      "segment_forward_gflop_per_image": segmenterForwardGFLOPPerImage,
      "train_gflops": trainFigures["gflops"]!, "infer_gflops": inferFigures["gflops"]!,
      "segment_train_gflops": segmentFigures["gflops"]!,
      "rss_mib": ["baseline": baseline, "peak_after_inference": peakInfer, "peak_after_training": peakTrain,
                  "inference_increase": peakInfer - baseline, "training_increase": peakTrain - baseline],
      "loss_first": Double(losses.first ?? .nan), "loss_last": Double(losses.last ?? .nan),
    ]
  }
}
