/// The adversarial-erasing classifier: backbone, global average pooling, a linear layer.
/// Its CAMs come from the last feature map and the linear weights (docs/METHOD.md 1.1).
///
///     image [N, 3, H, W] -> logits [N, classes]
public final class Classifier {
  public let spec: BackboneSpec
  public let backbone: Sequential
  public let pool: GlobalAvgPool
  public let classifier: Linear
  /// The last training forward's feature map, for CAMs.
  public private(set) var lastFeatures: Tensor?

  /// `headLRMultiplier` scales the new layer's learning rate (DeepLab: 10 when the backbone
  /// comes from ImageNet, 1 when everything trains from scratch).
  public init(spec: BackboneSpec, classes: Int, seed: UInt64, headLRMultiplier: Float = 1) {
    self.spec = spec
    backbone = Sequential(spec: spec, seed: seed)
    pool = GlobalAvgPool(name: "gap")
    classifier = Linear(name: "classifier", inFeatures: spec.featureChannels, outFeatures: classes)
    var rng = SeededGenerator(seed: seed).split("init classifier")
    classifier.initializeNormal(std: 0.01, &rng)
    classifier.weight.lrMultiplier = headLRMultiplier
    classifier.bias.lrMultiplier = 2 * headLRMultiplier
  }

  public var parameters: [Parameter] { backbone.parameters + classifier.parameters }
  public var buffers: [Buffer] { backbone.buffers }

  private var folded = FoldedBackbone()

  public func forward(_ x: Tensor, training: Bool) -> Tensor {
    let f = training ? backbone.forward(x, training: true) : folded.network(for: backbone).forward(x, training: false)
    lastFeatures = f
    return classifier.forward(pool.forward(f, training: training), training: training)
  }

  public func backward(_ dLogits: Tensor) {
    _ = backbone.backward(pool.backward(classifier.backward(dLogits)))
  }

  /// Class activation maps at feature resolution: M_c = ReLU(sum_k w_ck A_k), not yet
  /// upsampled or normalised. features [N, K, h, w] -> [N, classes, h, w].
  public func classActivationMaps(features fIn: Tensor) -> Tensor {
    let f = fIn.nchw()
    let (n, k, hw) = (f.shape[0], f.shape[1], f.shape[2] * f.shape[3])
    let c = classifier.outFeatures
    let out = Tensor(shape: [n, c, f.shape[2], f.shape[3]])
    for ni in 0..<n {
      for ci in 0..<c {
        let dst = out.data + (ni * c + ci) * hw
        for ki in 0..<k {
          let w = classifier.weight.value.data[ci * k + ki]
          let src = f.data + (ni * k + ki) * hw
          for p in 0..<hw { dst[p] += w * src[p] }
        }
        for p in 0..<hw { dst[p] = max(dst[p], 0) }
      }
    }
    return out
  }
}

/// The PSL segmenter: backbone, a 1x1 convolution to classes + 1 score maps, and a
/// classification branch (global average pooling over the last features, linear) whose
/// sigmoid gives the class confidences (docs/METHOD.md 1.3).
///
///     image [N, 3, H, W] -> scores [N, classes + 1, H/8, W/8], logits [N, classes]
public final class Segmenter {
  public let spec: BackboneSpec
  public let backbone: Sequential
  public let scoreLayer: Conv2d
  public let pool: GlobalAvgPool
  public let classifier: Linear

  public init(spec: BackboneSpec, classes: Int, seed: UInt64, headLRMultiplier: Float = 1) {
    self.spec = spec
    backbone = Sequential(spec: spec, seed: seed)
    var rng = SeededGenerator(seed: seed).split("init heads")
    scoreLayer = Conv2d(name: "fc8", inputChannels: spec.featureChannels, outputChannels: classes + 1, kernelSize: 1)
    scoreLayer.initializeNormal(std: 0.01, &rng)
    pool = GlobalAvgPool(name: "gap")
    classifier = Linear(name: "cls", inFeatures: spec.featureChannels, outFeatures: classes)
    classifier.initializeNormal(std: 0.01, &rng)
    for p in scoreLayer.parameters + classifier.parameters {
      p.lrMultiplier = p.name.hasSuffix(".bias") ? 2 * headLRMultiplier : headLRMultiplier
    }
  }

  public var parameters: [Parameter] { backbone.parameters + scoreLayer.parameters + classifier.parameters }
  public var buffers: [Buffer] { backbone.buffers }

  private var folded = FoldedBackbone()

  public func forward(_ x: Tensor, training: Bool) -> (scores: Tensor, logits: Tensor) {
    let f = training ? backbone.forward(x, training: true) : folded.network(for: backbone).forward(x, training: false)
    let scores = scoreLayer.forward(f, training: training).nchw()
    let logits = classifier.forward(pool.forward(f, training: training), training: training)
    return (scores, logits)
  }

  /// Both heads' gradients meet at the last feature map and are summed there.
  public func backward(dScores: Tensor, dLogits: Tensor) {
    let a = scoreLayer.backward(dScores)
    let b = pool.backward(classifier.backward(dLogits))
    let g = a.to(b.layout)
    g.add(b)
    _ = backbone.backward(g)
  }
}

/// The backbone with batch norm folded into the convolutions, for inference: rebuilt only
/// when a parameter or running statistic changed since the last fold.
struct FoldedBackbone {
  private var stamp: [Int] = []
  private var cached: Sequential?

  mutating func network(for backbone: Sequential) -> Sequential {
    guard backbone.layers.contains(where: { $0 is BatchNorm2d }) else { return backbone }
    // Parameter versions change with every update; running statistics change with every
    // training forward, which the first element (a count of those) tracks.
    let current = [backbone.trainingForwards] + backbone.parameters.map(\.version)
    if current != stamp || cached == nil {
      cached = backbone.foldedForInference()
      stamp = current
    }
    return cached!
  }
}
