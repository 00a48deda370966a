import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What one training step hands back to `TrainingLoop` after its forward pass and loss.
public struct TrainingStep {
  /// This rank's loss; a NaN or infinite one stops training before anything is updated.
  public var loss: Float
  /// The backward pass, run once the loss is known to be finite.
  public var backward: () -> Void
  /// Loss terms as this rank's part of the global batch mean: summed over the ranks with the
  /// gradients, then weighted by the global batch size into the epoch's sums.
  public var terms: [Float]
  /// Whole counts (e.g. pixels where two masks agree), summed over the ranks and the epoch.
  public var counts: [Float]

  public init(loss: Float, terms: [Float], counts: [Float] = [], backward: @escaping () -> Void) {
    self.loss = loss
    self.terms = terms
    self.counts = counts
    self.backward = backward
  }
}

/// The sums of one finished epoch: the loop's record of it, saved with the training state
/// bit for bit, so that a resumed run reports exactly what an uninterrupted one does.
public struct EpochTotals: Sendable, Equatable, Codable {
  public var epoch: Int
  /// Per loss term: the sum over the epoch of (term x global batch size).
  public var sums: [Double]
  public var counts: [Int]
  /// Images the epoch trained on (over every rank).
  public var images: Int
  /// The rate of the epoch's last iteration.
  public var learningRate: Float

  /// The epoch's mean of loss term `term` per image.
  public func mean(_ term: Int) -> Float { Float(sums[term] / Double(max(images, 1))) }

  enum CodingKeys: String, CodingKey { case epoch, sums, counts, images, learningRate }

  init(epoch: Int, sums: [Double], counts: [Int], images: Int, learningRate: Float) {
    (self.epoch, self.sums, self.counts, self.images, self.learningRate) = (epoch, sums, counts, images, learningRate)
  }

  // Floating-point values as bit patterns: JSON text need not give back the same bits.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    epoch = try c.decode(Int.self, forKey: .epoch)
    sums = try c.decode([UInt64].self, forKey: .sums).map(Double.init(bitPattern:))
    counts = try c.decode([Int].self, forKey: .counts)
    images = try c.decode(Int.self, forKey: .images)
    learningRate = Float(bitPattern: try c.decode(UInt32.self, forKey: .learningRate))
  }

  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(epoch, forKey: .epoch)
    try c.encode(sums.map(\.bitPattern), forKey: .sums)
    try c.encode(counts, forKey: .counts)
    try c.encode(images, forKey: .images)
    try c.encode(learningRate.bitPattern, forKey: .learningRate)
  }
}

/// Where a training run keeps its resumable state, and the settings it belongs to.
///
/// The state (parameters, batch-norm statistics, momentum, position, sums so far) is written
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

  static let kind = "training-state"
}

/// Where training stands: the epoch under way (1-based), the batches of it done, its
/// running sums, and the totals of the finished epochs.
struct TrainingPosition: Equatable, Codable {
  var epoch = 1
  var batch = 0
  var running: EpochTotals
  var finished: [EpochTotals] = []

  init(terms: Int, counts: Int) {
    running = EpochTotals(epoch: 1, sums: Array(repeating: 0, count: terms), counts: Array(repeating: 0, count: counts),
                          images: 0, learningRate: 0)
  }

  /// The next epoch, with the running sums cleared.
  mutating func startEpoch(_ e: Int) {
    (epoch, batch) = (e, 0)
    running = EpochTotals(epoch: e, sums: running.sums.map { _ in 0 }, counts: running.counts.map { _ in 0 }, images: 0,
                          learningRate: 0)
  }

  /// "epoch 2 of 5, 3 of 10 batches done": the same words when a run stops and resumes.
  func describe(epochs: Int, batches: Int) -> String {
    "epoch \(epoch) of \(epochs), \(batch) of \(batches) batches done"
  }

  func metadata(settings: String) throws -> [String: String] {
    let json = String(decoding: try JSONEncoder().encode(self), as: UTF8.self)
    return ["kind": TrainingStateFile.kind, "settings": settings, "epoch": "\(epoch)", "position": json]
  }

  /// The saved position when `metadata` is a state of these settings and shape; nil otherwise.
  static func from(_ metadata: [String: String], settings: String, terms: Int, counts: Int) -> TrainingPosition? {
    guard metadata["kind"] == TrainingStateFile.kind, metadata["settings"] == settings,
          let json = metadata["position"],
          let p = try? JSONDecoder().decode(TrainingPosition.self, from: Data(json.utf8)),
          p.running.sums.count == terms, p.running.counts.count == counts else { return nil }
    return p
  }
}

