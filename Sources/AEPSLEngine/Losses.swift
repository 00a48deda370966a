#if canImport(Glibc)
import Glibc
#endif

/// A loss value with the gradient with respect to the network's output.
public struct LossResult {
  public let value: Float
  public let gradient: Tensor
}

/// The losses of the method. Each takes raw network outputs (logits) and returns the mean
/// loss and its gradient; no layer holds state for them.
public enum Loss {
  /// The paper's multi-label classification loss: Caffe's Euclidean loss between sigmoid
  /// scores and {0, 1} targets, summed over classes and averaged over images.
  ///
  ///     logits [N, C], targets [N, C];  L = 1 / (2N) sum_n sum_c (sigmoid(z) - y)^2
  ///
  /// (Averaging over classes too would shrink the gradient C times and stall training.)
  public static func sigmoidSquaredError(logits: Tensor, targets: Tensor) -> LossResult {
    precondition(logits.shape == targets.shape, "logits \(logits.shape) vs targets \(targets.shape)")
    let g = Tensor(shape: logits.shape)
    let scale = 1 / Float(logits.shape[0])
    var total: Double = 0
    for i in 0..<logits.count {
      let s = sigmoid(logits.data[i])
      let d = s - targets.data[i]
      total += Double(d * d)
      g.data[i] = d * s * (1 - s) * scale
    }
    return LossResult(value: Float(total) * scale / 2, gradient: g)
  }

  /// Binary cross-entropy on logits (numerically stable), averaged over images and classes.
  ///
  ///     L = mean max(z, 0) - z y + log(1 + exp(-|z|))
  public static func binaryCrossEntropy(logits: Tensor, targets: Tensor) -> LossResult {
    precondition(logits.shape == targets.shape, "logits \(logits.shape) vs targets \(targets.shape)")
    let g = Tensor(shape: logits.shape)
    let scale = 1 / Float(logits.count)
    var total: Double = 0
    for i in 0..<logits.count {
      let z = logits.data[i], y = targets.data[i]
      total += Double(max(z, 0) - z * y + log1pf(expf(-abs(z))))
      g.data[i] = (sigmoid(z) - y) * scale
    }
    return LossResult(value: Float(total) * scale, gradient: g)
  }

  /// The label that marks pixels no loss is computed on.
  public static let ignoreLabel: UInt8 = 255

  /// Pixel-wise softmax cross-entropy, averaged over the pixels whose label is not 255.
  ///
  ///     logits [N, K, H, W], labels N * H * W values in 0..<K or 255
  ///     L = -(1 / |valid|) sum_valid log softmax(z)[label]
  /// With no valid pixel the loss and gradient are zero.
  public static func softmaxCrossEntropy(logits xIn: Tensor, labels: [UInt8]) -> LossResult {
    let x = xIn.nchw()
    let (n, k, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
    precondition(labels.count == n * hw, "\(labels.count) labels for logits \(x.shape)")
    let p = channelSoftmax(x)
    var valid = 0
    for l in labels where l != ignoreLabel {
      precondition(Int(l) < k, "label \(l) for \(k) classes")
      valid += 1
    }
    let g = Tensor(shape: x.shape)
    guard valid > 0 else { return LossResult(value: 0, gradient: g) }
    let scale = 1 / Float(valid)
    var total: Double = 0
    for ni in 0..<n {
      let pb = p.data + ni * k * hw, gb = g.data + ni * k * hw
      for q in 0..<hw {
        let l = labels[ni * hw + q]
        guard l != ignoreLabel else { continue }
        total -= Double(logf(max(pb[Int(l) * hw + q], Float.leastNormalMagnitude)))
        for c in 0..<k { gb[c * hw + q] = pb[c * hw + q] * scale }
        gb[Int(l) * hw + q] -= scale
      }
    }
    return LossResult(value: Float(total) * scale, gradient: g)
  }

  @inline(__always) static func sigmoid(_ z: Float) -> Float { 1 / (1 + expf(-z)) }
}

/// Softmax over dimension 1 of an NCHW (or NC) tensor, the cross-entropy's probabilities:
///
///     y[n, c, p] = exp(x[n, c, p] - m) / sum_k exp(x[n, k, p] - m),  m = max_k x[n, k, p]
public func channelSoftmax(_ x: Tensor) -> Tensor {
  let (n, c) = (x.shape[0], x.shape[1])
  let hw = x.count / max(n * c, 1)
  let y = Tensor(shape: x.shape)
  for ni in 0..<n {
    let src = x.data + ni * c * hw, dst = y.data + ni * c * hw
    for p in 0..<hw {
      var m = -Float.infinity
      for k in 0..<c { m = max(m, src[k * hw + p]) }
      var s: Float = 0
      for k in 0..<c { let e = expf(src[k * hw + p] - m); dst[k * hw + p] = e; s += e }
      let inv = 1 / s
      for k in 0..<c { dst[k * hw + p] *= inv }
    }
  }
  return y
}
