import CDNNL
#if canImport(Glibc)
import Glibc
#endif

// Thin wrappers over the oneDNN 2.6 C API. Every handle lives in a final class whose deinit
// releases it. Buffers are always ours: the C headers do not export DNNL_MEMORY_ALLOCATE.

/// A failed oneDNN call; names the operation.
public struct DNNLError: Error, CustomStringConvertible {
  public let operation: String
  public let status: dnnl_status_t
  public var description: String { "oneDNN \(operation) failed (status \(status.rawValue))" }
}

@inline(__always)
func dnnlCheck(_ status: dnnl_status_t, _ operation: @autoclosure () -> String) {
  if status != dnnl_success {
    // A failure here is a programming error (a descriptor we built is inconsistent), not a
    // user error: user input is validated before it reaches the engine.
    preconditionFailure(DNNLError(operation: operation(), status: status).description)
  }
}

/// The CPU engine and its stream, created once.
final class DNNLContext: @unchecked Sendable {
  static let shared = DNNLContext()
  let engine: dnnl_engine_t
  let stream: dnnl_stream_t

  private init() {
    var e: dnnl_engine_t?
    dnnlCheck(dnnl_engine_create(&e, dnnl_cpu, 0), "engine_create")
    engine = e!
    var s: dnnl_stream_t?
    dnnlCheck(dnnl_stream_create(&s, engine, dnnl_stream_default_flags.rawValue), "stream_create")
    stream = s!
  }

  deinit {
    dnnl_stream_destroy(stream)
    dnnl_engine_destroy(engine)
  }
}

/// The vector width oneDNN runs at on this CPU (its effective ISA, which the environment
/// variable DNNL_MAX_CPU_ISA can lower).
enum CPUVector {
  static let hasAVX512: Bool = {
    let avx512 = dnnl_cpu_isa_avx512_core.rawValue
    return dnnl_get_effective_cpu_isa().rawValue & avx512 == avx512
  }()
}

/// A memory descriptor (a value type in the C API).
struct MemoryDesc {
  var raw = dnnl_memory_desc_t()

  init(raw: dnnl_memory_desc_t) { self.raw = raw }

  init(_ dims: [Int], _ tag: dnnl_format_tag_t) {
    var d = dims.map { dnnl_dim_t($0) }
    dnnlCheck(dnnl_memory_desc_init_by_tag(&raw, Int32(d.count), &d, dnnl_f32, tag), "memory_desc_init \(dims)")
  }

  /// Plain or blocked activations of a tensor.
  init(_ t: Tensor) { self.init(t.shape, t.layout.dnnlTag(rank: t.shape.count)) }

  /// "Let the primitive choose".
  static func any(_ dims: [Int]) -> MemoryDesc { MemoryDesc(dims, dnnl_format_tag_any) }

  var dims: [Int] {
    withUnsafeBytes(of: raw.dims) { Array($0.bindMemory(to: dnnl_dim_t.self).prefix(Int(raw.ndims))).map { Int($0) } }
  }

  var byteCount: Int { withUnsafePointer(to: raw) { Int(dnnl_memory_desc_get_size($0)) } }

  func equals(_ other: MemoryDesc) -> Bool {
    withUnsafePointer(to: raw) { a in withUnsafePointer(to: other.raw) { b in dnnl_memory_desc_equal(a, b) != 0 } }
  }
}

extension TensorLayout {
  func dnnlTag(rank: Int) -> dnnl_format_tag_t {
    switch (self, rank) {
    case (.nChw8c, 4): return dnnl_nChw8c
    case (.nChw16c, 4): return dnnl_nChw16c
    case (_, 1): return dnnl_a
    case (_, 2): return dnnl_ab
    case (_, 3): return dnnl_abc
    case (_, 4): return dnnl_abcd
    default: preconditionFailure("no oneDNN tag for rank \(rank) \(self)")
    }
  }
}

/// A oneDNN memory object over a buffer we own.
final class DNNLMemory {
  let handle: dnnl_memory_t
  let desc: MemoryDesc

  init(_ desc: MemoryDesc, _ pointer: UnsafeMutableRawPointer) {
    var m: dnnl_memory_t?
    var d = desc.raw
    dnnlCheck(dnnl_memory_create(&m, &d, DNNLContext.shared.engine, pointer), "memory_create")
    handle = m!
    self.desc = desc
  }

  convenience init(_ t: Tensor) { self.init(MemoryDesc(t), UnsafeMutableRawPointer(t.data)) }

  func setPointer(_ p: UnsafeMutableRawPointer) {
    dnnlCheck(dnnl_memory_set_data_handle(handle, p), "memory_set_data_handle")
  }

