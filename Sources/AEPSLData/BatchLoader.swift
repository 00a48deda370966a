import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation

/// A batch for the engine.
public struct Batch: Sendable {
  /// The batch's number within its epoch.
  public let number: Int
  public let ids: [String]
  /// Positions in the `SampleSource`.
  public let indices: [Int]
  /// [N, 3, H, W], normalised (see `PixelNormalization`).
  public let images: Tensor
  /// [N, classes], 1 where the image carries the class.
  public let targets: Tensor
  /// 0-based class indices per image.
  public let labels: [[Int]]
  /// N * H * W training labels (0 background, 1...C, 255 ignore and padding), when asked for.
  public let labelMaps: [UInt8]?
  /// Where each image landed (scale, crop, flip; for a padded test batch, its real extent).
  public let placements: [Augmentation.Placement]
  /// Data-parallel training: the size of the whole batch across all ranks, and where this
  /// rank's share starts in it (`count` and 0 for one process).
  public let globalCount: Int
  public let firstInBatch: Int

  public var count: Int { ids.count }
  public var height: Int { images.shape[2] }
  public var width: Int { images.shape[3] }
}

/// Decodes and augments batches on background threads while the network computes.
///
/// Reproducible: the order of an epoch comes from `seed` and the epoch number, and each
/// sample's augmentation from `seed`, the epoch and the sample's index, never from which
/// thread got there first; batches are handed out in order. The same seed therefore gives
/// the same batches, bit for bit, with any number of workers.
public final class BatchLoader: Sendable {
  public struct Options: Sendable, Equatable {
    public var batchSize: Int
    public var augmentation: Augmentation
    public var normalization: PixelNormalization
    public var shuffle: Bool
    /// Leave out a last batch smaller than `batchSize` (batch norm dislikes tiny batches).
    public var dropLast: Bool
    /// Also deliver label maps (the source must supply them; 255 where it does not).
    public var labelMaps: Bool
    public var seed: UInt64
    /// Decoding threads.
    public var workers: Int
    /// Batches decoded ahead of the one the network is using.
    public var prefetch: Int
    /// Data-parallel training: this rank (0 ..< replicas) decodes and serves only its
    /// contiguous share of every batch (`DataParallel.share`); order and augmentation are
    /// those of one process, so the shares of all ranks make up its batches exactly.
    public var replica = 0
    public var replicas = 1

    public init(batchSize: Int, augmentation: Augmentation = .none, normalization: PixelNormalization = .imageNet,
                shuffle: Bool = false, dropLast: Bool = false, labelMaps: Bool = false, seed: UInt64 = 0,
                workers: Int = 2, prefetch: Int = 3) {
      precondition(batchSize >= 1 && workers >= 1 && prefetch >= 1,
                   "BatchLoader: batch size, workers and prefetch must be at least 1")
      self.batchSize = batchSize; self.augmentation = augmentation; self.normalization = normalization
      self.shuffle = shuffle; self.dropLast = dropLast; self.labelMaps = labelMaps; self.seed = seed
      self.workers = workers; self.prefetch = prefetch
    }
  }

  public let source: SampleSource
  public let classes: Int
  public let options: Options

  public init(source: SampleSource, classes: Int, options: Options) {
    self.source = source
    self.classes = classes
    self.options = options
  }

  public var batchesPerEpoch: Int {
    options.dropLast ? source.count / options.batchSize
      : (source.count + options.batchSize - 1) / options.batchSize
  }

  /// The sample indices of epoch `epoch` in the order they are served.
  public func order(epoch: Int) -> [Int] {
    var order = Array(0..<source.count)
    guard options.shuffle else { return order }
    // Fisher-Yates with our own generator: the standard library's shuffle may change.
    var rng = SeededGenerator(seed: options.seed).split("order \(epoch)")
    if order.count > 1 {
      for i in stride(from: order.count - 1, to: 0, by: -1) {
        let j = Int(rng.next() % UInt64(i + 1))
        order.swapAt(i, j)
      }
    }
    return order
  }

