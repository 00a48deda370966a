import CDNNL

/// Batch normalisation over the channels of [N, C, H, W], through oneDNN, with an optional
/// fused ReLU. Training normalises with the batch's statistics and updates running ones
/// (PyTorch's convention: running = (1 - momentum) running + momentum batch, unbiased
/// variance); inference uses the running statistics.
///
///     input [N, C, H, W] -> output [N, C, H, W];  scale [C] (gamma), shift [C] (beta)
public final class BatchNorm2d: Layer {
  public let name: String
  public let channels: Int
  public let epsilon: Float
  public let momentum: Float
  public let fusedReLU: Bool
  public let scale: Parameter
  public let shift: Parameter
  public let runningMean: Tensor
  public let runningVariance: Tensor

  public init(name: String, channels: Int, epsilon: Float = 1e-5, momentum: Float = 0.1, fusedReLU: Bool = false) {
    self.name = name
    self.channels = channels
    self.epsilon = epsilon
    self.momentum = momentum
    self.fusedReLU = fusedReLU
    scale = Parameter(name: "\(name).weight", value: Tensor(shape: [channels], repeating: 1), decayMultiplier: 0)
    shift = Parameter(name: "\(name).bias", value: Tensor(shape: [channels]), decayMultiplier: 0)
    runningMean = Tensor(shape: [channels])
    runningVariance = Tensor(shape: [channels], repeating: 1)
  }

  public var parameters: [Parameter] { [scale, shift] }
  public var buffers: [Buffer] {
    [Buffer(name: "\(name).running_mean", value: runningMean), Buffer(name: "\(name).running_var", value: runningVariance)]
  }

  private final class Plan {
    let forward: Primitive
    let data: MemoryDesc
    let workspace: OwnedMemory?
    var backward: Primitive?
    init(forward: Primitive, data: MemoryDesc, workspace: OwnedMemory?) {
      self.forward = forward; self.data = data; self.workspace = workspace
    }
  }
  private var plans: [String: Plan] = [:]
  private var cache: (x: Tensor, plan: Plan, mean: Tensor, variance: Tensor)?

  private var baseFlags: UInt32 {
    dnnl_use_scale.rawValue | dnnl_use_shift.rawValue | (fusedReLU ? dnnl_fuse_norm_relu.rawValue : 0)
  }

  private func plan(_ x: Tensor, training: Bool) -> Plan {
    let key = "\(x.shape)\(x.layout)\(training)"
    if let p = plans[key] { return p }
    let data = MemoryDesc(x)
    var d = dnnl_batch_normalization_desc_t()
    var md = data.raw
    let flags = baseFlags | (training ? 0 : dnnl_use_global_stats.rawValue)
    dnnlCheck(dnnl_batch_normalization_forward_desc_init(&d, training ? dnnl_forward_training : dnnl_forward_inference,
                                                         &md, epsilon, flags), "bn desc \(name)")
    let fwd = Primitive(&d, "bn \(name)")
    let ws = training && fusedReLU ? OwnedMemory(fwd.md(dnnl_query_workspace_md)) : nil
    let p = Plan(forward: fwd, data: data, workspace: ws)
    plans[key] = p
    return p
  }

  private func vector(_ t: Tensor) -> DNNLMemory {
    DNNLMemory(MemoryDesc([channels], dnnl_a), UnsafeMutableRawPointer(t.data))
  }

