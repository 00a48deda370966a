import CDNNL
import Foundation

/// How a 4-D tensor's elements are ordered in memory.
///
/// Every public API takes and returns `.nchw`. Between the convolutional layers of a
/// network, activations whose channel count is a multiple of 8 stay in oneDNN's blocked
/// `nChw8c` layout ([N][C/8][H][W][8]), which its AVX2 kernels use natively, so no reorder
/// runs between layers. Element-wise layers do not care which layout they get.
public enum TensorLayout: Sendable, Equatable {
  case nchw
  case nChw8c
}

/// A dense Float32 tensor with reference semantics. Storage is 64-byte aligned.
///
/// Layers own their outputs and caches; a tensor is shared, not copied, when passed on.
public final class Tensor: @unchecked Sendable {
  public let shape: [Int]
  public let count: Int
  public let layout: TensorLayout
  public let data: UnsafeMutablePointer<Float>

  /// A zero-filled tensor.
  public convenience init(shape: [Int], layout: TensorLayout = .nchw) {
    self.init(shape: shape, layout: layout, zeroed: true)
  }

  /// A tensor whose elements are all about to be overwritten (a kernel's output): skipping
  /// the zero fill saves a full pass over memory per layer.
  static func uninitialized(shape: [Int], layout: TensorLayout = .nchw) -> Tensor {
    Tensor(shape: shape, layout: layout, zeroed: false)
  }

  private init(shape: [Int], layout: TensorLayout, zeroed: Bool) {
    _ = HeapTuning.applied
    precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
    precondition(layout == .nchw || (shape.count == 4 && shape[1] % 8 == 0),
                 "nChw8c needs a 4-D shape with channels a multiple of 8, got \(shape)")
    self.shape = shape
    self.layout = layout
    let count = shape.reduce(1, *)
    self.count = count
    let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
    if zeroed {
      raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
      self.data = raw.assumingMemoryBound(to: Float.self)
    } else {
      self.data = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }
  }

  public convenience init(shape: [Int], repeating value: Float) {
    self.init(shape: shape)
    fill(value)
  }

  /// A tensor holding `values` in row-major (NCHW) order.
  public convenience init(shape: [Int], values: [Float]) {
    self.init(shape: shape)
    precondition(values.count == count, "\(values.count) values for shape \(shape)")
    values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
  }

  deinit { UnsafeMutableRawPointer(data).deallocate() }

  public var buffer: UnsafeMutableBufferPointer<Float> { .init(start: data, count: count) }

  /// Element values in row-major NCHW order, whatever the layout.
  public var values: [Float] {
    // Keep the (possibly temporary) NCHW copy alive while its buffer is read.
    let t = nchw()
    return withExtendedLifetime(t) { Array(t.buffer) }
  }

  public func fill(_ value: Float) { data.update(repeating: value, count: count) }
  public func zero() { fill(0) }

  /// A tensor of the same shape and layout, zero-filled.
  public func zerosLike() -> Tensor { Tensor(shape: shape, layout: layout) }

  public func copy() -> Tensor {
    let t = Tensor(shape: shape, layout: layout)
    t.data.update(from: data, count: count)
    return t
  }

  /// The same elements with another shape of equal size (row-major NCHW only).
  public func reshaped(_ newShape: [Int]) -> Tensor {
    precondition(layout == .nchw, "reshape of a blocked tensor")
    precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
    let t = Tensor(shape: newShape)
    t.data.update(from: data, count: count)
    return t
  }

  /// `self += other`, element-wise (same shape and layout).
  public func add(_ other: Tensor) {
    precondition(shape == other.shape && layout == other.layout, "add: \(shape) vs \(other.shape)")
    for i in 0..<count { data[i] += other.data[i] }
  }

  // MARK: Layout conversion

  /// This tensor in NCHW order (itself when it already is).
  public func nchw() -> Tensor {
    guard layout == .nChw8c else { return self }
    let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
    let out = Tensor(shape: shape)
    let hw = h * w
    for ni in 0..<n {
      for cb in 0..<(c / 8) {
        let src = data + (ni * c + cb * 8) * hw
        for p in 0..<hw {
          for k in 0..<8 { out.data[(ni * c + cb * 8 + k) * hw + p] = src[p * 8 + k] }
        }
      }
    }
    return out
  }

  /// This tensor in the blocked nChw8c order (requires 4-D, channels a multiple of 8).
  public func blocked() -> Tensor {
    guard layout == .nchw else { return self }
    let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
    let out = Tensor(shape: shape, layout: .nChw8c)
    let hw = h * w
    for ni in 0..<n {
      for cb in 0..<(c / 8) {
        let dst = out.data + (ni * c + cb * 8) * hw
        for k in 0..<8 {
          let src = data + (ni * c + cb * 8 + k) * hw
          for p in 0..<hw { dst[p * 8 + k] = src[p] }
        }
      }
    }
    return out
  }

  /// Converts to `layout` (a no-op when already there).
  public func to(_ layout: TensorLayout) -> Tensor { layout == .nchw ? nchw() : blocked() }

  // MARK: Element access (slow; for tests and small work)

  /// Element at a row-major NCHW index, whatever the layout.
  public subscript(_ index: Int...) -> Float {
    get { data[offset(index)] }
    set { data[offset(index)] = newValue }
  }

  /// Memory offset of a logical index.
  public func offset(_ index: [Int]) -> Int {
    precondition(index.count == shape.count, "index \(index) for shape \(shape)")
    if layout == .nChw8c {
      let (c, h, w) = (shape[1], shape[2], shape[3])
      let (ni, ci, hi, wi) = (index[0], index[1], index[2], index[3])
      return ((ni * c + (ci / 8) * 8) * h * w) + (hi * w + wi) * 8 + ci % 8
    }
    var o = 0
    for (i, d) in zip(index, shape) { o = o * d + i }
    return o
  }
}

extension Tensor: CustomStringConvertible {
  public var description: String { "Tensor(\(shape), \(layout))" }
}

/// Activations are allocated and freed every iteration. glibc returns large blocks to the
/// kernel with munmap, so each new one costs a page fault per 4 KiB; keeping them in the
/// heap makes the next iteration reuse warm pages.
enum HeapTuning {
  static let applied: Bool = {
    _ = mallopt(M_MMAP_THRESHOLD, 1 << 30)
    _ = mallopt(M_TRIM_THRESHOLD, Int32.max)
    return true
  }()
}