/// The training loop of every network the method trains (the erasing classifiers and the
/// segmenter): learning-rate schedule, dropout seeds, resumable state, interruption,
/// data-parallel sums, the stop on a non-finite loss or gradient, and progress. The caller
/// supplies the step (forward pass and loss) and what an epoch's totals become.
///
/// With a `communicator` of K ranks the loader serves this rank's share of each global
/// batch (`BatchLoader.Options.replica`), batch norm is synchronised, the gradients are
/// summed over the ranks before every update, rank 0 alone saves the state, and a stop
/// asked of any rank stops all of them after the same iteration.
public struct TrainingLoop {
  public var stage: String
  public var loader: BatchLoader
  public var schedule: TrainingSchedule
  /// The network whose batch norm is synchronised and whose dropout is reseeded per iteration.
  public var network: Sequential
  /// Everything the state file and the once-an-epoch broadcast cover.
  public var parameters: [Parameter]
  public var buffers: [Buffer]
  /// The parameters SGD updates (a subset of `parameters`, or all of them).
  public var trainable: [Parameter]
  /// Names the stream of dropout seeds (one per iteration).
  public var dropoutStream: String
  public var terms: Int
  public var counts: Int
  public var state: TrainingStateFile?
  public var progress: ProgressReporter.Options
  public var log: (String) -> Void
  public var communicator: Communicator
  /// The signal that asked this process to stop, or nil: `Interruption.requested` (tests
  /// give their own, so as not to stop every loop of the process).
  public var stopRequested: () -> Int32? = { Interruption.requested }

  public init(stage: String, loader: BatchLoader, schedule: TrainingSchedule, network: Sequential, parameters: [Parameter],
              buffers: [Buffer], trainable: [Parameter], dropoutStream: String, terms: Int, counts: Int = 0,
              state: TrainingStateFile?, progress: ProgressReporter.Options, log: @escaping (String) -> Void,
              communicator: Communicator = SingleProcess()) {
    precondition(loader.options.replicas == communicator.size && loader.options.replica == communicator.rank,
                 "\(stage): the loader must serve this rank's share")
    self.stage = stage
    self.loader = loader
    self.schedule = schedule
    self.network = network
    self.parameters = parameters
    self.buffers = buffers
    self.trainable = trainable
    self.dropoutStream = dropoutStream
    self.terms = terms
    self.counts = counts
    self.state = state
    self.progress = progress
    self.log = log
    self.communicator = communicator
  }

