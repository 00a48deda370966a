import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import AEPSLFiles
import Foundation

/// Optimisation settings shared by the classifiers and the segmenter.
public struct TrainingSchedule: Sendable, Codable, Equatable {
  public var epochs: Int
  public var learningRate: Float
  public var momentum: Float
  public var weightDecay: Float
  /// DeepLab's poly decay (power 0.9) over the whole run.
  public var polyPower: Float
  /// Train for at least this many iterations, adding epochs when the dataset is small: a
  /// network needs a number of updates, not of passes (nil: `epochs` alone).
  public var minIterations: Int?
  /// The optimizer `TrainingLoop` makes (nil: SGD; `momentum` is then Adam's beta1): Adam for
  /// the `tiny` erasing classifiers by default (`EraseConfiguration`), SGD elsewhere.
  public var optimizer: OptimizerKind?

  public init(epochs: Int, learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 5e-4, polyPower: Float = 0.9,
              minIterations: Int? = nil) {
    self.epochs = epochs
    self.learningRate = learningRate
    self.momentum = momentum
    self.weightDecay = weightDecay
    self.polyPower = polyPower
    self.minIterations = minIterations
  }

  /// This schedule on `classes` classes with at least `perClass` updates per class (nil: no
  /// such minimum): each class needs about as many updates to be told apart from the others,
  /// so 20 classes train longer than the demo's 6. Epochs given exactly (`minIterations`
  /// nil) stay exact.
  public func withMinimum(perClass: Int?, classes: Int) -> TrainingSchedule {
    guard let least = minIterations, let perClass else { return self }
    var out = self
    out.minIterations = max(least, perClass * classes)
    return out
  }

  /// This schedule for a loader of `batchesPerEpoch` batches: `epochs`, or more when that
  /// gives fewer than `minIterations` iterations.
  public func resolved(batchesPerEpoch: Int) -> TrainingSchedule {
    guard let minIterations, batchesPerEpoch > 0 else { return self }
    var out = self
    out.epochs = max(epochs, (minIterations + batchesPerEpoch - 1) / batchesPerEpoch)
    return out
  }
}

/// What a stage trains a network with before any option: its schedule, batch size, crop
/// and random scales. `largefov` fine-tunes ImageNet weights on DeepLab's 321x321 crops
/// (scales 0.5-1.5; batch 4 where DeepLab uses 10, which fits a CPU); `tiny` trains from
/// scratch on 128-pixel crops (scales 0.75-1.25).
struct NetworkTrainingDefaults {
  var schedule: TrainingSchedule
  var batchSize: Int
  var cropSize: Int
  var scales: ClosedRange<Float>

  init(net: String, largefov: TrainingSchedule, tiny: TrainingSchedule, tinyBatchSize: Int) {
    if net == "largefov" {
      (schedule, batchSize, cropSize, scales) = (largefov, 4, 321, 0.5...1.5)
    } else {
      (schedule, batchSize, cropSize, scales) = (tiny, tinyBatchSize, 128, 0.75...1.25)
    }
  }

  /// Schedule, batch size, crop size, smallest and largest scale, as a configuration stores them.
  var fields: (TrainingSchedule, Int, Int, Float, Float) {
    (schedule, batchSize, cropSize, scales.lowerBound, scales.upperBound)
  }
}

/// Trains a classifier on multi-label targets and returns the mean loss of every epoch, in
/// `TrainingLoop` (resume from `state`, interruption, non-finite stop, data parallelism over
/// `communicator`). `afterEpoch` runs once an epoch's state is saved.
public func trainClassifier(_ model: Classifier, loader: BatchLoader, schedule: TrainingSchedule,
                            loss: ClassificationLoss, stage: String, progress: ProgressReporter.Options,
                            state: TrainingStateFile? = nil, log: @escaping (String) -> Void = { _ in },
                            communicator: Communicator = SingleProcess(),
                            afterEpoch: (Int, Float) throws -> Void = { _, _ in }) throws -> [Float] {
  let loop = TrainingLoop(stage: stage, loader: loader, schedule: schedule, network: model.backbone, parameters: model.parameters,
                          buffers: model.buffers, trainable: model.parameters, dropoutStream: "dropout by iteration", terms: 1,
                          state: state, progress: progress, log: log, communicator: communicator)
  return try loop.run(step: { batch, _ in
    let logits = model.forward(batch.images, training: true)
    let result = loss(logits: logits, targets: batch.targets)
    // Both losses average over images (and classes): this rank's part of the global mean.
    let share = Float(batch.count) / Float(batch.globalCount)
    return TrainingStep(loss: result.value, terms: [result.value * share]) {
      if share != 1 { scale(result.gradient, by: share) }
      model.backward(result.gradient)
    }
  }, record: { totals in
    let mean = totals.mean(0)
    return (mean, String(format: "loss %.4f", mean))
  }, afterEpoch: afterEpoch)
}

/// Multiplies every element of `t` by `factor`.
func scale(_ t: Tensor, by factor: Float) {
  for i in 0..<t.count { t.data[i] *= factor }
}
