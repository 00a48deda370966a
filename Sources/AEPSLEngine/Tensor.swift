import CDNNL
import Foundation

/// How a 4-D tensor's elements are ordered in memory.
///
/// Every public API takes and returns `.nchw`. Between the convolutional layers of a
/// network, activations stay in one of oneDNN's blocked layouts, `nChw16c`
/// ([N][C/16][H][W][16]) or `nChw8c` ([N][C/8][H][W][8]), so no reorder runs between layers.
/// The block is the CPU's vector width in floats (`preferred(channels:)`): oneDNN only runs
/// its AVX-512 kernels on 16-channel blocks, its AVX2 kernels on 8. Element-wise layers do
/// not care which layout they get.
public enum TensorLayout: Sendable, Equatable {
  case nchw
  case nChw8c
  case nChw16c

  /// Channels per block (1 for NCHW).
  public var blockSize: Int {
    switch self {
    case .nchw: return 1
    case .nChw8c: return 8
    case .nChw16c: return 16
    }
  }

  /// The layout activations with `channels` channels take between layers on this machine:
  /// blocks of the widest vector oneDNN uses here (16 floats with AVX-512, else 8), or NCHW
  /// when the channels do not fill whole blocks (a score head with 21 classes).
  /// `DNNL_MAX_CPU_ISA=AVX2` in the environment gives the AVX2 choice on any machine.
  public static func preferred(channels: Int) -> TensorLayout {
    if CPUVector.hasAVX512 && channels % 16 == 0 { return .nChw16c }
    return channels % 8 == 0 ? .nChw8c : .nchw
  }
}

/// A dense Float32 tensor with reference semantics. Storage is 64-byte aligned.
///
/// Layers own their outputs and caches; a tensor is shared, not copied, when passed on.
public final class Tensor: @unchecked Sendable {
  public let shape: [Int]
  public let count: Int
  public let layout: TensorLayout
  public let data: UnsafeMutablePointer<Float>
  /// Set on the input gradients engine layers return from `backward`: such a tensor goes to
  /// the layer below and nowhere else, so that layer may overwrite it (its own input
  /// gradient in place), one activation-sized buffer less at the peak of backward.
  var isDisposableGradient = false

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
    precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
    precondition(layout == .nchw || (shape.count == 4 && shape[1] % layout.blockSize == 0),
                 "\(layout) needs a 4-D shape with channels a multiple of \(layout.blockSize), got \(shape)")
    self.shape = shape
    self.layout = layout
    let count = shape.reduce(1, *)
    self.count = count
    let (raw, fresh) = TensorMemory.allocate(byteCount: max(count, 1) * 4)
    if zeroed && !fresh {
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

  deinit { TensorMemory.release(UnsafeMutableRawPointer(data), byteCount: max(count, 1) * 4) }

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

  /// This tensor in `layout`, and whether the caller may overwrite the result: a gradient
  /// handed down by a layer's backward, or a converted copy.
  func disposable(in layout: TensorLayout) -> (tensor: Tensor, disposable: Bool) {
    let t = to(layout)
    return (t, t !== self || isDisposableGradient)
  }

  /// Marks a gradient a layer returns from backward (see `isDisposableGradient`).
  func handedDown() -> Tensor {
    isDisposableGradient = true
    return self
  }

  /// This tensor in NCHW order (itself when it already is).
  public func nchw() -> Tensor { to(.nchw) }

  /// This tensor in the blocked nChw8c order (requires 4-D, channels a multiple of 8).
  public func blocked() -> Tensor { to(.nChw8c) }

  /// Converts to `layout` (a no-op when already there). Runs as a oneDNN reorder: parallel
  /// and vectorised, and oneDNN caches the primitive per shape.
  public func to(_ layout: TensorLayout) -> Tensor {
    guard layout != self.layout else { return self }
    let out = Tensor.uninitialized(shape: shape, layout: layout)
    let reorder = Primitive(reorderFrom: MemoryDesc(self), to: MemoryDesc(out))
    let (src, dst) = (DNNLMemory(self), DNNLMemory(out))
    reorder.execute([(DNNL_ARG_FROM, src.handle), (DNNL_ARG_TO, dst.handle)])
    return out
  }

  // MARK: Element access (slow; for tests and small work)

  /// Element at a row-major NCHW index, whatever the layout.
  public subscript(_ index: Int...) -> Float {
    get { data[offset(index)] }
    set { data[offset(index)] = newValue }
  }

  /// Memory offset of a logical index.
  public func offset(_ index: [Int]) -> Int {
    precondition(index.count == shape.count, "index \(index) for shape \(shape)")
    if layout != .nchw {
      let (b, c, h, w) = (layout.blockSize, shape[1], shape[2], shape[3])
      let (ni, ci, hi, wi) = (index[0], index[1], index[2], index[3])
      return ((ni * c + (ci / b) * b) * h * w) + (hi * w + wi) * b + ci % b
    }
    var o = 0
    for (i, d) in zip(index, shape) { o = o * d + i }
    return o
  }
}

extension Tensor: CustomStringConvertible {
  public var description: String { "Tensor(\(shape), \(layout))" }
}

/// Where tensors' storage comes from. A training step allocates and frees the same large
/// activations and gradients every iteration. From glibc's heap they fragment it (measured:
/// a 700 MiB heap for 280 MiB of live tensors in `tiny`'s training) and from fresh mmaps they
/// cost a page fault and a zeroed page per 4 KiB. So buffers of 1 MiB and more are mapped
/// once and, when freed, kept for the next request of the same size: a training loop reuses
/// its own buffers, and resident memory stays near the live peak. Idle buffers beyond the peak
/// of live bytes are unmapped, oldest first, so that changing shapes do not accumulate them.
/// Thread-safe (batch loaders build tensors on their own threads).
enum TensorMemory {
  static let poolThreshold = 1 << 20

