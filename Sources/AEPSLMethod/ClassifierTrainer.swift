import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

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
  /// The erasing classifiers' optimizer (nil: SGD; `momentum` is Adam's beta1). The
  /// segmenters' training reads only the fields above.
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

  /// This schedule for a loader of `batchesPerEpoch` batches: `epochs`, or more when that
  /// gives fewer than `minIterations` iterations.
  public func resolved(batchesPerEpoch: Int) -> TrainingSchedule {
    guard let minIterations, batchesPerEpoch > 0 else { return self }
    var out = self
    out.epochs = max(epochs, (minIterations + batchesPerEpoch - 1) / batchesPerEpoch)
    return out
  }
}

/// Where a training run keeps its resumable state, and the settings it belongs to.
///
/// The state (parameters, batch-norm statistics, momentum, position, loss so far) is written
/// atomically after every epoch and when a stop is asked for (`Interruption`). Data order,
/// augmentation and dropout are pure functions of (seed, epoch, iteration), so a run resumed
/// from any saved state ends with the same weights, bit for bit, as one never interrupted
/// (with the same number of threads).
public struct TrainingStateFile: Sendable {
  public var url: URL
  /// Everything that shapes training, as text: a state saved with other settings is not
  /// resumed (training starts over, and says so).
  public var settings: String

  public init(url: URL, settings: String) {
    self.url = url
    self.settings = settings
  }

  static let kind = "classifier-training-state"
}

/// Trains a classifier on multi-label targets and returns the mean loss of every epoch.
///
/// With `state`, resumes from a saved state and saves one after every epoch; on
/// `Interruption` it saves the state at the current iteration and throws `InterruptedError`.
/// Stops with `NonFiniteLossError` on a NaN or infinite loss or gradient, before the bad
/// update is applied, so the last saved state stays good.
///
/// Data-parallel with `communicator` of K ranks: the loader serves this rank's share of
/// each global batch (`BatchLoader.Options.replica`), batch norm is synchronised, the
/// gradients are summed over the ranks before every update, and rank 0 alone saves the
/// state. A stop asked of any rank stops all of them after the same iteration.
public func trainClassifier(_ model: Classifier, loader: BatchLoader, schedule: TrainingSchedule,
                            loss: ClassificationLoss, stage: String, progress: ProgressReporter.Options,
                            state: TrainingStateFile? = nil, log: (String) -> Void = { _ in },
                            communicator: Communicator = SingleProcess(),
                            afterEpoch: (Int, Float) throws -> Void = { _, _ in }) throws -> [Float] {
  precondition(loader.options.replicas == communicator.size && loader.options.replica == communicator.rank,
               "trainClassifier: the loader must serve this rank's share")
  let sgd = (schedule.optimizer ?? .sgd).make(parameters: model.parameters, learningRate: schedule.learningRate,
                                               momentum: schedule.momentum, weightDecay: schedule.weightDecay)
  // Summed with the gradients: this rank's part of the loss, and whether it was asked to stop.
  let parallel = DataParallel(communicator: communicator, parameters: sgd.parameters, extras: 2)
  try parallel.checkBatch(size: loader.options.batchSize, images: loader.source.count)
  parallel.synchronizeBatchNorm(model.backbone)
  defer { model.backbone.synchronizeBatchNorm(nil) }
  var stopAgreed = false
  let perEpoch = loader.batchesPerEpoch
  let total = schedule.epochs * perEpoch
  let policy = LearningRateSchedule.poly(maxIterations: total, power: schedule.polyPower)
  var position = TrainingPosition()
  if let state, let saved = try TrainingPosition.load(state, model: model, sgd: sgd, stage: stage, log: log) {
    position = saved
  }
  func save(_ p: TrainingPosition) throws {
    guard let state, communicator.isRoot else { return }
    try Checkpoint.save(parameters: model.parameters, buffers: model.buffers + sgd.state,
                        metadata: p.metadata(settings: state.settings), to: state.url)
  }
  let dropoutSeeds = SeededGenerator(seed: loader.options.seed).split("dropout by iteration")
  while position.epoch <= schedule.epochs {
    let epoch = position.epoch
    let bar = ProgressReporter("\(stage) epoch \(epoch)/\(schedule.epochs)", total: loader.source.count, unit: "images", options: progress)
    if position.count > 0 { bar.advance(by: position.count) }
    let batches = loader.epoch(epoch, from: position.batch)
    while true {
      // Ranks stop together, at the iteration where any of them was asked to.
      if communicator.isDistributed ? stopAgreed : Interruption.requested != nil {
        batches.cancel()
        if Interruption.requested == nil { Interruption.request(SIGTERM) }
        try save(position)
        try Interruption.check(stage: stage, detail: state.map {
          "the training state at epoch \(epoch), iteration \(position.iteration) is saved in \($0.url.path)"
        } ?? "nothing was saved")
      }
      guard let batch = try batches.next() else { break }
      let iteration = position.iteration
      sgd.learningRate = policy.rate(base: schedule.learningRate, iteration: iteration)
      // Dropout masks depend on the iteration only, so a resumed run draws the same ones.
      var dropoutSeed = dropoutSeeds.split("\(iteration)")
      model.backbone.reseedDropout(dropoutSeed.next(), firstSample: batch.firstInBatch)
      let logits = model.forward(batch.images, training: true)
      let result = loss(logits: logits, targets: batch.targets)
      guard result.value.isFinite else {
        throw NonFiniteLossError(stage: stage, epoch: epoch, iteration: iteration, what: "loss", checkpoint: state?.url.path)
      }
      // Both losses average over images (and classes): this rank's part of the global mean.
      let share = Float(batch.count) / Float(batch.globalCount)
      if share != 1 { scale(result.gradient, by: share) }
      model.backward(result.gradient)
      let summed = parallel.sum([result.value * share, Interruption.requested != nil ? 1 : 0])
      let value = summed[0]
      stopAgreed = summed[1] > 0
      guard gradientsAreFinite(sgd.parameters) else {
        throw NonFiniteLossError(stage: stage, epoch: epoch, iteration: iteration, what: "gradient", checkpoint: state?.url.path)
      }
      sgd.step()
      position.iteration += 1
      position.batch = batch.number + 1
      position.sum += Double(value) * Double(batch.globalCount)
      position.count += batch.globalCount
      bar.advance(by: batch.globalCount, note: String(format: "loss %.4f", position.sum / Double(max(position.count, 1))))
    }
    let mean = Float(position.sum / Double(max(position.count, 1)))
    bar.finish(note: String(format: "loss %.4f", mean))
    position.curve.append(mean)
    position.epoch += 1
    position.batch = 0
    position.sum = 0
    position.count = 0
    // Every rank applies the same summed gradients; once an epoch, rank 0's weights, batch-norm
    // statistics and momentum (the state it saves) are copied to all, so they cannot drift.
    broadcast(model.parameters.map(\.value) + (model.buffers + sgd.state).map(\.value), from: communicator)
    try save(position)
    try afterEpoch(epoch, mean)
  }
  if let report = parallel.report { log("\(stage): \(report)") }
  return position.curve
}