  /// Starts decoding epoch `epoch` and returns its batches. Dropping the result stops the
  /// workers. `firstBatch` > 0 resumes an interrupted epoch: the batches before it are
  /// neither decoded nor served, and the rest are exactly those of an uninterrupted epoch.
  public func epoch(_ epoch: Int, from firstBatch: Int = 0) -> EpochBatches {
    let order = order(epoch: epoch)
    let size = options.batchSize
    let first = min(max(firstBatch, 0), batchesPerEpoch)
    let whole = (first..<batchesPerEpoch).map { b in Array(order[(b * size)..<min(order.count, (b + 1) * size)]) }
    // A rank's share: the same split as DataParallel.share (sizes differ by at most one).
    let (r, k) = (options.replica, options.replicas)
    let plan = whole.map { batch in Array(batch[(r * batch.count / k)..<((r + 1) * batch.count / k)]) }
    let pipeline = Pipeline(loader: self, epoch: epoch, plan: plan, firstBatch: first,
                            globalCounts: whole.map(\.count), offsets: whole.map { r * $0.count / k })
    for worker in 0..<min(options.workers, max(1, source.count)) {
      let thread = Thread { pipeline.work() }
      thread.name = "aepsl-loader-\(worker)"
      thread.start()
    }
    return EpochBatches(pipeline: pipeline)
  }

  /// Decodes and augments one sample into its slot: called on worker threads.
  fileprivate func prepare(sample index: Int, epoch: Int) throws -> (Sample, Augmentation.Placement) {
    var sample = try source.load(index)
    if sample.image.channels != 3 { sample.image = sample.image.converted(toChannels: 3) }
    if let map = sample.labelMap, map.width != sample.image.width || map.height != sample.image.height {
      throw AEPSLError(kind: .invalidData, problem: "the label map of '\(sample.id)' is \(map.width)x\(map.height) "
                         + "but its image is \(sample.image.width)x\(sample.image.height)",
                         fix: "Regenerate the masks from these images")
    }
    var rng = SeededGenerator(seed: options.seed).split("augment \(epoch) \(index)")
    do {
      let placement = try options.augmentation.placement(width: sample.image.width, height: sample.image.height, rng: &rng)
      return (sample, placement)
    } catch var error as AEPSLError {
      error.problem = "image '\(sample.id)': " + error.problem
      throw error
    }
  }
}

/// The batches of one epoch, in order: `while let batch = try batches.next() { ... }`.
public final class EpochBatches: @unchecked Sendable {
  fileprivate let pipeline: Pipeline

  fileprivate init(pipeline: Pipeline) { self.pipeline = pipeline }

  deinit { pipeline.cancel() }

  public var count: Int { pipeline.plan.count }

  /// The next batch, waiting for it if the workers are behind; nil after the last. The
  /// first error a worker met (a missing or corrupt image) is thrown here.
  public func next() throws -> Batch? { try pipeline.next() }

  /// Seconds `next()` has spent waiting for workers so far.
  public var waitSeconds: Double { pipeline.waited }

  /// Stops the workers; `next()` then returns nil.
  public func cancel() { pipeline.cancel() }
}

/// Shared state of one epoch: a queue of (batch, slot) tasks, claimed in order by workers
/// up to `prefetch` batches ahead of the consumer.
private final class Pipeline: @unchecked Sendable {
  final class Builder {
    let count: Int
    var remaining: Int
    var images: Tensor?
    /// `count` label planes when the output size is fixed; slots are written concurrently.
    var labelBuffer: UnsafeMutablePointer<UInt8>?
    var labelBufferCount = 0
    var samples: [Sample?]
    var placements: [Augmentation.Placement?]
    /// Per-sample buffers when the output size is only known after decoding.
    var loose: [(pixels: [Float], labels: [UInt8]?)?]
    var batch: Batch?

    init(count: Int) {
      self.count = count
      remaining = count
      samples = Array(repeating: nil, count: count)
      placements = Array(repeating: nil, count: count)
      loose = Array(repeating: nil, count: count)
    }

