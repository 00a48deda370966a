#if canImport(Glibc)
import Glibc
#endif

/// Adam (Kingma and Ba, ICLR 2015) with L2 weight decay added to the gradient, as PyTorch's
/// `torch.optim.Adam(weight_decay:)`:
///
///     g' = g + decay decay_mult w
///     m = beta1 m + (1 - beta1) g';  v = beta2 v + (1 - beta2) g'^2
///     w -= lr lr_mult (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
///
/// Keeps two moment buffers per parameter and the step count, and applies one update per
/// parameter. A network trained from scratch with a loss whose gradients are small (the
/// squared error on sigmoids) gets steps of about `lr` per weight whatever their scale.
public final class Adam {
  public var learningRate: Float
  public let beta1: Float
  public let beta2: Float
  public let epsilon: Float
  public let weightDecay: Float
  public let parameters: [Parameter]
  private var first: [Tensor]
  private var second: [Tensor]
  /// Updates applied so far, in a one-element tensor so that it is saved and resumed with
  /// the moments.
  private let steps: Tensor

  public init(parameters: [Parameter], learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999,
              epsilon: Float = 1e-8, weightDecay: Float = 0) {
    self.parameters = parameters
    self.learningRate = learningRate
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
    self.weightDecay = weightDecay
    first = parameters.map { $0.value.zerosLike() }
    second = parameters.map { $0.value.zerosLike() }
    steps = Tensor(shape: [1])
  }

  /// Moment buffers and the step count, for checkpoints that resume training exactly.
  public var state: [Buffer] {
    zip(parameters, first).map { Buffer(name: "\($0.name).adam_m", value: $1) }
      + zip(parameters, second).map { Buffer(name: "\($0.name).adam_v", value: $1) }
      + [Buffer(name: "adam.steps", value: steps)]
  }

  /// The number of updates applied.
  public var stepCount: Int { Int(steps.data[0]) }

  /// Applies one update from the accumulated gradients, then clears them.
  public func step() {
    steps.data[0] += 1
    let t = steps.data[0]
    let correction1 = 1 - pow(beta1, t), correction2 = 1 - pow(beta2, t)
    for (k, p) in parameters.enumerated() {
      let lr = learningRate * p.lrMultiplier / correction1
      let decay = weightDecay * p.decayMultiplier
      let (w, g, m, v) = (p.value.data, p.grad.data, first[k].data, second[k].data)
      for i in 0..<p.value.count {
        let gi = g[i] + decay * w[i]
        m[i] = beta1 * m[i] + (1 - beta1) * gi
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi
        w[i] -= lr * m[i] / ((v[i] / correction2).squareRoot() + epsilon)
      }
      p.grad.zero()
      p.version += 1
    }
  }
}
