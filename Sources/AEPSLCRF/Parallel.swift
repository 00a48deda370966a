import Dispatch
import Foundation

/// Splits 0..<count into at most `threads` contiguous parts of at least about `grain`
/// items and runs body(part, range) for each on its own thread with Dispatch's
/// concurrentPerform (inline when one part suffices). `part` indexes per-thread scratch.
@inline(__always)
func parallelRanges(_ count: Int, threads: Int, grain: Int = 1024, _ body: (Int, Range<Int>) -> Void) {
  guard count > 0 else { return }
  let parts = partCount(count, threads: threads, grain: grain)
  if parts == 1 { body(0, 0..<count); return }
  withoutActuallyEscaping(body) { body in
    let box = UncheckedSendable(body)
    DispatchQueue.concurrentPerform(iterations: parts) { part in
      let lower = count * part / parts
      let upper = count * (part + 1) / parts
      box.value(part, lower..<upper)
    }
  }
}

/// The number of parts `parallelRanges` makes.
@inline(__always)
func partCount(_ count: Int, threads: Int, grain: Int) -> Int {
  max(1, min(threads, (count + grain - 1) / grain))
}

/// Hands a closure that only touches disjoint memory to Dispatch's worker threads.
private struct UncheckedSendable<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}

/// The number of cores, the default thread count.
public var crfDefaultThreads: Int { ProcessInfo.processInfo.activeProcessorCount }

/// A 64-byte aligned, uninitialised buffer of `count` Float vectors, freed with the owner.
final class VectorBuffer: @unchecked Sendable {
  let count: Int
  let base: UnsafeMutablePointer<SIMD8<Float>>

  init(count: Int) {
    self.count = count
    let raw = UnsafeMutableRawPointer.allocate(
      byteCount: max(1, count) * MemoryLayout<SIMD8<Float>>.stride, alignment: 64)
    base = raw.bindMemory(to: SIMD8<Float>.self, capacity: max(1, count))
  }

  convenience init(count: Int, zeroed: Bool) {
    self.init(count: count)
    if zeroed { base.initialize(repeating: .zero, count: count) }
  }

  func zero() { base.update(repeating: .zero, count: count) }

  deinit { UnsafeMutableRawPointer(base).deallocate() }
}