  /// Trains for `schedule.epochs` epochs (resuming from `state` when it holds a position of
  /// these settings) and returns `record` of every epoch's totals. `record` also gives the
  /// note of the epoch's last progress line; `afterEpoch` runs once the epoch is saved.
  public func run<Record>(step: (Batch, _ iteration: Int) throws -> TrainingStep,
                          record: (EpochTotals) -> (Record, note: String),
                          afterEpoch: (Int, Record) throws -> Void = { _, _ in }) throws -> [Record] {
    let sgd = (schedule.optimizer ?? .sgd).make(parameters: trainable, learningRate: schedule.learningRate,
                                                 momentum: schedule.momentum, weightDecay: schedule.weightDecay)
    // Summed with the gradients: the terms, the counts, and whether this rank was asked to stop.
    let parallel = DataParallel(communicator: communicator, parameters: sgd.parameters, extras: terms + counts + 1)
    try parallel.checkBatch(size: loader.options.batchSize, images: loader.source.count)
    parallel.synchronizeBatchNorm(network)
    defer { network.synchronizeBatchNorm(nil) }
    let perEpoch = loader.batchesPerEpoch
    let policy = LearningRateSchedule.poly(maxIterations: schedule.epochs * perEpoch, power: schedule.polyPower)
    let dropoutSeeds = SeededGenerator(seed: loader.options.seed).split(dropoutStream)
    var position = try resume(sgd: sgd, perEpoch: perEpoch)
    var stopAgreed = false
    while position.epoch <= schedule.epochs {
      let epoch = position.epoch
      let bar = ProgressReporter("\(stage) epoch \(epoch)/\(schedule.epochs)",
                                 total: min(loader.source.count, perEpoch * loader.options.batchSize), unit: "images",
                                 options: progress, resumedAt: position.running.images)
      let batches = loader.epoch(epoch, from: position.batch)
      while true {
        // Ranks stop together, at the iteration where any of them was asked to.
        if communicator.isDistributed ? stopAgreed : stopRequested() != nil {
          batches.cancel()
          // Asked of another rank: this one stops as if signalled too, and so do its later loops.
          if communicator.isDistributed && Interruption.requested == nil { Interruption.request(SIGTERM) }
          try save(position, sgd: sgd)
          let at = position.describe(epochs: schedule.epochs, batches: perEpoch)
          throw InterruptedError(signal: stopRequested() ?? Interruption.requested ?? SIGTERM, stage: stage,
                                 detail: state.map { "stopped at \(at); the training state is saved in \($0.url.path)" }
                                   ?? "stopped at \(at); nothing was saved")
        }
        guard let batch = try batches.next() else { break }
        let iteration = (epoch - 1) * perEpoch + batch.number
        sgd.learningRate = policy.rate(base: schedule.learningRate, iteration: iteration)
        // Dropout masks depend on the iteration only, so a resumed run draws the same ones.
        var dropoutSeed = dropoutSeeds.split("\(iteration)")
        network.reseedDropout(dropoutSeed.next(), firstSample: batch.firstInBatch)
        let result = try step(batch, iteration)
        guard result.loss.isFinite else { throw nonFinite("loss", epoch: epoch, iteration: iteration) }
        result.backward()
        let summed = parallel.sum(result.terms + result.counts + [stopRequested() != nil ? 1 : 0])
        stopAgreed = summed[terms + counts] > 0
        guard gradientsAreFinite(sgd.parameters) else { throw nonFinite("gradient", epoch: epoch, iteration: iteration) }
        sgd.step()
        position.batch = batch.number + 1
        for i in 0..<terms { position.running.sums[i] += Double(summed[i]) * Double(batch.globalCount) }
        for i in 0..<counts { position.running.counts[i] += Int(summed[terms + i]) }
        position.running.images += batch.globalCount
        let running = position.running.sums.reduce(0, +) / Double(max(position.running.images, 1))
        bar.advance(by: batch.globalCount, note: String(format: "loss %.4f", running))
      }
      var totals = position.running
      totals.learningRate = policy.rate(base: schedule.learningRate, iteration: epoch * perEpoch - 1)
      let (row, note) = record(totals)
      bar.finish(note: note)
      position.finished.append(totals)
      position.startEpoch(epoch + 1)
      // Every rank applies the same summed gradients; once an epoch, rank 0's weights, batch-norm
      // statistics and momentum (the state it saves) are copied to all, so they cannot drift.
      broadcast(parameters.map(\.value) + (buffers + sgd.state).map(\.value), from: communicator)
      try save(position, sgd: sgd)
      try afterEpoch(epoch, row)
    }
    if let report = parallel.report { log("\(stage): \(report)") }
    return position.finished.prefix(schedule.epochs).map { record($0).0 }
  }

  /// The saved position of these settings, loaded into the network and SGD, or the start.
  func resume(sgd: Optimizer, perEpoch: Int) throws -> TrainingPosition {
    let start = TrainingPosition(terms: terms, counts: counts)
    guard let state, FileManager.default.fileExists(atPath: state.url.path) else { return start }
    // The settings are compared before anything is loaded.
    guard let metadata = try? SafetensorsFile(contentsOf: state.url).metadata,
          let saved = TrainingPosition.from(metadata, settings: state.settings, terms: terms, counts: counts) else {
      log("\(stage): \(state.url.path) was saved with other settings (or is damaged); training from the start")
      return start
    }
    try Checkpoint.load(from: state.url, into: parameters, buffers: buffers + sgd.state)
    log("\(stage): resuming at \(saved.describe(epochs: schedule.epochs, batches: perEpoch)) from \(state.url.path)")
    return saved
  }

  func save(_ position: TrainingPosition, sgd: Optimizer) throws {
    guard let state, communicator.isRoot else { return }
    try Checkpoint.save(parameters: parameters, buffers: buffers + sgd.state, metadata: try position.metadata(settings: state.settings),
                        to: state.url)
  }

  func nonFinite(_ what: String, epoch: Int, iteration: Int) -> NonFiniteLossError {
    NonFiniteLossError(stage: stage, epoch: epoch, iteration: iteration, what: what, checkpoint: state?.url.path)
  }
}
