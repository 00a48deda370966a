import CDNNL

/// 2-D convolution through oneDNN, with an optional fused ReLU.
///
///     input  [N, inputChannels, H, W]
///     output [N, outputChannels, Ho, Wo],  Ho = (H + 2 padding - dilation (k - 1) - 1) / stride + 1
///     weight [outputChannels, inputChannels, k, k] (OIHW),  bias [outputChannels]
///
/// `dilation` is PyTorch's (1 = none); oneDNN counts the gaps instead, `dilation - 1`.
/// With `fusedReLU` the layer computes relu(conv(x)) in one pass and its backward masks the
/// incoming gradient by the sign of its own output first.
public final class Conv2d: Layer {
  public let name: String
  public let inputChannels: Int, outputChannels: Int
  public let kernelSize: Int, stride: Int, padding: Int, dilation: Int
  public let fusedReLU: Bool
  public let weight: Parameter
  public let bias: Parameter?
  /// False for a network's first layer: nobody needs the gradient of the image.
  public var computesInputGradient = true

  public init(name: String, inputChannels: Int, outputChannels: Int, kernelSize: Int,
              stride: Int = 1, padding: Int = 0, dilation: Int = 1, bias: Bool = true,
              fusedReLU: Bool = false) {
    self.name = name
    self.inputChannels = inputChannels
    self.outputChannels = outputChannels
    self.kernelSize = kernelSize
    self.stride = stride
    self.padding = padding
    self.dilation = dilation
    self.fusedReLU = fusedReLU
    weight = Parameter(name: "\(name).weight",
                       value: Tensor(shape: [outputChannels, inputChannels, kernelSize, kernelSize]))
    self.bias = bias ? Parameter(name: "\(name).bias", value: Tensor(shape: [outputChannels]), decayMultiplier: 0) : nil
  }

  public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

  public func outputShape(_ s: [Int]) -> [Int] {
    let extent = dilation * (kernelSize - 1) + 1
    return [s[0], outputChannels, (s[2] + 2 * padding - extent) / stride + 1, (s[3] + 2 * padding - extent) / stride + 1]
  }

  public func multiplyAdds(inputShape: [Int]) -> Int {
    let o = outputShape(inputShape)
    return o[0] * o[1] * o[2] * o[3] * inputChannels * kernelSize * kernelSize
  }

  /// He (Kaiming) normal initialisation for ReLU networks: std = sqrt(2 / fan_in).
  public func initializeHe(_ rng: inout SeededGenerator) {
    let std = (2 / Float(inputChannels * kernelSize * kernelSize)).squareRoot()
    for i in 0..<weight.value.count { weight.value.data[i] = std * rng.nextNormal() }
    bias?.value.zero()
    weight.version += 1
  }

  /// Gaussian initialisation with a given standard deviation (DeepLab's new layers: 0.01).
  public func initializeNormal(std: Float, _ rng: inout SeededGenerator) {
    for i in 0..<weight.value.count { weight.value.data[i] = std * rng.nextNormal() }
    bias?.value.zero()
    weight.version += 1
  }

  private func geometry(_ s: [Int]) -> TapConvolution.Geometry {
    let o = outputShape(s)
    return .init(n: s[0], c: inputChannels, h: s[2], w: s[3], o: outputChannels, ho: o[2], wo: o[3],
                 k: kernelSize, dilation: dilation, padding: padding)
  }

  // MARK: Primitives, built once per input shape

  // Weights are always format `any` (oneDNN's blocked layout, reordered from OIHW). For the
  // activations each primitive first gets the tensors' own layouts (nChw16c on AVX-512: its
  // jit kernels, no reorder); only when oneDNN 2.6 offers nothing but a reference loop there
  // (hundreds of times slower; fc6's dilation of 12) do we try other layouts, and
  // `FormatBridge` reorders to and from the one it takes. If every layout is a reference loop,
  // the convolution runs as per-tap OpenBLAS GEMMs (`TapConvolution`).