/// Multiplies every element of `t` by `factor`.
func scale(_ t: Tensor, by factor: Float) {
  for i in 0..<t.count { t.data[i] *= factor }
}

/// Where training stands: the epoch under way (1-based), the next batch in it, iterations
/// done, the running loss sum of the epoch, and the mean loss of finished epochs.
struct TrainingPosition: Equatable {
  var epoch = 1
  var batch = 0
  var iteration = 0
  var sum = 0.0
  var count = 0
  var curve: [Float] = []

  func metadata(settings: String) -> [String: String] {
    ["kind": TrainingStateFile.kind, "settings": settings, "epoch": "\(epoch)", "batch": "\(batch)",
     "iteration": "\(iteration)", "sum": "\(sum.bitPattern)", "count": "\(count)",
     "curve": curve.map { "\($0.bitPattern)" }.joined(separator: ",")]
  }

  /// Loads a saved state into `model` and `sgd` when it belongs to these settings; nil when
  /// there is none or it belongs to others (logged).
  static func load(_ state: TrainingStateFile, model: Classifier, sgd: Optimizer, stage: String,
                   log: (String) -> Void) throws -> TrainingPosition? {
    guard FileManager.default.fileExists(atPath: state.url.path) else { return nil }
    let file = try SafetensorsFile(contentsOf: state.url)
    let m = file.metadata
    guard m["kind"] == TrainingStateFile.kind, m["settings"] == state.settings else {
      log("\(stage): \(state.url.path) was saved with other settings; training from the start")
      return nil
    }
    guard let epoch = m["epoch"].flatMap(Int.init), let batch = m["batch"].flatMap(Int.init),
          let iteration = m["iteration"].flatMap(Int.init), let sum = m["sum"].flatMap(UInt64.init),
          let count = m["count"].flatMap(Int.init), let curveText = m["curve"] else {
      throw MethodError(file: state.url.path, problem: "is a training state without its position",
                        fix: "Delete it to train this step from the start.")
    }
    let curve = curveText.split(separator: ",").compactMap { UInt32($0).map(Float.init(bitPattern:)) }
    try Checkpoint.load(from: state.url, into: model.parameters, buffers: model.buffers + sgd.state)
    let position = TrainingPosition(epoch: epoch, batch: batch, iteration: iteration, sum: Double(bitPattern: sum),
                                    count: count, curve: curve)
    log("\(stage): resuming at epoch \(epoch), iteration \(iteration) from \(state.url.path)")
    return position
  }
}
