/// What a training loop needs of an optimizer: the parameters it updates, a base learning
/// rate the schedule sets before every step, the state a resumable checkpoint keeps, and
/// one update from the accumulated gradients (which it then clears).
public protocol Optimizer: AnyObject {
  var learningRate: Float { get set }
  var parameters: [Parameter] { get }
  /// Per-parameter state (momentum, moment estimates), saved with a training state.
  var state: [Buffer] { get }
  func step()
}

extension SGD: Optimizer {}
extension Adam: Optimizer {}

/// The optimizers a schedule can name.
public enum OptimizerKind: String, Sendable, Codable, CaseIterable {
  /// `SGD`: momentum and weight decay in Caffe's form (DeepLab's).
  case sgd
  /// `Adam`: per-parameter step sizes from moment estimates (Kingma and Ba 2015).
  case adam

  /// An optimizer of this kind over `parameters`. `momentum` is SGD's momentum and Adam's
  /// beta1; weight decay is added to the gradients in both (L2, as PyTorch's Adam does).
  public func make(parameters: [Parameter], learningRate: Float, momentum: Float, weightDecay: Float) -> Optimizer {
    switch self {
    case .sgd: return SGD(parameters: parameters, learningRate: learningRate, momentum: momentum, weightDecay: weightDecay)
    case .adam: return Adam(parameters: parameters, learningRate: learningRate, beta1: momentum, weightDecay: weightDecay)
    }
  }
}