  deinit { dnnl_memory_destroy(handle) }
}

/// An aligned byte buffer, for memory in a layout oneDNN chose (reordered weights,
/// workspaces).
final class RawBuffer {
  let pointer: UnsafeMutableRawPointer
  let byteCount: Int
  init(byteCount: Int) {
    self.byteCount = byteCount
    pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 64), alignment: 64)
    pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 64))
  }
  deinit { pointer.deallocate() }
}

/// A memory object with its own buffer, for a descriptor a primitive asked for.
final class OwnedMemory {
  let buffer: RawBuffer
  let memory: DNNLMemory
  init(_ desc: MemoryDesc) {
    buffer = RawBuffer(byteCount: desc.byteCount)
    memory = DNNLMemory(desc, buffer.pointer)
  }
  var handle: dnnl_memory_t { memory.handle }
  var floats: UnsafeMutablePointer<Float> { buffer.pointer.assumingMemoryBound(to: Float.self) }
}

/// A primitive with its descriptor. Build once per shape and cache.
final class Primitive {
  let pd: dnnl_primitive_desc_t
  let primitive: dnnl_primitive_t

  /// `opDesc` points at an operation descriptor (convolution, pooling, ...).
  init(_ opDesc: UnsafeRawPointer, attr: PrimitiveAttr? = nil, hint: Primitive? = nil, _ what: String) {
    var p: dnnl_primitive_desc_t?
    dnnlCheck(dnnl_primitive_desc_create(&p, opDesc, attr?.handle, DNNLContext.shared.engine, hint?.pd), "primitive_desc_create \(what)")
    pd = p!
    var prim: dnnl_primitive_t?
    dnnlCheck(dnnl_primitive_create(&prim, pd), "primitive_create \(what)")
    primitive = prim!
  }

  /// A reorder between two descriptors; with `accumulate`, it adds to the destination
  /// (a sum post-op) instead of overwriting it.
  init(reorderFrom src: MemoryDesc, to dst: MemoryDesc, accumulate: Bool = false) {
    var p: dnnl_primitive_desc_t?
    var s = src.raw, d = dst.raw
    let e = DNNLContext.shared.engine
    let attr = accumulate ? PrimitiveAttr.sum() : nil
    dnnlCheck(dnnl_reorder_primitive_desc_create(&p, &s, e, &d, e, attr?.handle), "reorder_primitive_desc_create")
    pd = p!
    var prim: dnnl_primitive_t?
    dnnlCheck(dnnl_primitive_create(&prim, pd), "primitive_create reorder")
    primitive = prim!
  }

  /// The implementation oneDNN chose ("jit:avx2", "gemm:jit", "ref:any", ...).
  var implementation: String {
    var p: UnsafePointer<CChar>?
    guard dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &p) == dnnl_success, let p else { return "" }
    return String(cString: p)
  }

  /// The descriptor the primitive chose for one of its memories.
  func md(_ what: dnnl_query_t, _ index: Int32 = 0) -> MemoryDesc {
    guard let p = dnnl_primitive_desc_query_md(pd, what, index) else {
      preconditionFailure("primitive has no memory \(what) \(index)")
    }
    return MemoryDesc(raw: p.pointee)
  }

  func execute(_ args: [(Int32, dnnl_memory_t)]) {
    var a = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1) }
    let s = DNNLContext.shared.stream
    dnnlCheck(dnnl_primitive_execute(primitive, s, Int32(a.count), &a), "primitive_execute")
    dnnlCheck(dnnl_stream_wait(s), "stream_wait")
  }

  deinit {
    dnnl_primitive_destroy(primitive)
    dnnl_primitive_desc_destroy(pd)
  }
}

/// Primitive attributes (post-ops).
final class PrimitiveAttr {
  let handle: dnnl_primitive_attr_t
  init() {
    var a: dnnl_primitive_attr_t?
    dnnlCheck(dnnl_primitive_attr_create(&a), "primitive_attr_create")
    handle = a!
  }
  /// An attribute that applies ReLU to the output.
  static func relu() -> PrimitiveAttr {
    let attr = PrimitiveAttr()
    var ops: dnnl_post_ops_t?
    dnnlCheck(dnnl_post_ops_create(&ops), "post_ops_create")
    dnnlCheck(dnnl_post_ops_append_eltwise(ops, 1, dnnl_eltwise_relu, 0, 0), "post_ops_append_eltwise")
    dnnlCheck(dnnl_primitive_attr_set_post_ops(attr.handle, ops), "attr_set_post_ops")
    dnnl_post_ops_destroy(ops)
    return attr
  }
  /// An attribute that adds the result to what the destination holds.
  static func sum() -> PrimitiveAttr {
    let attr = PrimitiveAttr()
    var ops: dnnl_post_ops_t?
    dnnlCheck(dnnl_post_ops_create(&ops), "post_ops_create")
    dnnlCheck(dnnl_post_ops_append_sum(ops, 1), "post_ops_append_sum")
    dnnlCheck(dnnl_primitive_attr_set_post_ops(attr.handle, ops), "attr_set_post_ops")
    dnnl_post_ops_destroy(ops)
    return attr
  }
  deinit { dnnl_primitive_attr_destroy(handle) }
}