  private final class Plan {
    let forward: Primitive
    let input: MemoryDesc, output: MemoryDesc
    let src: FormatBridge, dst: FormatBridge
    let weights: ReorderedCopy
    let outputLayout: TensorLayout
    /// Forward and backward data run as per-tap GEMMs.
    let usesTaps: Bool
    var backwardData: BackwardData?
    var backwardWeights: BackwardWeights?
    init(forward: Primitive, input: MemoryDesc, output: MemoryDesc, src: FormatBridge, dst: FormatBridge,
         weights: ReorderedCopy, outputLayout: TensorLayout, usesTaps: Bool) {
      self.forward = forward; self.input = input; self.output = output; self.src = src; self.dst = dst
      self.weights = weights; self.outputLayout = outputLayout; self.usesTaps = usesTaps
    }
  }

  private struct BackwardData {
    let primitive: Primitive
    let weights: ScratchReorder
    let diffDst: FormatBridge, diffSrc: FormatBridge
    /// The primitive is a forward convolution of dy with the flipped kernel (see
    /// `backwardData(_:)`): it takes dy as its source and writes dx as its destination.
    let asForward: Bool
  }

  private struct BackwardWeights {
    let primitive: Primitive
    let src: FormatBridge, diffDst: FormatBridge
    /// The layout oneDNN writes the weight gradient in (into a `Scratch` buffer).
    let diffWeights: MemoryDesc
    /// grad (OIHW) += the gradient in that layout: a reorder with a sum post-op.
    let accumulate: Primitive
  }

  private var plans: [String: Plan] = [:]
  /// Forward weights in each layout a forward primitive chose, shared by the plans (inference
  /// and training primitives usually choose the same one).
  private var weightCopies: [ReorderedCopy] = []
  private var trainingPlanKey = ""
  private var cachedInput: Tensor?
  private var cachedOutput: Tensor?

  private var outputLayout: TensorLayout { .preferred(channels: outputChannels) }

  private var geometryArrays: (strides: [dnnl_dim_t], dilation: [dnnl_dim_t], padding: [dnnl_dim_t]) {
    ([dnnl_dim_t(stride), dnnl_dim_t(stride)], [dnnl_dim_t(dilation - 1), dnnl_dim_t(dilation - 1)],
     [dnnl_dim_t(padding), dnnl_dim_t(padding)])
  }

  /// The forward primitive for activations in `src` and `dst` (weights: format `any`).
  private func forwardPrimitive(src: MemoryDesc, dst: MemoryDesc, training: Bool) -> Primitive {
    var d = dnnl_convolution_desc_t()
    var (s, w, o) = (src.raw, MemoryDesc.any(weight.value.shape).raw, dst.raw)
    var g = geometryArrays
    let prop = training ? dnnl_forward_training : dnnl_forward_inference
    if var b = bias.map({ _ in MemoryDesc([outputChannels], dnnl_a).raw }) {
      dnnlCheck(dnnl_dilated_convolution_forward_desc_init(&d, prop, dnnl_convolution_direct, &s, &w, &b, &o,
                                                           &g.strides, &g.dilation, &g.padding, &g.padding), "conv forward desc \(name)")
    } else {
      dnnlCheck(dnnl_dilated_convolution_forward_desc_init(&d, prop, dnnl_convolution_direct, &s, &w, nil, &o,
                                                           &g.strides, &g.dilation, &g.padding, &g.padding), "conv forward desc \(name)")
    }
    return Primitive(&d, attr: fusedReLU ? .relu() : nil, "conv \(name)")
  }

