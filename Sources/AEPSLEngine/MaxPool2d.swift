import CDNNL

/// Max pooling through oneDNN.
///
///     input [N, C, H, W] -> output [N, C, Ho, Wo]
///     Ho = floor or ceil((H + 2 padding - kernel) / stride) + 1
///
/// `ceilMode` is Caffe's and DeepLab's rounding (PyTorch's `ceil_mode=True`): a last,
/// partial window is kept when it starts inside the input or its left padding.
public final class MaxPool2d: Layer {
  public let name: String
  public let kernelSize: Int, stride: Int, padding: Int
  public let ceilMode: Bool

  public init(name: String, kernelSize: Int, stride: Int, padding: Int = 0, ceilMode: Bool = false) {
    self.name = name
    self.kernelSize = kernelSize
    self.stride = stride
    self.padding = padding
    self.ceilMode = ceilMode
  }

  private func outputSize(_ h: Int) -> Int {
    let span = h + 2 * padding - kernelSize
    var o = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
    if ceilMode && (o - 1) * stride >= h + padding { o -= 1 }
    return o
  }

  public func outputShape(_ s: [Int]) -> [Int] { [s[0], s[1], outputSize(s[2]), outputSize(s[3])] }

  private final class Plan {
    let forward: Primitive
    let src: MemoryDesc, dst: MemoryDesc
    let workspace: OwnedMemory?
    var backward: Primitive?
    init(forward: Primitive, src: MemoryDesc, dst: MemoryDesc, workspace: OwnedMemory?) {
      self.forward = forward; self.src = src; self.dst = dst; self.workspace = workspace
    }
  }
  private var plans: [String: Plan] = [:]
  /// The input's shape and layout (max pooling's backward needs only the workspace, not the
  /// input's values, so the input is not kept alive).
  private var cache: (shape: [Int], layout: TensorLayout, plan: Plan)?

  private func geometry(_ s: [Int]) -> (strides: [dnnl_dim_t], kernel: [dnnl_dim_t], padL: [dnnl_dim_t], padR: [dnnl_dim_t]) {
    let o = outputShape(s)
    let padR = [(o[2] - 1) * stride + kernelSize - s[2] - padding, (o[3] - 1) * stride + kernelSize - s[3] - padding]
    return ([dnnl_dim_t(stride), dnnl_dim_t(stride)], [dnnl_dim_t(kernelSize), dnnl_dim_t(kernelSize)],
            [dnnl_dim_t(padding), dnnl_dim_t(padding)], padR.map { dnnl_dim_t($0) })
  }

  private func plan(_ x: Tensor, training: Bool) -> Plan {
    let key = "\(x.shape)\(x.layout)\(training)"
    if let p = plans[key] { return p }
    let src = MemoryDesc(x)
    let dst = MemoryDesc(outputShape(x.shape), x.layout.dnnlTag(rank: 4))
    var g = geometry(x.shape)
    var d = dnnl_pooling_desc_t()
    var s = src.raw, o = dst.raw
    dnnlCheck(dnnl_pooling_forward_desc_init(&d, training ? dnnl_forward_training : dnnl_forward_inference, dnnl_pooling_max,
                                             &s, &o, &g.strides, &g.kernel, &g.padL, &g.padR), "pool desc \(name)")
    let fwd = Primitive(&d, "pool \(name)")
    let ws = training ? OwnedMemory(fwd.md(dnnl_query_workspace_md)) : nil
    let p = Plan(forward: fwd, src: src, dst: dst, workspace: ws)
    plans[key] = p
    return p
  }

  public func forward(_ x: Tensor, training: Bool) -> Tensor {
    precondition(x.shape.count == 4, "\(name): input \(x.shape) is not 4-D")
    let p = plan(x, training: training)
    let y = Tensor.uninitialized(shape: outputShape(x.shape), layout: x.layout)
    let src = DNNLMemory(p.src, UnsafeMutableRawPointer(x.data))
    let dst = DNNLMemory(p.dst, UnsafeMutableRawPointer(y.data))
    var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, src.handle), (DNNL_ARG_DST, dst.handle)]
    if let ws = p.workspace { args.append((DNNL_ARG_WORKSPACE, ws.handle)) }
    p.forward.execute(args)
    if training { cache = (x.shape, x.layout, p) }
    return y
  }

  public func backward(_ dyIn: Tensor) -> Tensor {
    guard let (shape, layout, p) = cache else { preconditionFailure("\(name): backward without a training forward") }
    cache = nil  // backward runs once per forward
    let dy = dyIn.to(layout)
    if p.backward == nil {
      var g = geometry(shape)
      var d = dnnl_pooling_desc_t()
      var s = p.src.raw, o = p.dst.raw
      dnnlCheck(dnnl_pooling_backward_desc_init(&d, dnnl_pooling_max, &s, &o, &g.strides, &g.kernel, &g.padL, &g.padR),
                "pool bwd desc \(name)")
      p.backward = Primitive(&d, hint: p.forward, "pool bwd \(name)")
    }
    let dx = Tensor.uninitialized(shape: shape, layout: layout)
    let dyMem = DNNLMemory(p.dst, UnsafeMutableRawPointer(dy.data))
    let dxMem = DNNLMemory(p.src, UnsafeMutableRawPointer(dx.data))
    p.backward!.execute([(DNNL_ARG_DIFF_DST, dyMem.handle), (DNNL_ARG_DIFF_SRC, dxMem.handle),
                         (DNNL_ARG_WORKSPACE, p.workspace!.handle)])
    return dx.handedDown()
  }
}
