/// Layers run in order; backward runs them in reverse.
public final class Sequential: Layer {
  public let name: String
  public private(set) var layers: [Layer]

  public init(name: String, layers: [Layer]) {
    self.name = name
    self.layers = layers
  }

  /// Builds a backbone from its description, initialised from `seed` (He init).
  public convenience init(spec: BackboneSpec, seed: UInt64) {
    var rng = SeededGenerator(seed: seed).split("init \(spec.name)")
    var layers: [Layer] = []
    var channels = spec.inputChannels
    for layer in spec.layers {
      switch layer {
      case let .conv(name, out, k, pad, dil):
        let conv = Conv2d(name: name, inputChannels: channels, outputChannels: out, kernelSize: k,
                          padding: pad, dilation: dil, bias: !spec.batchNorm, fusedReLU: !spec.batchNorm)
        conv.initializeHe(&rng)
        // DeepLab's prototxt trains every convolution's bias at twice the weights' rate.
        conv.bias?.lrMultiplier = 2
        conv.computesInputGradient = !layers.isEmpty
        layers.append(conv)
        if spec.batchNorm { layers.append(BatchNorm2d(name: "\(name)_bn", channels: out, fusedReLU: true)) }
        channels = out
      case let .maxPool(name, k, s, p, ceil):
        layers.append(MaxPool2d(name: name, kernelSize: k, stride: s, padding: p, ceilMode: ceil))
      case let .dropout(name, p):
        layers.append(Dropout(name: name, p: p, seed: seed))
      }
    }
    self.init(name: spec.name, layers: layers)
  }

  public var parameters: [Parameter] { layers.flatMap(\.parameters) }
  public var buffers: [Buffer] { layers.flatMap(\.buffers) }

  public func outputShape(_ s: [Int]) -> [Int] { layers.reduce(s) { $1.outputShape($0) } }

  public func multiplyAdds(inputShape: [Int]) -> Int {
    var shape = inputShape, total = 0
    for l in layers {
      total += l.multiplyAdds(inputShape: shape)
      shape = l.outputShape(shape)
    }
    return total
  }

  /// Training forwards so far (they update batch-norm running statistics).
  public private(set) var trainingForwards = 0

  public func forward(_ x: Tensor, training: Bool) -> Tensor {
    if training { trainingForwards += 1 }
    return layers.reduce(x) { $1.forward($0, training: training) }
  }

  public func backward(_ dy: Tensor) -> Tensor {
    layers.reversed().reduce(dy) { $1.backward($0) }
  }

  /// Reseeds every dropout layer (one seed fixes the masks of a run).
  /// `firstSample`: where this process's samples start in a batch split across
  /// data-parallel ranks (`Dropout.reseed`).
  public func reseedDropout(_ seed: UInt64, firstSample: Int = 0) {
    for case let d as Dropout in layers { d.reseed(seed, firstSample: firstSample) }
  }

  /// Batch statistics over the whole batch of every data-parallel rank (sync batch norm):
  /// `sum` adds Double vectors across the ranks in place; nil: this process's batch alone.
  public func synchronizeBatchNorm(_ sum: (@Sendable (UnsafeMutableBufferPointer<Double>) -> Void)?) {
    for case let bn as BatchNorm2d in layers { bn.crossReplicaSum = sum }
  }

  /// A copy for inference with every BatchNorm folded into the convolution before it.
  /// Shares no state with the original.
  public func foldedForInference() -> Sequential {
    var out: [Layer] = []
    var i = 0
    while i < layers.count {
      if let conv = layers[i] as? Conv2d, i + 1 < layers.count, let bn = layers[i + 1] as? BatchNorm2d {
        out.append(bn.fold(into: conv))
        i += 2
      } else {
        out.append(layers[i])
        i += 1
      }
    }
    return Sequential(name: name, layers: out)
  }
}