/// One activation argument of a primitive created with format `any`, for a tensor kept in our
/// layout. Free when the primitive chose our layout (the usual case); otherwise reorders
/// through a scratch buffer owned here and reused every call. oneDNN 2.6 has, for example, no
/// blocked-layout kernel for fc6's dilation of 12, only a GEMM one over NCHW: letting it
/// choose, and paying two cheap reorders, beats its blocked reference loop by far.
final class FormatBridge {
  let ours: MemoryDesc
  let theirs: MemoryDesc
  private let reorder: Primitive?
  private let scratch: OwnedMemory?

  enum Direction { case intoPrimitive, outOfPrimitive }

  init(ours: MemoryDesc, theirs: MemoryDesc, _ direction: Direction) {
    self.ours = ours
    self.theirs = theirs
    if ours.equals(theirs) {
      reorder = nil
      scratch = nil
    } else {
      reorder = direction == .intoPrimitive ? Primitive(reorderFrom: ours, to: theirs) : Primitive(reorderFrom: theirs, to: ours)
      scratch = OwnedMemory(theirs)
    }
  }

  /// The primitive's view of `t` (in our layout): `t` itself, or a reordered copy.
  /// The returned memory (or `t`) must stay alive while the primitive runs.
  func input(_ t: Tensor) -> DNNLMemory {
    let mine = DNNLMemory(ours, UnsafeMutableRawPointer(t.data))
    guard let reorder, let scratch else { return mine }
    reorder.execute([(DNNL_ARG_FROM, mine.handle), (DNNL_ARG_TO, scratch.handle)])
    return scratch.memory
  }

  /// Runs `body` on memory in the primitive's format, then leaves the result in `t`.
  func output(_ t: Tensor, _ body: (dnnl_memory_t) -> Void) {
    let mine = DNNLMemory(ours, UnsafeMutableRawPointer(t.data))
    guard let reorder, let scratch else { body(mine.handle); return }
    body(scratch.handle)
    reorder.execute([(DNNL_ARG_FROM, scratch.handle), (DNNL_ARG_TO, mine.handle)])
  }
}

/// Element-wise ReLU kernels of oneDNN (vectorised and threaded, any layout). oneDNN caches
/// primitives, so building one per call costs microseconds.
enum Eltwise {
  /// dx = dy where y > 0, else 0, from ReLU's output y (the mask of a fused ReLU too:
  /// relu(z) > 0 exactly where z > 0).
  static func reluBackward(dy: Tensor, y: Tensor, into dx: Tensor) {
    var data = MemoryDesc(y).raw, diff = MemoryDesc(dy).raw
    var fd = dnnl_eltwise_desc_t(), bd = dnnl_eltwise_desc_t()
    dnnlCheck(dnnl_eltwise_forward_desc_init(&fd, dnnl_forward_training, dnnl_eltwise_relu_use_dst_for_bwd, &data, 0, 0),
              "relu forward desc")
    dnnlCheck(dnnl_eltwise_backward_desc_init(&bd, dnnl_eltwise_relu_use_dst_for_bwd, &diff, &data, 0, 0), "relu backward desc")
    let hint = Primitive(&fd, "relu forward")
    let prim = Primitive(&bd, hint: hint, "relu backward")
    let (yMem, dyMem, dxMem) = (DNNLMemory(y), DNNLMemory(dy), DNNLMemory(dx))
    prim.execute([(DNNL_ARG_DST, yMem.handle), (DNNL_ARG_DIFF_DST, dyMem.handle), (DNNL_ARG_DIFF_SRC, dxMem.handle)])
  }

  /// y = max(x, 0).
  static func relu(_ x: Tensor, into y: Tensor) {
    var data = MemoryDesc(x).raw
    var fd = dnnl_eltwise_desc_t()
    dnnlCheck(dnnl_eltwise_forward_desc_init(&fd, dnnl_forward_inference, dnnl_eltwise_relu, &data, 0, 0), "relu desc")
    let prim = Primitive(&fd, "relu")
    let (xMem, yMem) = (DNNLMemory(x), DNNLMemory(y))
    prim.execute([(DNNL_ARG_SRC, xMem.handle), (DNNL_ARG_DST, yMem.handle)])
  }
}

