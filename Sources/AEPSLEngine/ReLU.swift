/// Rectified linear unit, element-wise; any shape and layout.
///
///     y = max(x, 0);  dx = dy where x > 0, else 0
public final class ReLU: Layer {
  public let name: String
  private var cachedOutput: Tensor?

  public init(name: String) { self.name = name }

  public func forward(_ x: Tensor, training: Bool) -> Tensor {
    let y = Tensor.uninitialized(shape: x.shape, layout: x.layout)
    Eltwise.relu(x, into: y)
    if training { cachedOutput = y }
    return y
  }

  public func backward(_ dyIn: Tensor) -> Tensor {
    guard let y = cachedOutput else { preconditionFailure("\(name): backward without a training forward") }
    cachedOutput = nil  // backward runs once per forward
    let (dy, disposable) = dyIn.disposable(in: y.layout)
    let dx = disposable ? dy : Tensor.uninitialized(shape: y.shape, layout: y.layout)
    Eltwise.reluBackward(dy: dy, y: y, into: dx)
    return dx.handedDown()
  }
}

/// Inverted dropout: in training, zeroes each element with probability `p` and scales the
/// rest by 1 / (1 - p); in inference, the identity. Seeded, so one seed fixes the masks.
public final class Dropout: Layer {
  public let name: String
  public let p: Float
  private var rng: SeededGenerator
  private var mask: Tensor?
  /// The position of this input's first sample in the whole (global) batch: a data-parallel
  /// rank draws the masks one process would draw for its samples.
  private var firstSample = 0

  public init(name: String, p: Float, seed: UInt64 = 0) {
    precondition(p >= 0 && p < 1, "dropout probability \(p) outside [0, 1)")
    self.name = name
    self.p = p
    rng = SeededGenerator(seed: seed).split("dropout \(name)")
  }

  /// Restarts the masks from `seed`; `firstSample` > 0 when this input holds the samples
  /// from that position of a larger batch split across data-parallel ranks (the next
  /// forward skips the draws of the samples before it).
  public func reseed(_ seed: UInt64, firstSample: Int = 0) {
    rng = SeededGenerator(seed: seed).split("dropout \(name)")
    self.firstSample = firstSample
  }

  public func forward(_ x: Tensor, training: Bool) -> Tensor {
    guard training, p > 0 else { mask = nil; return x }
    let keep = 1 / (1 - p)
    // One draw per element in memory order; a sample's elements are contiguous in every
    // layout (batch is the outermost dimension).
    if firstSample > 0, x.shape.first ?? 0 > 0 {
      rng.advance(by: firstSample * (x.count / x.shape[0]))
      firstSample = 0
    }
    let m = Tensor.uninitialized(shape: x.shape, layout: x.layout)
    let y = Tensor.uninitialized(shape: x.shape, layout: x.layout)
    for i in 0..<x.count {
      let k: Float = rng.nextUniform() >= p ? keep : 0
      m.data[i] = k
      y.data[i] = x.data[i] * k
    }
    mask = m
    return y
  }

  public func backward(_ dyIn: Tensor) -> Tensor {
    guard let m = mask else { return dyIn }
    mask = nil  // backward runs once per forward
    let (dy, disposable) = dyIn.disposable(in: m.layout)
    let dx = disposable ? dy : Tensor.uninitialized(shape: dy.shape, layout: dy.layout)
    for i in 0..<dy.count { dx.data[i] = dy.data[i] * m.data[i] }
    return dx.handedDown()
  }
}
