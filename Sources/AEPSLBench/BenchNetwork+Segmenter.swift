import AEPSLEngine
import AEPSLMethod
import Foundation

extension BenchNetwork {
  /// 2 x multiply-adds of one image's forward pass through the segmenter (backbone, the 1x1
  /// score convolution to classes + 1 maps, the classification branch's linear layer), in GFLOP.
  public var segmenterForwardGFLOPPerImage: Double {
    let backbone = Sequential(spec: spec, seed: 0)
    let features = backbone.outputShape([1, 3, side, side])
    let scoreMACs = features[2] * features[3] * spec.featureChannels * (Self.classes + 1)
    let macs = backbone.multiplyAdds(inputShape: [1, 3, side, side]) + scoreMACs + spec.featureChannels * Self.classes
    return 2 * Double(macs) / 1e9
  }

  /// The PSL training step of the segmenter, as `train-seg` runs it (forward, SegmentationLoss
  /// with the online mask and the mse classification term, backward, SGD), on random images,
  /// random masks at the score maps' resolution and image labels {1, 2}; the PyTorch side
  /// (scripts/bench_reference.py, run_segmenter) does the same. Returns its figures.
  public func measureSegmenterStep(seed: UInt64, warmup: Int, iterations: Int) -> [String: Any] {
    let model = Segmenter(spec: spec, classes: Self.classes, seed: seed)
    var rng = SeededGenerator(seed: seed).split("bench segmenter data")
    let x = Tensor(shape: inputShape)
    for i in 0..<x.count { x.data[i] = rng.nextNormal() }
    let cells = model.backbone.outputShape(inputShape)
    let mask = (0..<(batch * cells[2] * cells[3])).map { _ in UInt8(rng.next() % UInt64(Self.classes + 1)) }
    let targets = Tensor(shape: [batch, Self.classes])
    for i in 0..<targets.count { targets.data[i] = rng.nextUniform() < 0.2 ? 1 : 0 }
    let imageLabels = [[Int]](repeating: [0, 1], count: batch)
    let sgd = SGD(parameters: model.parameters, learningRate: 1e-3, momentum: 0.9, weightDecay: 5e-4)
    let loss = SegmentationLoss(prohibitive: true, classification: .mse)
    var losses: [Float] = []
    let step = {
      let (scores, logits) = model.forward(x, training: true)
      let r = loss(scores: scores, logits: logits, targets: targets, mask: mask, imageLabels: imageLabels)
      model.backward(dScores: r.dScores, dLogits: r.dLogits)
      sgd.step()
      losses.append(r.terms.total)
    }
    _ = Self.timed(warmup, step)
    let times = Self.timed(iterations, step)
    var figures = Self.figures(times, batch: batch, gflop: 3 * segmenterForwardGFLOPPerImage * Double(batch))
    figures["loss_first"] = Double(losses.first ?? .nan)
    figures["loss_last"] = Double(losses.last ?? .nan)
    return figures
  }

  /// Wall-clock seconds of each of `n` calls of `body`.
  static func timed(_ n: Int, _ body: () -> Void) -> [Double] {
    (0..<n).map { _ in
      let start = DispatchTime.now().uptimeNanoseconds
      body()
      return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
  }

  /// Images per second (batch over the median time), the median and the GFLOP/s of `gflop`
  /// per iteration.
  static func figures(_ times: [Double], batch: Int, gflop: Double) -> [String: Any] {
    let sorted = times.sorted()
    let median = sorted.count % 2 == 0 ? (sorted[sorted.count / 2] + sorted[sorted.count / 2 - 1]) / 2 : sorted[sorted.count / 2]
    return ["images_per_s": Double(batch) / median, "median_s": median, "iteration_s": times, "gflops": gflop / median]
  }
}