/// Keeps memory in a primitive's chosen layout in step with a plain source tensor, re-running
/// the reorder only when the source changed (`version`).
final class ReorderedCopy {
  let chosen: MemoryDesc
  private let reorder: Primitive?
  let target: OwnedMemory?
  private let source: DNNLMemory
  private var seenVersion = -1

  init(from plain: MemoryDesc, pointer: UnsafeMutablePointer<Float>, to chosen: MemoryDesc) {
    self.chosen = chosen
    source = DNNLMemory(plain, UnsafeMutableRawPointer(pointer))
    if plain.equals(chosen) {
      reorder = nil
      target = nil
    } else {
      reorder = Primitive(reorderFrom: plain, to: chosen)
      target = OwnedMemory(chosen)
    }
  }

  /// The memory to pass to the primitive, current for `version`.
  func memory(version: Int) -> dnnl_memory_t {
    guard let reorder, let target else { return source.handle }
    if version != seenVersion {
      reorder.execute([(DNNL_ARG_FROM, source.handle), (DNNL_ARG_TO, target.handle)])
      seenVersion = version
    }
    return target.handle
  }
}

/// Buffers for data that lives only during one layer call: weights in the layout a backward
/// primitive wants, and weight gradients before they are added to the parameter's. One buffer
/// per role, grown to the largest request and shared by every layer; per-layer buffers would
/// add up to two more copies of the network's weights (160 MiB for LargeFOV), and the
/// training step reorders them every step anyway (the weights change every step).
///
/// The buffers belong to the calling thread. A thread runs one layer call at a time, so its
/// layers may share them; but two models may train at once on two threads (tests of
/// different suites run in parallel, in one process), and with process-wide buffers one
/// training's weight gradients were overwritten by the other's between the primitive that
/// writes them and the reorder that adds them to the parameter (and a buffer grown by one
/// thread was freed under the other). A thread's buffers are freed when it ends.
enum Scratch {
  enum Role: Int { case weights = 0, weightGradient = 1 }

  private final class Buffers {
    var buffers: [RawBuffer?] = [nil, nil]
  }

  private static let key: pthread_key_t = {
    var key = pthread_key_t()
    let status = pthread_key_create(&key) { p in
      if let p { Unmanaged<Buffers>.fromOpaque(p).release() }
    }
    precondition(status == 0, "pthread_key_create failed (\(status))")
    return key
  }()

  /// This thread's buffers.
  private static var buffers: Buffers {
    if let p = pthread_getspecific(key) { return Unmanaged<Buffers>.fromOpaque(p).takeUnretainedValue() }
    let b = Buffers()
    pthread_setspecific(key, Unmanaged.passRetained(b).toOpaque())
    return b
  }

  /// Memory for `desc` in the role's buffer of this thread: valid until this thread's next
  /// request for that role.
  static func memory(_ role: Role, _ desc: MemoryDesc) -> DNNLMemory {
    let bytes = desc.byteCount
    let mine = buffers
    if (mine.buffers[role.rawValue]?.byteCount ?? -1) < bytes { mine.buffers[role.rawValue] = RawBuffer(byteCount: bytes) }
    return DNNLMemory(desc, mine.buffers[role.rawValue]!.pointer)
  }
}

/// A plain tensor reordered into the layout a primitive chose, into a `Scratch` buffer, for
/// one call (or the tensor itself when the layouts agree).
final class ScratchReorder {
  private let reorder: Primitive?
  private let plain: MemoryDesc
  private let chosen: MemoryDesc

  init(from plain: MemoryDesc, to chosen: MemoryDesc) {
    self.plain = plain
    self.chosen = chosen
    reorder = plain.equals(chosen) ? nil : Primitive(reorderFrom: plain, to: chosen)
  }

  /// The values at `pointer` (in the plain layout) in the chosen one. Keep the result, and
  /// the source, alive while the primitive runs.
  func memory(from pointer: UnsafeMutablePointer<Float>) -> DNNLMemory {
    let source = DNNLMemory(plain, UnsafeMutableRawPointer(pointer))
    guard let reorder else { return source }
    let m = Scratch.memory(.weights, chosen)
    reorder.execute([(DNNL_ARG_FROM, source.handle), (DNNL_ARG_TO, m.handle)])
    return m
  }
}