    deinit { labelBuffer?.deallocate() }
  }

  let loader: BatchLoader
  let epoch: Int
  let plan: [[Int]]
  let condition = NSCondition()
  var nextTask = 0  // flat index over (batch, slot)
  var taskBatch: [Int] = []
  var taskSlot: [Int] = []
  var consumed = 0
  var builders: [Int: Builder] = [:]
  var failure: Error?
  var cancelled = false
  var waited = 0.0

  /// The epoch's number of plan[0] (non-zero when an interrupted epoch resumes).
  let firstBatch: Int

  /// Per batch: the size of the whole batch and where this rank's share starts in it.
  let globalCounts: [Int]
  let offsets: [Int]

  init(loader: BatchLoader, epoch: Int, plan: [[Int]], firstBatch: Int = 0, globalCounts: [Int], offsets: [Int]) {
    self.loader = loader
    self.epoch = epoch
    self.plan = plan
    self.firstBatch = firstBatch
    self.globalCounts = globalCounts
    self.offsets = offsets
    for (b, indices) in plan.enumerated() {
      for s in 0..<indices.count {
        taskBatch.append(b)
        taskSlot.append(s)
      }
    }
  }

  func cancel() {
    condition.lock()
    cancelled = true
    condition.broadcast()
    condition.unlock()
  }

  /// A worker's loop: claim the next task within the prefetch window, prepare it, store it.
  func work() {
    let options = loader.options
    let fixedSide = options.augmentation.crop
    while true {
      condition.lock()
      while !cancelled && failure == nil && nextTask < taskBatch.count
              && taskBatch[nextTask] >= consumed + options.prefetch {
        condition.wait()
      }
      if cancelled || failure != nil || nextTask >= taskBatch.count {
        condition.unlock()
        return
      }
      let task = nextTask
      nextTask += 1
      let b = taskBatch[task], slot = taskSlot[task]
      let builder: Builder
      if let existing = builders[b] {
        builder = existing
      } else {
        builder = Builder(count: plan[b].count)
        if let side = fixedSide {
          builder.images = Tensor(shape: [builder.count, 3, side, side])
          if options.labelMaps {
            builder.labelBufferCount = builder.count * side * side
            builder.labelBuffer = .allocate(capacity: builder.labelBufferCount)
          }
        }
        builders[b] = builder
      }
      condition.unlock()

      let index = plan[b][slot]
      do {
        let (sample, placement) = try loader.prepare(sample: index, epoch: epoch)
        let outW = placement.width, outH = placement.height, plane = outW * outH
        if let images = builder.images {
          // Slots are disjoint: writing without the lock is safe.
          let pixels = images.data + slot * 3 * plane
          if let labelBuffer = builder.labelBuffer {
            let labelBase = labelBuffer + slot * plane
            Augmentation.apply(placement, image: sample.image, labelMap: sample.labelMap,
                               normalization: options.normalization, pixels: pixels, labels: labelBase)
          } else {
            Augmentation.apply(placement, image: sample.image, labelMap: nil,
                               normalization: options.normalization, pixels: pixels, labels: nil)
          }
          finish(b, slot: slot, builder: builder, sample: sample, placement: placement, loose: nil)
        } else {
          var pixels = [Float](repeating: 0, count: 3 * plane)
          var labels: [UInt8]? = options.labelMaps ? [UInt8](repeating: 0, count: plane) : nil
          pixels.withUnsafeMutableBufferPointer { p in
            if labels != nil {
              labels!.withUnsafeMutableBufferPointer { l in
                Augmentation.apply(placement, image: sample.image, labelMap: sample.labelMap,
                                   normalization: options.normalization, pixels: p.baseAddress!, labels: l.baseAddress!)
              }
            } else {
              Augmentation.apply(placement, image: sample.image, labelMap: nil,
                                 normalization: options.normalization, pixels: p.baseAddress!, labels: nil)
            }
          }
          finish(b, slot: slot, builder: builder, sample: sample, placement: placement, loose: (pixels, labels))
        }
      } catch {
        condition.lock()
        if failure == nil { failure = error }
        condition.broadcast()
        condition.unlock()
        return
      }
    }
  }

