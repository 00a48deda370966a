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

  private final class Plan {
    let forward: Primitive
    let src: MemoryDesc, dst: MemoryDesc
    let weights: ReorderedCopy
    let outputLayout: TensorLayout
    /// oneDNN offers only a reference loop for this shape: run as per-tap GEMMs instead.
    let usesTaps: Bool
    var backwardData: (Primitive, ReorderedCopy)?
    var backwardWeights: (Primitive, OwnedMemory)?
    init(forward: Primitive, src: MemoryDesc, dst: MemoryDesc, weights: ReorderedCopy, outputLayout: TensorLayout, usesTaps: Bool) {
      self.forward = forward; self.src = src; self.dst = dst; self.weights = weights; self.outputLayout = outputLayout
      self.usesTaps = usesTaps
    }
  }

  private var plans: [String: Plan] = [:]
  private var trainingPlanKey = ""
  private var cachedInput: Tensor?
  private var cachedOutput: Tensor?

  private var outputLayout: TensorLayout { outputChannels % 8 == 0 ? .nChw8c : .nchw }

  private func convDesc(_ prop: dnnl_prop_kind_t, src: MemoryDesc, weights: MemoryDesc, bias: MemoryDesc?, dst: MemoryDesc)
    -> dnnl_convolution_desc_t {
    var d = dnnl_convolution_desc_t()
    var s = src.raw, w = weights.raw, o = dst.raw
    var strides: [dnnl_dim_t] = [dnnl_dim_t(stride), dnnl_dim_t(stride)]
    var dil: [dnnl_dim_t] = [dnnl_dim_t(dilation - 1), dnnl_dim_t(dilation - 1)]
    var pad: [dnnl_dim_t] = [dnnl_dim_t(padding), dnnl_dim_t(padding)]
    if var b = bias?.raw {
      dnnlCheck(dnnl_dilated_convolution_forward_desc_init(&d, prop, dnnl_convolution_direct, &s, &w, &b, &o,
                                                           &strides, &dil, &pad, &pad), "conv forward desc \(name)")
    } else {
      dnnlCheck(dnnl_dilated_convolution_forward_desc_init(&d, prop, dnnl_convolution_direct, &s, &w, nil, &o,
                                                           &strides, &dil, &pad, &pad), "conv forward desc \(name)")
    }
    return d
  }

  private func plan(for x: Tensor, training: Bool) -> Plan {
    let key = "\(x.shape)\(x.layout)\(training)"
    if let p = plans[key] { return p }
    let src = MemoryDesc(x)
    let outShape = outputShape(x.shape)
    let dst = MemoryDesc(outShape, outputLayout.dnnlTag(rank: 4))
    let wDims = weight.value.shape
    let biasDesc = bias.map { _ in MemoryDesc([outputChannels], dnnl_a) }
    var desc = convDesc(training ? dnnl_forward_training : dnnl_forward_inference,
                        src: src, weights: .any(wDims), bias: biasDesc, dst: dst)
    let fwd = Primitive(&desc, attr: fusedReLU ? .relu() : nil, "conv \(name)")
    let weights = ReorderedCopy(from: MemoryDesc(wDims, dnnl_abcd), pointer: weight.value.data,
                                to: fwd.md(dnnl_query_weights_md))
    let usesTaps = stride == 1 && fwd.implementation.hasPrefix("ref")
    let p = Plan(forward: fwd, src: src, dst: dst, weights: weights, outputLayout: outputLayout, usesTaps: usesTaps)
    plans[key] = p
    return p
  }

  public func forward(_ x: Tensor, training: Bool) -> Tensor {
    precondition(x.shape.count == 4 && x.shape[1] == inputChannels, "\(name): input \(x.shape), expected \(inputChannels) channels")
    let p = plan(for: x, training: training)
    if p.usesTaps {
      let y = TapConvolution.forward(x: x.nchw(), weight: weight.value, bias: bias?.value, geometry(x.shape))
      if fusedReLU { for i in 0..<y.count { y.data[i] = max(y.data[i], 0) } }
      let out = y.to(p.outputLayout)
      if training { cachedInput = x; cachedOutput = out; trainingPlanKey = "\(x.shape)\(x.layout)\(training)" }
      return out
    }
    let y = Tensor.uninitialized(shape: outputShape(x.shape), layout: p.outputLayout)
    let src = DNNLMemory(p.src, UnsafeMutableRawPointer(x.data))
    let dst = DNNLMemory(p.dst, UnsafeMutableRawPointer(y.data))
    var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, src.handle), (DNNL_ARG_DST, dst.handle),
                                          (DNNL_ARG_WEIGHTS, p.weights.memory(version: weight.version))]
    let biasMem = bias.map { DNNLMemory(MemoryDesc([outputChannels], dnnl_a), UnsafeMutableRawPointer($0.value.data)) }
    if let biasMem { args.append((DNNL_ARG_BIAS, biasMem.handle)) }
    p.forward.execute(args)
    if training {
      cachedInput = x
      cachedOutput = y
      trainingPlanKey = "\(x.shape)\(x.layout)\(training)"
    }
    return y
  }

  public func backward(_ dyIn: Tensor) -> Tensor {
    guard let x = cachedInput, let y = cachedOutput, let p = plans[trainingPlanKey] else {
      preconditionFailure("\(name): backward without a training forward")
    }
    precondition(dyIn.shape == y.shape, "\(name): gradient \(dyIn.shape) for output \(y.shape)")
    var dy = dyIn.to(p.outputLayout)
    if fusedReLU {
      let masked = Tensor.uninitialized(shape: dy.shape, layout: dy.layout)
      for i in 0..<dy.count { masked.data[i] = y.data[i] > 0 ? dy.data[i] : 0 }
      dy = masked
    }
    let wDims = weight.value.shape
    let dyMem = DNNLMemory(p.dst, UnsafeMutableRawPointer(dy.data))
    if p.usesTaps || (dilation > 1 && stride == 1) {
      // oneDNN 2.6 has no AVX2 kernel for dilated weight gradients (see TapConvolution).
      TapConvolution.accumulateWeightGradient(x: x.nchw(), dy: dy.nchw(), geometry(x.shape),
                                              weightGrad: weight.grad, biasGrad: bias?.grad)
    } else {
      weightGradientWithDNNL(x: x, dy: dy, dyMem: dyMem, plan: p)
    }

    guard computesInputGradient else { return Tensor(shape: x.shape, layout: x.layout) }
    if p.usesTaps {
      return TapConvolution.backwardData(dy: dy.nchw(), weight: weight.value, geometry(x.shape)).to(x.layout)
    }

    if p.backwardData == nil {
      var d = dnnl_convolution_desc_t()
      var s = p.src.raw, w = MemoryDesc.any(wDims).raw, o = p.dst.raw
      var strides: [dnnl_dim_t] = [dnnl_dim_t(stride), dnnl_dim_t(stride)]
      var dil: [dnnl_dim_t] = [dnnl_dim_t(dilation - 1), dnnl_dim_t(dilation - 1)]
      var pad: [dnnl_dim_t] = [dnnl_dim_t(padding), dnnl_dim_t(padding)]
      dnnlCheck(dnnl_dilated_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &s, &w, &o,
                                                                 &strides, &dil, &pad, &pad), "conv bwd data \(name)")
      let prim = Primitive(&d, hint: p.forward, "conv bwd data \(name)")
      let weights = ReorderedCopy(from: MemoryDesc(wDims, dnnl_abcd), pointer: weight.value.data,
                                  to: prim.md(dnnl_query_weights_md))
      p.backwardData = (prim, weights)
    }
    let (bwdD, weights) = p.backwardData!
    let dx = Tensor.uninitialized(shape: x.shape, layout: x.layout)
    let dxMem = DNNLMemory(p.src, UnsafeMutableRawPointer(dx.data))
    bwdD.execute([(DNNL_ARG_DIFF_SRC, dxMem.handle), (DNNL_ARG_DIFF_DST, dyMem.handle),
                  (DNNL_ARG_WEIGHTS, weights.memory(version: weight.version))])
    return dx
  }

  /// Weight (and bias) gradients through oneDNN: it writes them; we accumulate with +=.
  private func weightGradientWithDNNL(x: Tensor, dy: Tensor, dyMem: DNNLMemory, plan p: Plan) {
    let wDims = weight.value.shape
    let biasDesc = bias.map { _ in MemoryDesc([outputChannels], dnnl_a) }
    if p.backwardWeights == nil {
      var d = dnnl_convolution_desc_t()
      var s = p.src.raw, w = MemoryDesc.any(wDims).raw, o = p.dst.raw
      var strides: [dnnl_dim_t] = [dnnl_dim_t(stride), dnnl_dim_t(stride)]
      var dil: [dnnl_dim_t] = [dnnl_dim_t(dilation - 1), dnnl_dim_t(dilation - 1)]
      var pad: [dnnl_dim_t] = [dnnl_dim_t(padding), dnnl_dim_t(padding)]
      if var b = biasDesc?.raw {
        dnnlCheck(dnnl_dilated_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &s, &w, &b, &o,
                                                                      &strides, &dil, &pad, &pad), "conv bwd weights \(name)")
      } else {
        dnnlCheck(dnnl_dilated_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &s, &w, nil, &o,
                                                                      &strides, &dil, &pad, &pad), "conv bwd weights \(name)")
      }
      let prim = Primitive(&d, hint: p.forward, "conv bwd weights \(name)")
      p.backwardWeights = (prim, OwnedMemory(prim.md(dnnl_query_diff_weights_md)))
    }
    let (bwdW, diffW) = p.backwardWeights!
    let srcMem = DNNLMemory(p.src, UnsafeMutableRawPointer(x.data))
    let diffBias = bias.map { _ in Tensor(shape: [outputChannels]) }
    var args: [(Int32, dnnl_memory_t)] = [(DNNL_ARG_SRC, srcMem.handle), (DNNL_ARG_DIFF_DST, dyMem.handle),
                                          (DNNL_ARG_DIFF_WEIGHTS, diffW.handle)]
    let diffBiasMem = diffBias.map { DNNLMemory(MemoryDesc([outputChannels], dnnl_a), UnsafeMutableRawPointer($0.data)) }
    if let diffBiasMem { args.append((DNNL_ARG_DIFF_BIAS, diffBiasMem.handle)) }
    bwdW.execute(args)
    accumulatePlain(from: diffW, dims: wDims, into: weight.grad)
    if let bias, let diffBias { bias.grad.add(diffBias) }
  }

  /// grad += diffW, converting oneDNN's chosen weight layout to OIHW.
  private var gradReorder: (Primitive, Tensor)?
  private func accumulatePlain(from diffW: OwnedMemory, dims: [Int], into grad: Tensor) {
    let plain = MemoryDesc(dims, dnnl_abcd)
    if diffW.memory.desc.equals(plain) {
      for i in 0..<grad.count { grad.data[i] += diffW.floats[i] }
      return
    }
    if gradReorder == nil { gradReorder = (Primitive(reorderFrom: diffW.memory.desc, to: plain), Tensor(shape: dims)) }
    let (reorder, tmp) = gradReorder!
    let tmpMem = DNNLMemory(plain, UnsafeMutableRawPointer(tmp.data))
    reorder.execute([(DNNL_ARG_FROM, diffW.handle), (DNNL_ARG_TO, tmpMem.handle)])
    grad.add(tmp)
  }
}
