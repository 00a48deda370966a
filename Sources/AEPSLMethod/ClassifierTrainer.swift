import AEPSLData
import AEPSLEngine
import Foundation

/// Optimisation settings shared by the classifiers and the segmenter.
public struct TrainingSchedule: Sendable, Codable, Equatable {
  public var epochs: Int
  public var learningRate: Float
  public var momentum: Float
  public var weightDecay: Float
  /// DeepLab's poly decay (power 0.9) over the whole run.
  public var polyPower: Float

  public init(epochs: Int, learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 5e-4, polyPower: Float = 0.9) {
    self.epochs = epochs
    self.learningRate = learningRate
    self.momentum = momentum
    self.weightDecay = weightDecay
    self.polyPower = polyPower
  }
}

/// Trains a classifier on multi-label targets and returns the mean loss of every epoch.
///
/// Stops with `NonFiniteLossError` on a NaN or infinite loss or gradient, before the bad
/// update is applied, so the caller's last checkpoint stays good.
public func trainClassifier(_ model: Classifier, loader: BatchLoader, schedule: TrainingSchedule,
                            loss: ClassificationLoss, stage: String, progress: ProgressReporter.Options,
                            afterEpoch: (Int, Float) throws -> Void = { _, _ in }) throws -> [Float] {
  let sgd = SGD(parameters: model.parameters, learningRate: schedule.learningRate, momentum: schedule.momentum,
                weightDecay: schedule.weightDecay)
  let perEpoch = loader.batchesPerEpoch
  let total = schedule.epochs * perEpoch
  let policy = LearningRateSchedule.poly(maxIterations: total, power: schedule.polyPower)
  var curve: [Float] = []
  var iteration = 0
  for epoch in 1...schedule.epochs {
    let bar = ProgressReporter("\(stage) epoch \(epoch)/\(schedule.epochs)", total: loader.source.count, unit: "images", options: progress)
    let batches = loader.epoch(epoch)
    var sum: Double = 0, count = 0
    while let batch = try batches.next() {
      sgd.learningRate = policy.rate(base: schedule.learningRate, iteration: iteration)
      let logits = model.forward(batch.images, training: true)
      let result = loss(logits: logits, targets: batch.targets)
      guard result.value.isFinite else {
        throw NonFiniteLossError(stage: stage, epoch: epoch, iteration: iteration, what: "loss")
      }
      model.backward(result.gradient)
      guard gradientsAreFinite(sgd.parameters) else {
        throw NonFiniteLossError(stage: stage, epoch: epoch, iteration: iteration, what: "gradient")
      }
      sgd.step()
      iteration += 1
      sum += Double(result.value) * Double(batch.count)
      count += batch.count
      bar.advance(by: batch.count, note: String(format: "loss %.4f", sum / Double(max(count, 1))))
    }
    let mean = Float(sum / Double(max(count, 1)))
    bar.finish(note: String(format: "loss %.4f", mean))
    curve.append(mean)
    try afterEpoch(epoch, mean)
  }
  return curve
}
