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
  /// Sync batch norm for data-parallel training: adds Double vectors across the ranks in
  /// place. When set, training normalises with the statistics of the whole batch of every
  /// rank and backward reduces the two gradient sums the statistics need, so that K ranks
  /// compute what one process would on the whole batch. nil: this process's batch alone.
  public var crossReplicaSum: (@Sendable (UnsafeMutableBufferPointer<Double>) -> Void)?

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
  private var cache: (x: Tensor, plan: Plan, mean: Tensor, variance: Tensor, elements: Int, synced: Bool)?

  private var baseFlags: UInt32 {
    dnnl_use_scale.rawValue | dnnl_use_shift.rawValue | (fusedReLU ? dnnl_fuse_norm_relu.rawValue : 0)
  }

  /// `givenStatistics`: training that normalises with statistics handed in (sync batch
  /// norm) rather than the batch's own.
  private func plan(_ x: Tensor, training: Bool, givenStatistics: Bool = false) -> Plan {
    let key = "\(x.shape)\(x.layout)\(training)\(givenStatistics)"
    if let p = plans[key] { return p }
    let data = MemoryDesc(x)
    var d = dnnl_batch_normalization_desc_t()
    var md = data.raw
    let flags = baseFlags | (training && !givenStatistics ? 0 : dnnl_use_global_stats.rawValue)
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
    if training, let sum = crossReplicaSum { return synchronizedForward(x, sum: sum) }
    let p = plan(x, training: training)
    let mean = training ? Tensor(shape: [channels]) : runningMean
    let variance = training ? Tensor(shape: [channels]) : runningVariance
    let y = execute(p, x, mean: mean, variance: variance)
    if training {
      updateRunningStatistics(mean: mean, variance: variance, count: x.count / channels)
      cache = (x, p, mean, variance, x.count / channels, false)
    }
    return y
  }

  /// oneDNN's forward of `p` on `x` with these statistics: written by oneDNN when it
  /// computes them (training), read when they are given.
  private func execute(_ p: Plan, _ x: Tensor, mean: Tensor, variance: Tensor) -> Tensor {
    let y = Tensor.uninitialized(shape: x.shape, layout: x.layout)
    let src = DNNLMemory(p.data, UnsafeMutableRawPointer(x.data))
    let dst = DNNLMemory(p.data, UnsafeMutableRawPointer(y.data))
    let (meanMem, varMem, scaleMem, shiftMem) = (vector(mean), vector(variance), vector(scale.value), vector(shift.value))
    var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, src.handle), (DNNL_ARG_DST, dst.handle),
                                          (DNNL_ARG_MEAN, meanMem.handle), (DNNL_ARG_VARIANCE, varMem.handle),
                                          (DNNL_ARG_SCALE, scaleMem.handle), (DNNL_ARG_SHIFT, shiftMem.handle)]
    if let ws = p.workspace { args.append((DNNL_ARG_WORKSPACE, ws.handle)) }
    p.forward.execute(args)
    return y
  }

  /// Running averages for inference, with the unbiased variance of `count` values a channel.
  private func updateRunningStatistics(mean: Tensor, variance: Tensor, count: Int) {
    let n = Float(count)
    let unbias = n > 1 ? n / (n - 1) : 1
    for c in 0..<channels {
      runningMean.data[c] = (1 - momentum) * runningMean.data[c] + momentum * mean.data[c]
      runningVariance.data[c] = (1 - momentum) * runningVariance.data[c] + momentum * variance.data[c] * unbias
    }
  }

  /// Sync batch norm, forward: the mean and variance of the whole batch of every rank, in
  /// two passes over this rank's input with one small allreduce each (sums, then squared
  /// deviations from the global mean: no cancellation), then oneDNN normalises with them.
  private func synchronizedForward(_ x: Tensor, sum: (UnsafeMutableBufferPointer<Double>) -> Void) -> Tensor {
    let c = channels
    var sums = channelSums(x, center: nil) + [Double(x.count / c)]
    sums.withUnsafeMutableBufferPointer { sum($0) }
    let total = sums[c]
    let globalMean = (0..<c).map { sums[$0] / total }
    let center = globalMean.map { Float($0) }
    var squares = channelSums(x, center: center)
    squares.withUnsafeMutableBufferPointer { sum($0) }
    let mean = Tensor(shape: [c]), variance = Tensor(shape: [c])
    for i in 0..<c {
      // Deviations were taken from the mean rounded to Float: correct for the difference.
      let offset = globalMean[i] - Double(center[i])
      mean.data[i] = center[i]
      variance.data[i] = Float(max(0, squares[i] / total - offset * offset))
    }
    let p = plan(x, training: true, givenStatistics: true)
    let y = execute(p, x, mean: mean, variance: variance)
    updateRunningStatistics(mean: mean, variance: variance, count: Int(total))
    cache = (x, p, mean, variance, Int(total), true)
    return y
  }

  public func backward(_ dyIn: Tensor) -> Tensor {
    guard let (x, p, mean, variance, elements, synced) = cache else {
      preconditionFailure("\(name): backward without a training forward")
    }
    cache = nil  // backward runs once per forward; frees the input as backward moves on
    let (dy, disposable) = dyIn.disposable(in: x.layout)
    if p.backward == nil {
      var d = dnnl_batch_normalization_desc_t()
      var md = p.data.raw, dmd = p.data.raw
      // Synced: the statistics are constants to oneDNN, and their gradient is added below.
      let flags = baseFlags | (synced ? dnnl_use_global_stats.rawValue : 0)
      dnnlCheck(dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward, &dmd, &md, epsilon, flags), "bn bwd desc \(name)")
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
    // This rank's share of the parameter gradients: the gradient allreduce adds the rest.
    scale.grad.add(dScale)
    shift.grad.add(dShift)
    if synced, let sum = crossReplicaSum {
      addStatisticsGradient(dx: dx, x: x, mean: mean, variance: variance, dScale: dScale, dShift: dShift,
                            elements: elements, sum: sum)
    }
    return dx.handedDown()
  }

  /// Per channel, the sum of x (or of (x - center)^2) over this rank's batch: Float within
  /// runs of at most 256 elements, Double across them.
  private func channelSums(_ x: Tensor, center: [Float]?) -> [Double] {
    let c = channels, batch = x.shape[0], plane = x.shape[2] * x.shape[3], block = x.layout.blockSize
    var out = [Double](repeating: 0, count: c)
    var partial = [Float](repeating: 0, count: block)
    var offsets = [Float](repeating: 0, count: block)
    for n in 0..<batch {
      for cb in stride(from: 0, to: c, by: block) {
        // NCHW (block 1): channel cb's plane; blocked: [plane][block] of channels cb ..< cb + block.
        let base = x.data + (n * c + cb) * plane
        for j in 0..<block { offsets[j] = center?[cb + j] ?? 0 }
        var q0 = 0
        while q0 < plane {
          let q1 = min(plane, q0 + 256)
          for j in 0..<block { partial[j] = 0 }
          if center == nil {
            for q in q0..<q1 { for j in 0..<block { partial[j] += base[q * block + j] } }
          } else {
            for q in q0..<q1 {
              for j in 0..<block {
                let d = base[q * block + j] - offsets[j]
                partial[j] += d * d
              }
            }
          }
          for j in 0..<block { out[cb + j] += Double(partial[j]) }
          q0 = q1
        }
      }
    }
    return out
  }

  /// Sync batch norm, backward: oneDNN gave dx = gamma dy' / sigma with the statistics held
  /// constant (dy' is dy through the fused ReLU) and this rank's sums of dy' and dy' xhat;
  /// summed over the ranks, they give the statistics' share of the gradient:
  ///     dx -= gamma / (sigma M) (sum dy' + xhat sum dy' xhat),  M = elements per channel, all ranks.
  private func addStatisticsGradient(dx: Tensor, x: Tensor, mean: Tensor, variance: Tensor, dScale: Tensor, dShift: Tensor,
                                     elements: Int, sum: (UnsafeMutableBufferPointer<Double>) -> Void) {
    let c = channels
    var sums = [Double](repeating: 0, count: 2 * c)
    for i in 0..<c {
      sums[i] = Double(dScale.data[i])
      sums[c + i] = Double(dShift.data[i])
    }
    sums.withUnsafeMutableBufferPointer { sum($0) }
    var a = [Float](repeating: 0, count: c), b = [Float](repeating: 0, count: c)
    var inverseSigma = [Float](repeating: 0, count: c)
    for i in 0..<c {
      let s = 1 / (Double(variance.data[i]) + Double(epsilon)).squareRoot()
      let k = Double(scale.value.data[i]) * s / Double(elements)
      // dx -= a + b xhat, a = k sum dy', b = k sum dy' xhat, xhat = (x - mean) s.
      inverseSigma[i] = Float(s)
      a[i] = Float(k * sums[c + i])
      b[i] = Float(k * sums[i])
    }
    let batch = x.shape[0], plane = x.shape[2] * x.shape[3]
    let block = x.layout.blockSize
    for n in 0..<batch {
      for cb in stride(from: 0, to: c, by: block) {
        let base = (n * c + cb) * plane
        for q in 0..<plane {
          for j in 0..<block {
            let ch = cb + j
            // NCHW: channel ch's plane starts at (n c + ch) plane; blocked: element (q, j) of the block.
            let o = block == 1 ? base + q : base + q * block + j
            let xhat = (x.data[o] - mean.data[ch]) * inverseSigma[ch]
            dx.data[o] -= a[ch] + b[ch] * xhat
          }
        }
      }
    }
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
