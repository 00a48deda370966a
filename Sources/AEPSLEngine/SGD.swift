/// Stochastic gradient descent with momentum and weight decay (Caffe's form, as DeepLab):
///
///     v = momentum v + lr lr_mult (g + decay decay_mult w);  w -= v
///
/// Keeps one momentum buffer per parameter and applies one update per parameter.
public final class SGD {
  public var learningRate: Float
  public let momentum: Float
  public let weightDecay: Float
  public let parameters: [Parameter]
  private var velocity: [Tensor]

  public init(parameters: [Parameter], learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 5e-4) {
    self.parameters = parameters
    self.learningRate = learningRate
    self.momentum = momentum
    self.weightDecay = weightDecay
    velocity = parameters.map { $0.value.zerosLike() }
  }

  /// Momentum buffers, for checkpoints that resume training exactly.
  public var state: [Buffer] {
    zip(parameters, velocity).map { Buffer(name: "\($0.name).momentum", value: $1) }
  }

  /// Applies one update from the accumulated gradients, then clears them.
  public func step() {
    for (p, v) in zip(parameters, velocity) {
      let lr = learningRate * p.lrMultiplier
      let decay = weightDecay * p.decayMultiplier
      let (w, g, vb) = (p.value.data, p.grad.data, v.data)
      for i in 0..<p.value.count {
        vb[i] = momentum * vb[i] + lr * (g[i] + decay * w[i])
        w[i] -= vb[i]
      }
      p.grad.zero()
      p.version += 1
    }
  }

}

/// The learning-rate schedule by iteration: DeepLab's "poly", base (1 - iter / maxIter)^power
/// (power 0.9), the one both training stages use.
public enum LearningRateSchedule: Sendable, Equatable {
  case poly(maxIterations: Int, power: Float)

  public func rate(base: Float, iteration: Int) -> Float {
    switch self {
    case let .poly(maxIterations, power):
      let f = max(0, 1 - Float(iteration) / Float(max(maxIterations, 1)))
      return base * pow(f, power)
    }
  }
}

#if canImport(Glibc)
import Glibc
#endif