  private func plan(for x: Tensor, training: Bool) -> Plan {
    let key = "\(x.shape)\(x.layout)\(training)"
    if let p = plans[key] { return p }
    let input = MemoryDesc(x)
    let outShape = outputShape(x.shape)
    let output = MemoryDesc(outShape, outputLayout.dnnlTag(rank: 4))
    // Our layouts first: no reorders. (With `any`, oneDNN 2.6 picks NHWC kernels for some
    // inference shapes, which would cost a reorder on each side.) Then NHWC, where oneDNN 2.6
    // has its brgemm kernels, the only fast ones for fc6's dilation of 12 on AVX-512 (measured:
    // twice its GEMM convolution, which `any` would pick for training); then its own choice.
    var fwd = forwardPrimitive(src: input, dst: output, training: training)
    for (src, dst) in [(MemoryDesc(x.shape, dnnl_nhwc), MemoryDesc(outShape, dnnl_nhwc)), (.any(x.shape), .any(outShape))]
    where fwd.implementation.hasPrefix("ref") {
      fwd = forwardPrimitive(src: src, dst: dst, training: training)
    }
    let chosenWeights = fwd.md(dnnl_query_weights_md)
    let weights = weightCopies.first { $0.chosen.equals(chosenWeights) } ?? {
      let copy = ReorderedCopy(from: MemoryDesc(weight.value.shape, dnnl_abcd), pointer: weight.value.data, to: chosenWeights)
      weightCopies.append(copy)
      return copy
    }()
    let usesTaps = stride == 1 && fwd.implementation.hasPrefix("ref")
    let p = Plan(forward: fwd, input: input, output: output,
                 src: FormatBridge(ours: input, theirs: fwd.md(dnnl_query_src_md), .intoPrimitive),
                 dst: FormatBridge(ours: output, theirs: fwd.md(dnnl_query_dst_md), .outOfPrimitive),
                 weights: weights, outputLayout: outputLayout, usesTaps: usesTaps)
    plans[key] = p
    return p
  }

