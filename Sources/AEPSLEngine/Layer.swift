/// A trainable tensor with its gradient and DeepLab-style learning-rate multipliers.
public final class Parameter {
  public let name: String
  public let value: Tensor
  public let grad: Tensor
  /// Multiplies the base learning rate (DeepLab: 10 for new layers' weights, 20 for biases).
  public var lrMultiplier: Float
  /// Multiplies the weight decay (0 for biases and batch-norm parameters).
  public var decayMultiplier: Float
  /// Bumped by every update, so layers know when a reordered copy is stale.
  public var version = 0

  public init(name: String, value: Tensor, lrMultiplier: Float = 1, decayMultiplier: Float = 1) {
    self.name = name
    self.value = value
    self.grad = value.zerosLike()
    self.lrMultiplier = lrMultiplier
    self.decayMultiplier = decayMultiplier
  }
}

/// Non-trainable state saved with a checkpoint (batch-norm running statistics).
public struct Buffer {
  public let name: String
  public let value: Tensor
}

/// A layer with an explicit forward and backward.
///
/// `forward` keeps what `backward` needs (its cache) in the layer; `backward` takes the
/// gradient of the loss with respect to the output, accumulates parameter gradients with
/// `+=`, and returns the gradient with respect to the input. Backward runs in the reverse
/// order of forward, once per forward: it drops the cache, so that activations are freed as
/// backward moves on. A gradient an engine layer returns is meant for the layer below, which
/// may overwrite it in place; a gradient the caller made is never overwritten.
public protocol Layer: AnyObject {
  var name: String { get }
  func forward(_ x: Tensor, training: Bool) -> Tensor
  func backward(_ dy: Tensor) -> Tensor
  /// Trainable parameters, in a fixed order.
  var parameters: [Parameter] { get }
  /// Saved non-trainable state.
  var buffers: [Buffer] { get }
  /// Multiply-adds of one forward pass for an input shape (for GFLOP/s figures).
  func multiplyAdds(inputShape: [Int]) -> Int
  /// The output shape for an input shape.
  func outputShape(_ inputShape: [Int]) -> [Int]
}

extension Layer {
  public var parameters: [Parameter] { [] }
  public var buffers: [Buffer] { [] }
  public func multiplyAdds(inputShape: [Int]) -> Int { 0 }
  public func outputShape(_ inputShape: [Int]) -> [Int] { inputShape }
}
