import AEPSLEngine
import AEPSLFiles
import Foundation

/// Data-parallel training: every rank holds the same weights, takes its contiguous share
/// of each global batch (`share`), and after backward the gradients of all ranks are summed
/// in one MPI_Allreduce on one contiguous buffer, so every rank applies the same update.
///
/// Each rank's loss gradient is scaled to be its part of the global batch's mean loss (for
/// a mean over images, by local / global images), so the sum is the gradient one process
/// would compute on the whole batch.
public final class DataParallel {
  public let communicator: Communicator
  public let parameters: [Parameter]
  /// Values summed with the gradients (loss terms, counts, the stop flag).
  public let extras: Int
  private let buffer: UnsafeMutableBufferPointer<Float>

  /// Seconds spent in the gradient allreduce so far (packing, and waiting for slower ranks,
  /// included), and since when.
  public private(set) var allreduceSeconds = 0.0
  private let started = Date()

  /// "gradient allreduce: x s of y s (z%)" for the log of a multi-rank job; nil for one process.
  public var report: String? {
    guard communicator.isDistributed else { return nil }
    let total = Date().timeIntervalSince(started)
    return String(format: "gradient allreduce over %d ranks: %.1f s of %.1f s (%.1f%%)", communicator.size,
                  allreduceSeconds, total, 100 * allreduceSeconds / max(total, 1e-9))
  }

  public init(communicator: Communicator, parameters: [Parameter], extras: Int) {
    self.communicator = communicator
    self.parameters = parameters
    self.extras = extras
    let count = communicator.isDistributed ? parameters.reduce(0) { $0 + $1.grad.count } + extras : 0
    buffer = .allocate(capacity: max(count, 1))
  }

  deinit { buffer.deallocate() }

  /// Floats one allreduce moves: every gradient and the extras.
  public var count: Int { parameters.reduce(0) { $0 + $1.grad.count } + extras }

  /// The contiguous share of a global batch of `count` samples that `rank` of `size` takes:
  /// sizes differ by at most one, in rank order, so the shares concatenate to the batch.
  public static func share(rank: Int, size: Int, count: Int) -> Range<Int> {
    (rank * count / size)..<((rank + 1) * count / size)
  }

  /// Sums every parameter gradient and `values` over the ranks (one allreduce) and returns
  /// the summed values. One process: returns `values` and touches nothing.
  public func sum(_ values: [Float]) -> [Float] {
    precondition(values.count == extras, "DataParallel: \(values.count) values, expected \(extras)")
    guard communicator.isDistributed else { return values }
    let start = Date()
    var o = 0
    for p in parameters {
      (buffer.baseAddress! + o).update(from: p.grad.data, count: p.grad.count)
      o += p.grad.count
    }
    for v in values {
      buffer[o] = v
      o += 1
    }
    communicator.allreduceSum(UnsafeMutableBufferPointer(rebasing: buffer[0..<o]))
    o = 0
    for p in parameters {
      p.grad.data.update(from: buffer.baseAddress! + o, count: p.grad.count)
      o += p.grad.count
    }
    let out = Array(buffer[o..<(o + extras)])
    allreduceSeconds += Date().timeIntervalSince(start)
    return out
  }

  /// Sync batch norm for `network` over this communicator (nothing for one process).
  public func synchronizeBatchNorm(_ network: Sequential) {
    guard communicator.isDistributed else { return }
    let c = communicator
    network.synchronizeBatchNorm { c.allreduceSum($0) }
  }

  /// Checks that the global batch gives every rank at least one sample (sync batch norm and
  /// the gradient sum need every rank in every step).
  public func checkBatch(size batch: Int, images: Int) throws {
    try Self.checkBatch(size: batch, images: images, ranks: communicator.size)
  }

  public static func checkBatch(size batch: Int, images: Int, ranks: Int) throws {
    let smallest = min(batch, images)
    guard smallest >= ranks else {
      throw AEPSLError(
        kind: .badArgument, problem: "a batch of \(smallest) images cannot be split across \(ranks) ranks",
        fix: "Give --batch-size of at least \(ranks) (the global batch; each rank takes its share), or fewer ranks")
    }
  }
}

/// A part of the images of a per-image stage (CAMs, masks, CRF, prediction): image j is in
/// shard i of K when j % K == i. Shards write disjoint files, each exactly what one process
/// writes for that image.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
  public let index: Int
  public let count: Int

  public init(index: Int, count: Int) {
    precondition(count >= 1 && index >= 0 && index < count, "shard \(index)/\(count)")
    self.index = index
    self.count = count
  }

  public static let whole = Shard(index: 0, count: 1)

  /// "i/K" with 0 <= i < K, as `--shard` takes it.
  public init?(parsing text: String) {
    let parts = text.split(separator: "/")
    guard parts.count == 2, let i = Int(parts[0]), let k = Int(parts[1]), k >= 1, i >= 0, i < k else { return nil }
    self.init(index: i, count: k)
  }

  public var isWhole: Bool { count == 1 }
  public func contains(_ position: Int) -> Bool { position % count == index }

  /// Shard `self` split again across the ranks of `communicator`: images j with
  /// j % K == i, of which rank r takes every size-th, are those with
  /// j % (K size) == i + K r.
  public func split(across communicator: Communicator) -> Shard {
    Shard(index: index + count * communicator.rank, count: count * communicator.size)
  }

  public var description: String { "\(index)/\(count)" }
}