  public func forward(_ x: Tensor, training: Bool) -> Tensor {
    precondition(x.shape.count == 4 && x.shape[1] == inputChannels, "\(name): input \(x.shape), expected \(inputChannels) channels")
    let p = plan(for: x, training: training)
    let y: Tensor
    if p.usesTaps {
      let plain = TapConvolution.forward(x: x.nchw(), weight: weight.value, bias: bias?.value, geometry(x.shape))
      if fusedReLU { Eltwise.relu(plain, into: plain) }
      y = plain.to(p.outputLayout)
    } else {
      y = Tensor.uninitialized(shape: outputShape(x.shape), layout: p.outputLayout)
      let src = p.src.input(x)
      let biasMem = bias.map { DNNLMemory(MemoryDesc([outputChannels], dnnl_a), UnsafeMutableRawPointer($0.value.data)) }
      let weights = p.weights.memory(version: weight.version)
      p.dst.output(y) { dst in
        var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, src.handle), (DNNL_ARG_DST, dst), (DNNL_ARG_WEIGHTS, weights)]
        if let biasMem { args.append((DNNL_ARG_BIAS, biasMem.handle)) }
        p.forward.execute(args)
      }
    }
    if training {
      cachedInput = x
      // The output is needed only for a fused ReLU's mask.
      cachedOutput = fusedReLU ? y : nil
      trainingPlanKey = "\(x.shape)\(x.layout)\(training)"
    }
    return y
  }

  public func backward(_ dyIn: Tensor) -> Tensor {
    guard let x = cachedInput, let p = plans[trainingPlanKey] else {
      preconditionFailure("\(name): backward without a training forward")
    }
    // Backward runs once per forward: drop the caches now, so that the activations of the
    // layers behind are freed as backward moves on (as PyTorch frees saved tensors).
    cachedInput = nil
    precondition(dyIn.shape == outputShape(x.shape), "\(name): gradient \(dyIn.shape) for output \(outputShape(x.shape))")
    var (dy, disposable) = dyIn.disposable(in: p.outputLayout)
    if fusedReLU, var y = cachedOutput {
      cachedOutput = nil
      // The masked gradient overwrites the incoming one when that is ours (then the output
      // is freed before dx is allocated), else the output when nobody else holds it any more.
      let masked = disposable ? dy
        : isKnownUniquelyReferenced(&y) ? y : Tensor.uninitialized(shape: dy.shape, layout: dy.layout)
      Eltwise.reluBackward(dy: dy, y: y, into: masked)
      dy = masked
    }
    let bwdW = backwardWeights(p)
    if let bwdW {
      weightGradientWithDNNL(x: x, dy: dy, bwdW)
    } else {
      TapConvolution.accumulateWeightGradient(x: x.nchw(), dy: dy.nchw(), geometry(x.shape),
                                              weightGrad: weight.grad, biasGrad: bias?.grad)
    }

    guard computesInputGradient else { return Tensor(shape: x.shape, layout: x.layout).handedDown() }
    if p.usesTaps {
      return TapConvolution.backwardData(dy: dy.nchw(), weight: weight.value, geometry(x.shape)).to(x.layout).handedDown()
    }
    let bwdD = backwardData(p)
    let dx = Tensor.uninitialized(shape: x.shape, layout: x.layout)
    let dyMem = bwdD.diffDst.input(dy)
    let w = bwdD.asForward ? flippedWeights() : weight.value
    let weights = bwdD.weights.memory(from: w.data)
    withExtendedLifetime(w) {
      bwdD.diffSrc.output(dx) { diffSrc in
        bwdD.primitive.execute(bwdD.asForward
          ? [(DNNL_ARG_DST, diffSrc), (DNNL_ARG_SRC, dyMem.handle), (DNNL_ARG_WEIGHTS, weights.handle)]
          : [(DNNL_ARG_DIFF_SRC, diffSrc), (DNNL_ARG_DIFF_DST, dyMem.handle), (DNNL_ARG_WEIGHTS, weights.handle)])
      }
    }
    return dx.handedDown()
  }

  /// W~[i][o][a][b] = W[o][i][k-1-a][k-1-b]: the kernel of the forward convolution that
  /// computes this one's input gradient (stride 1).
  private func flippedWeights() -> Tensor {
    let (o, i, k) = (outputChannels, inputChannels, kernelSize)
    let kk = k * k
    let out = Tensor.uninitialized(shape: [i, o, k, k])
    let src = weight.value.data
    for oi in 0..<o {
      for ii in 0..<i {
        let s = src + (oi * i + ii) * kk, d = out.data + (ii * o + oi) * kk
        for t in 0..<kk { d[kk - 1 - t] = s[t] }
      }
    }
    return out
  }

  private func backwardData(_ p: Plan) -> BackwardData {
    if let b = p.backwardData { return b }
    let wDims = weight.value.shape
    func make(diffSrc: MemoryDesc, diffDst: MemoryDesc) -> Primitive {
      var d = dnnl_convolution_desc_t()
      var (s, w, o) = (diffSrc.raw, MemoryDesc.any(wDims).raw, diffDst.raw)
      var g = geometryArrays
      dnnlCheck(dnnl_dilated_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &s, &w, &o,
                                                                 &g.strides, &g.dilation, &g.padding, &g.padding), "conv bwd data \(name)")
      return Primitive(&d, hint: p.forward, "conv bwd data \(name)")
    }
    func finish(_ prim: Primitive, asForward: Bool, weightDims: [Int]) -> BackwardData {
      let b = BackwardData(
        primitive: prim,
        weights: ScratchReorder(from: MemoryDesc(weightDims, dnnl_abcd), to: prim.md(dnnl_query_weights_md)),
        diffDst: FormatBridge(ours: p.output, theirs: prim.md(asForward ? dnnl_query_src_md : dnnl_query_diff_dst_md), .intoPrimitive),
        diffSrc: FormatBridge(ours: p.input, theirs: prim.md(asForward ? dnnl_query_dst_md : dnnl_query_diff_src_md), .outOfPrimitive),
        asForward: asForward)
      p.backwardData = b
      return b
    }
    // Our layouts first.
    let prim = make(diffSrc: p.input, diffDst: p.output)
    if !prim.implementation.hasPrefix("ref") { return finish(prim, asForward: false, weightDims: wDims) }
    // oneDNN 2.6 has no direct kernel for large dilations (fc6's 12), only its GEMM one. For
    // stride 1, dx is also the forward convolution of dy with the kernel flipped and its
    // channel axes swapped, padded by dilation (k - 1) - padding: the forward brgemm kernels
    // run that about twice as fast (and need no im2col buffer).
    let flippedPadding = dilation * (kernelSize - 1) - padding
    if stride == 1 && flippedPadding >= 0 {
      let flippedDims = [inputChannels, outputChannels, kernelSize, kernelSize]
      for (src, dst) in [(p.output, p.input), (MemoryDesc(p.output.dims, dnnl_nhwc), MemoryDesc(p.input.dims, dnnl_nhwc))] {
        var d = dnnl_convolution_desc_t()
        var (s, w, o) = (src.raw, MemoryDesc.any(flippedDims).raw, dst.raw)
        var strides: [dnnl_dim_t] = [1, 1]
        var dil: [dnnl_dim_t] = [dnnl_dim_t(dilation - 1), dnnl_dim_t(dilation - 1)]
        var pad: [dnnl_dim_t] = [dnnl_dim_t(flippedPadding), dnnl_dim_t(flippedPadding)]
        dnnlCheck(dnnl_dilated_convolution_forward_desc_init(&d, dnnl_forward_inference, dnnl_convolution_direct, &s, &w, nil, &o,
                                                             &strides, &dil, &pad, &pad), "conv bwd data as forward \(name)")
        let fwd = Primitive(&d, "conv bwd data as forward \(name)")
        if !fwd.implementation.hasPrefix("ref") { return finish(fwd, asForward: true, weightDims: flippedDims) }
      }
    }
    return finish(make(diffSrc: .any(p.input.dims), diffDst: .any(p.output.dims)), asForward: false, weightDims: wDims)
  }

  /// oneDNN's weight-gradient primitive, or nil when it only has a reference loop for this
  /// shape (dilated convolutions on AVX2, say): then the tap GEMMs compute it.
  private func backwardWeights(_ p: Plan) -> BackwardWeights? {
    if let b = p.backwardWeights { return b }
    if p.usesTaps { return nil }
    let wDims = weight.value.shape
    func make(src: MemoryDesc, diffDst: MemoryDesc) -> Primitive {
      var d = dnnl_convolution_desc_t()
      var (s, w, o) = (src.raw, MemoryDesc.any(wDims).raw, diffDst.raw)
      var g = geometryArrays
      if var b = bias.map({ _ in MemoryDesc([outputChannels], dnnl_a).raw }) {
        dnnlCheck(dnnl_dilated_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &s, &w, &b, &o,
                                                                      &g.strides, &g.dilation, &g.padding, &g.padding), "conv bwd weights \(name)")
      } else {
        dnnlCheck(dnnl_dilated_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &s, &w, nil, &o,
                                                                      &g.strides, &g.dilation, &g.padding, &g.padding), "conv bwd weights \(name)")
      }
      return Primitive(&d, hint: p.forward, "conv bwd weights \(name)")
    }
    // Our layouts first (x and dy are already in them), then whatever oneDNN prefers.
    var prim = make(src: p.input, diffDst: p.output)
    if prim.implementation.hasPrefix("ref") { prim = make(src: .any(p.input.dims), diffDst: .any(p.output.dims)) }
    if stride == 1 && prim.implementation.hasPrefix("ref") { return nil }
    let diffW = prim.md(dnnl_query_diff_weights_md)
    let b = BackwardWeights(primitive: prim,
                            src: FormatBridge(ours: p.input, theirs: prim.md(dnnl_query_src_md), .intoPrimitive),
                            diffDst: FormatBridge(ours: p.output, theirs: prim.md(dnnl_query_diff_dst_md), .intoPrimitive),
                            diffWeights: diffW,
                            accumulate: Primitive(reorderFrom: diffW, to: MemoryDesc(wDims, dnnl_abcd), accumulate: true))
    p.backwardWeights = b
    return b
  }

  /// Weight (and bias) gradients through oneDNN: it writes them; we accumulate with +=.
  private func weightGradientWithDNNL(x: Tensor, dy: Tensor, _ b: BackwardWeights) {
    let srcMem = b.src.input(x)
    let dyMem = b.diffDst.input(dy)
    let diffBias = bias.map { _ in Tensor.uninitialized(shape: [outputChannels]) }
    let diffW = Scratch.memory(.weightGradient, b.diffWeights)
    var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, srcMem.handle), (DNNL_ARG_DIFF_DST, dyMem.handle),
                                          (DNNL_ARG_DIFF_WEIGHTS, diffW.handle)]
    let diffBiasMem = diffBias.map { DNNLMemory(MemoryDesc([outputChannels], dnnl_a), UnsafeMutableRawPointer($0.data)) }
    if let diffBiasMem { args.append((DNNL_ARG_DIFF_BIAS, diffBiasMem.handle)) }
    b.primitive.execute(args)
    let grad = DNNLMemory(weight.grad)
    b.accumulate.execute([(DNNL_ARG_FROM, diffW.handle), (DNNL_ARG_TO, grad.handle)])
    if let bias, let diffBias { bias.grad.add(diffBias) }
  }
}