  private static let lock = NSLock()
  nonisolated(unsafe) private static var idle: [Int: [UnsafeMutableRawPointer]] = [:]
  /// Idle buffers, oldest first (the eviction order).
  nonisolated(unsafe) private static var idleOrder: [(bytes: Int, pointer: UnsafeMutableRawPointer)] = []
  nonisolated(unsafe) private static var idleBytes = 0
  nonisolated(unsafe) private static var liveBytes = 0
  nonisolated(unsafe) private static var peakLiveBytes = 0

  private static func rounded(_ byteCount: Int) -> Int { (byteCount + 4095) & ~4095 }

  /// 64-byte aligned memory; `fresh` when it is known to be zero (a new mapping).
  static func allocate(byteCount: Int) -> (UnsafeMutableRawPointer, fresh: Bool) {
    guard byteCount >= poolThreshold else {
      return (UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64), false)
    }
    let bytes = rounded(byteCount)
    lock.lock()
    liveBytes += bytes
    peakLiveBytes = max(peakLiveBytes, liveBytes)
    if let p = idle[bytes]?.popLast() {
      idleBytes -= bytes
      idleOrder.remove(at: idleOrder.lastIndex { $0.pointer == p }!)
      lock.unlock()
      return (p, false)
    }
    lock.unlock()
    guard let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
      fatalError("out of memory mapping \(bytes) bytes for a tensor")
    }
    // Transparent huge pages (this kernel grants them on request only): 512 times fewer page
    // faults on first touch and fewer TLB misses in the kernels.
    _ = madvise(p, bytes, MADV_HUGEPAGE)
    return (p, true)
  }

  static func release(_ p: UnsafeMutableRawPointer, byteCount: Int) {
    guard byteCount >= poolThreshold else { p.deallocate(); return }
    let bytes = rounded(byteCount)
    var evict: [(bytes: Int, pointer: UnsafeMutableRawPointer)] = []
    lock.lock()
    liveBytes -= bytes
    idle[bytes, default: []].append(p)
    idleOrder.append((bytes, p))
    idleBytes += bytes
    while idleBytes > peakLiveBytes, let oldest = idleOrder.first {
      idleOrder.removeFirst()
      idle[oldest.bytes]!.remove(at: idle[oldest.bytes]!.firstIndex(of: oldest.pointer)!)
      idleBytes -= oldest.bytes
      evict.append(oldest)
    }
    lock.unlock()
    for e in evict { munmap(e.pointer, e.bytes) }
  }
}