  public func forward(_ x: Tensor, training: Bool) -> Tensor {
    precondition(x.shape.count == 4 && x.shape[1] == channels, "\(name): input \(x.shape), expected \(channels) channels")
    let p = plan(x, training: training)
    let y = Tensor.uninitialized(shape: x.shape, layout: x.layout)
    let src = DNNLMemory(p.data, UnsafeMutableRawPointer(x.data))
    let dst = DNNLMemory(p.data, UnsafeMutableRawPointer(y.data))
    let mean = training ? Tensor(shape: [channels]) : runningMean
    let variance = training ? Tensor(shape: [channels]) : runningVariance
    let (meanMem, varMem, scaleMem, shiftMem) = (vector(mean), vector(variance), vector(scale.value), vector(shift.value))
    var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, src.handle), (DNNL_ARG_DST, dst.handle),
                                          (DNNL_ARG_MEAN, meanMem.handle), (DNNL_ARG_VARIANCE, varMem.handle),
                                          (DNNL_ARG_SCALE, scaleMem.handle), (DNNL_ARG_SHIFT, shiftMem.handle)]
    if let ws = p.workspace { args.append((DNNL_ARG_WORKSPACE, ws.handle)) }
    p.forward.execute(args)
    if training {
      let n = Float(x.count / channels)
      let unbias = n > 1 ? n / (n - 1) : 1
      for c in 0..<channels {
        runningMean.data[c] = (1 - momentum) * runningMean.data[c] + momentum * mean.data[c]
        runningVariance.data[c] = (1 - momentum) * runningVariance.data[c] + momentum * variance.data[c] * unbias
      }
      cache = (x, p, mean, variance)
    }
    return y
  }

  public func backward(_ dyIn: Tensor) -> Tensor {
    guard let (x, p, mean, variance) = cache else { preconditionFailure("\(name): backward without a training forward") }
    cache = nil  // backward runs once per forward; frees the input as backward moves on
    let (dy, disposable) = dyIn.disposable(in: x.layout)
    if p.backward == nil {
      var d = dnnl_batch_normalization_desc_t()
      var md = p.data.raw, dmd = p.data.raw
      dnnlCheck(dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward, &dmd, &md, epsilon, baseFlags), "bn bwd desc \(name)")
      p.backward = Primitive(&d, hint: p.forward, "bn bwd \(name)")
    }
    // oneDNN's batch norm backward may write diff_src over diff_dst.
    let dx = disposable ? dy : Tensor.uninitialized(shape: x.shape, layout: x.layout)
    let dScale = Tensor(shape: [channels]), dShift = Tensor(shape: [channels])
    let src = DNNLMemory(p.data, UnsafeMutableRawPointer(x.data))
    let dyMem = DNNLMemory(p.data, UnsafeMutableRawPointer(dy.data))
    let dxMem = DNNLMemory(p.data, UnsafeMutableRawPointer(dx.data))
    let (meanMem, varMem, scaleMem, shiftMem) = (vector(mean), vector(variance), vector(scale.value), vector(shift.value))
    let (dScaleMem, dShiftMem) = (vector(dScale), vector(dShift))
    var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, src.handle), (DNNL_ARG_DIFF_DST, dyMem.handle),
                                          (DNNL_ARG_MEAN, meanMem.handle), (DNNL_ARG_VARIANCE, varMem.handle),
                                          (DNNL_ARG_SCALE, scaleMem.handle), (DNNL_ARG_SHIFT, shiftMem.handle),
                                          (DNNL_ARG_DIFF_SRC, dxMem.handle),
                                          (DNNL_ARG_DIFF_SCALE, dScaleMem.handle), (DNNL_ARG_DIFF_SHIFT, dShiftMem.handle)]
    if let ws = p.workspace { args.append((DNNL_ARG_WORKSPACE, ws.handle)) }
    p.backward!.execute(args)
    scale.grad.add(dScale)
    shift.grad.add(dShift)
    return dx.handedDown()
  }

  /// Folds the running statistics into a preceding convolution for inference:
  /// w' = w gamma / sqrt(var + eps), b' = (b - mean) gamma / sqrt(var + eps) + beta.
  public func fold(into conv: Conv2d) -> Conv2d {
    let folded = Conv2d(name: conv.name, inputChannels: conv.inputChannels, outputChannels: conv.outputChannels,
                        kernelSize: conv.kernelSize, stride: conv.stride, padding: conv.padding,
                        dilation: conv.dilation, bias: true, fusedReLU: fusedReLU)
    let perOut = conv.weight.value.count / channels
    for c in 0..<channels {
      let k = scale.value.data[c] / (runningVariance.data[c] + epsilon).squareRoot()
      for i in 0..<perOut { folded.weight.value.data[c * perOut + i] = conv.weight.value.data[c * perOut + i] * k }
      let b = conv.bias?.value.data[c] ?? 0
      folded.bias!.value.data[c] = (b - runningMean.data[c]) * k + shift.value.data[c]
    }
    folded.weight.version += 1
    return folded
  }
}