  private func finish(_ b: Int, slot: Int, builder: Builder, sample: Sample, placement: Augmentation.Placement,
                      loose: (pixels: [Float], labels: [UInt8]?)?) {
    var light = sample
    light.image = Image(width: 1, height: 1, channels: 3)  // keep ids and labels, drop pixels
    light.labelMap = nil
    condition.lock()
    builder.samples[slot] = light
    builder.placements[slot] = placement
    builder.loose[slot] = loose
    builder.remaining -= 1
    let complete = builder.remaining == 0
    condition.unlock()
    guard complete else { return }
    do {
      let batch = try assemble(b, builder)
      condition.lock()
      builder.batch = batch
      condition.broadcast()
      condition.unlock()
    } catch {
      condition.lock()
      if failure == nil { failure = error }
      condition.broadcast()
      condition.unlock()
    }
  }

  /// Runs once per batch, on the worker that finished its last sample.
  private func assemble(_ b: Int, _ builder: Builder) throws -> Batch {
    let options = loader.options
    let samples = builder.samples.map { $0! }
    let placements = builder.placements.map { $0! }
    var images: Tensor
    var labelMaps: [UInt8]?
    if let fixed = builder.images {
      images = fixed
      if let buffer = builder.labelBuffer {
        labelMaps = Array(UnsafeBufferPointer(start: buffer, count: builder.labelBufferCount))
      }
    } else {
      let w = placements[0].width, h = placements[0].height, plane = w * h
      if let odd = placements.firstIndex(where: { $0.width != w || $0.height != h }) {
        throw AEPSLError(
          kind: .badArgument,
          problem: "one batch mixes image sizes ('\(samples[0].id)' is \(w)x\(h), '\(samples[odd].id)' is "
            + "\(placements[odd].width)x\(placements[odd].height))",
          fix: "Use batch size 1, a crop, or padding to a fixed size for images of different sizes")
      }
      images = Tensor(shape: [samples.count, 3, h, w])
      if options.labelMaps { labelMaps = [UInt8](repeating: 0, count: samples.count * plane) }
      for (slot, item) in builder.loose.enumerated() {
        let item = item!
        item.pixels.withUnsafeBufferPointer { (images.data + slot * 3 * plane).update(from: $0.baseAddress!, count: 3 * plane) }
        if let labels = item.labels { labelMaps!.replaceSubrange((slot * plane)..<((slot + 1) * plane), with: labels) }
      }
    }
    let classes = loader.classes
    let targets = Tensor(shape: [samples.count, classes], repeating: 0)
    for (n, sample) in samples.enumerated() {
      for c in sample.labels {
        guard c >= 0 && c < classes else {
          throw AEPSLError(kind: .badArgument, problem: "image '\(sample.id)' has class index \(c), outside 0..<\(classes)",
                             fix: "Check the class list")
        }
        targets.data[n * classes + c] = 1
      }
    }
    return Batch(number: firstBatch + b, ids: samples.map(\.id), indices: plan[b], images: images, targets: targets,
                 labels: samples.map(\.labels), labelMaps: labelMaps, placements: placements,
                 globalCount: globalCounts[b], firstInBatch: offsets[b])
  }

  func next() throws -> Batch? {
    condition.lock()
    defer { condition.unlock() }
    guard consumed < plan.count, !cancelled else { return nil }
    var start: Date?
    while builders[consumed]?.batch == nil && failure == nil && !cancelled {
      if start == nil { start = Date() }
      condition.wait()
    }
    if let start { waited += Date().timeIntervalSince(start) }
    if let failure {
      cancelled = true
      condition.broadcast()
      throw failure
    }
    guard let batch = builders.removeValue(forKey: consumed)?.batch else { return nil }
    consumed += 1
    condition.broadcast()
    return batch
  }
}
