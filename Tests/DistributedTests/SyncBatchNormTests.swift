import AEPSLEngine
import Foundation
import Testing

/// Ranks as threads of this process: `sum` adds each rank's vector and hands every rank the
/// total, like MPI_Allreduce (for testing sync batch norm without MPI).
final class ThreadGroup: @unchecked Sendable {
  let size: Int
  private let condition = NSCondition()
  private var pending: [Double] = []
  private var arrived = 0
  private var round = 0
  private var totals: [Int: (values: [Double], readers: Int)] = [:]

  init(size: Int) { self.size = size }

  func sum(_ buffer: UnsafeMutableBufferPointer<Double>) {
    condition.lock()
    defer { condition.unlock() }
    let mine = round
    if arrived == 0 { pending = [Double](repeating: 0, count: buffer.count) }
    for i in 0..<buffer.count { pending[i] += buffer[i] }
    arrived += 1
    if arrived == size {
      totals[mine] = (pending, 0)
      arrived = 0
      round += 1
      condition.broadcast()
    }
    while totals[mine] == nil { condition.wait() }
    for i in 0..<buffer.count { buffer[i] = totals[mine]!.values[i] }
    totals[mine]!.readers += 1
    if totals[mine]!.readers == size { totals[mine] = nil }
  }
}

@Suite("Sync batch norm")
struct SyncBatchNormTests {
  static func random(_ shape: [Int], seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    let t = Tensor(shape: shape)
    for i in 0..<t.count { t.data[i] = rng.nextNormal() * 2 + 0.5 }
    return t
  }

  /// Rows [from, to) of the batch dimension of an NCHW tensor.
  static func slice(_ t: Tensor, _ range: Range<Int>) -> Tensor {
    let per = t.count / t.shape[0]
    var shape = t.shape
    shape[0] = range.count
    let out = Tensor(shape: shape)
    out.data.update(from: t.data + range.lowerBound * per, count: range.count * per)
    return out
  }

  /// Two ranks with half a batch each, statistics summed across them, against one layer on
  /// the whole batch: the same output, input gradient, parameter gradients (summed over
  /// the ranks) and running statistics, in NCHW and in the blocked layout.
  @Test(arguments: [TensorLayout.nchw, .nChw8c])
  func twoRanksWithSyncBatchNormMatchOneLayerOnTheWholeBatch(layout: TensorLayout) throws {
    let (n, c) = (5, 16)
    let x = Self.random([n, c, 6, 7], seed: 1), dy = Self.random([n, c, 6, 7], seed: 2)
    func makeLayer() -> BatchNorm2d {
      let bn = BatchNorm2d(name: "bn", channels: c, fusedReLU: true)
      for i in 0..<c { bn.scale.value.data[i] = 0.5 + Float(i) / 10; bn.shift.value.data[i] = Float(i % 3) - 1 }
      return bn
    }
    let whole = makeLayer()
    let y = whole.forward(x.to(layout), training: true).nchw()
    let dx = whole.backward(dy.to(layout)).nchw()

    let group = ThreadGroup(size: 2)
    let shares = [0..<2, 2..<5]
    /// Each rank (thread) has its own layer; results are stored under the lock.
    final class Ranks: @unchecked Sendable {
      var layers: [BatchNorm2d] = []
      var outputs: [Tensor?] = [nil, nil], gradients: [Tensor?] = [nil, nil]
      let lock = NSLock()
    }
    let ranks = Ranks()
    ranks.layers = [makeLayer(), makeLayer()]
    DispatchQueue.concurrentPerform(iterations: 2) { r in
      let bn = ranks.layers[r]
      bn.crossReplicaSum = { group.sum($0) }
      let out = bn.forward(Self.slice(x, shares[r]).to(layout), training: true).nchw()
      let grad = bn.backward(Self.slice(dy, shares[r]).to(layout)).nchw()
      ranks.lock.lock()
      ranks.outputs[r] = out
      ranks.gradients[r] = grad
      ranks.lock.unlock()
    }
    let (layers, outputs, gradients) = (ranks.layers, ranks.outputs, ranks.gradients)
    var worst: Float = 0
    for r in 0..<2 {
      let (ys, dxs) = (Self.slice(y, shares[r]), Self.slice(dx, shares[r]))
      let (o, g) = (try #require(outputs[r]), try #require(gradients[r]))
      for i in 0..<o.count { worst = max(worst, abs(o.data[i] - ys.data[i]), abs(g.data[i] - dxs.data[i])) }
    }
    for i in 0..<c {
      worst = max(worst, abs(layers[0].scale.grad.data[i] + layers[1].scale.grad.data[i] - whole.scale.grad.data[i]))
      worst = max(worst, abs(layers[0].shift.grad.data[i] + layers[1].shift.grad.data[i] - whole.shift.grad.data[i]))
      for l in layers {
        worst = max(worst, abs(l.runningMean.data[i] - whole.runningMean.data[i]),
                    abs(l.runningVariance.data[i] - whole.runningVariance.data[i]))
      }
    }
    #expect(worst < 2e-4, "largest difference \(worst)")
    // Without the sum, each rank's statistics are its own and the results differ.
    let alone = makeLayer()
    let own = alone.forward(Self.slice(x, 0..<2).to(layout), training: true).nchw()
    let first = Self.slice(y, 0..<2)
    #expect((0..<own.count).contains { abs(own.data[$0] - first.data[$0]) > 1e-2 })
  }
}
