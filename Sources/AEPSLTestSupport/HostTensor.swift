import AEPSLEngine

/// A plain row-major (NCHW) array with a shape, generic over the scalar so reference code
/// runs in Double. The test-side twin of the engine's Float `Tensor`.
public struct HostTensor<Scalar: BinaryFloatingPoint & Sendable>: Sendable, Equatable {
  public var shape: [Int]
  public var values: [Scalar]

  @inlinable public init(shape: [Int], values: [Scalar]) {
    precondition(shape.reduce(1, *) == values.count, "\(values.count) values for shape \(shape)")
    self.shape = shape
    self.values = values
  }

  @inlinable public init(zeros shape: [Int]) {
    self.init(shape: shape, values: Array(repeating: 0, count: shape.reduce(1, *)))
  }

  /// The engine tensor's values in NCHW order, whatever its layout.
  public init(_ t: Tensor) {
    self.init(shape: t.shape, values: t.values.map { Scalar($0) })
  }

  @inlinable public var count: Int { values.count }

  /// (N, C, H, W) of a 4-D tensor.
  @inlinable public var dims4: (Int, Int, Int, Int) {
    precondition(shape.count == 4, "expected a 4-D shape, got \(shape)")
    return (shape[0], shape[1], shape[2], shape[3])
  }

  @inlinable public subscript(n: Int, c: Int, h: Int, w: Int) -> Scalar {
    get { values[((n * shape[1] + c) * shape[2] + h) * shape[3] + w] }
    set { values[((n * shape[1] + c) * shape[2] + h) * shape[3] + w] = newValue }
  }

  @inlinable public subscript(i: Int, j: Int) -> Scalar {
    get { values[i * shape[1] + j] }
    set { values[i * shape[1] + j] = newValue }
  }

  /// A Float engine tensor with these values, in `layout`.
  public func tensor(layout: TensorLayout = .nchw) -> Tensor {
    Tensor(shape: shape, values: values.map { Float($0) }).to(layout)
  }

  /// The same values in another scalar type.
  @inlinable public func converted<T: BinaryFloatingPoint & Sendable>(to _: T.Type = T.self) -> HostTensor<T> {
    HostTensor<T>(shape: shape, values: values.map { T($0) })
  }

  @inlinable public func map(_ f: (Scalar) -> Scalar) -> HostTensor<Scalar> {
    HostTensor(shape: shape, values: values.map(f))
  }

  /// The same values with new values of equal count (for perturbing one coordinate).
  @inlinable public func with(values newValues: [Scalar]) -> HostTensor<Scalar> {
    HostTensor(shape: shape, values: newValues)
  }

  /// sum(w * self): the random scalar projection that turns a layer into a loss for
  /// gradient checks; its gradient with respect to the output is `w`.
  @inlinable public func dot(_ w: HostTensor<Scalar>) -> Scalar {
    precondition(w.shape == shape, "projection \(w.shape) for output \(shape)")
    var s: Scalar = 0
    for i in 0..<values.count { s += values[i] * w.values[i] }
    return s
  }
}

extension HostTensor: CustomStringConvertible {
  public var description: String { "HostTensor(\(shape))" }
}

/// Deterministic inputs from a seed. Every value is exactly representable as a Float, so the
/// engine (Float) and the reference (Double) see the same numbers.
public enum TestData {
  /// Uniform in `range`.
  public static func uniform(_ shape: [Int], seed: UInt64, in range: ClosedRange<Double> = -1...1) -> HostTensor<Double> {
    var rng = SeededGenerator(seed: seed).split("uniform")
    let count = shape.reduce(1, *)
    let values = (0..<count).map { _ in
      Double(Float(range.lowerBound + (range.upperBound - range.lowerBound) * Double(rng.nextUniform())))
    }
    return HostTensor(shape: shape, values: values)
  }

  /// Standard normal times `std`.
  public static func normal(_ shape: [Int], seed: UInt64, std: Double = 1) -> HostTensor<Double> {
    var rng = SeededGenerator(seed: seed).split("normal")
    let count = shape.reduce(1, *)
    return HostTensor(shape: shape, values: (0..<count).map { _ in Double(Float(std * Double(rng.nextNormal()))) })
  }

  /// Uniform in -1...1 but at least `margin` away from zero (no ReLU kink within reach).
  public static func awayFromZero(_ shape: [Int], seed: UInt64, margin: Double) -> HostTensor<Double> {
    uniform(shape, seed: seed).map { v in
      let m = Double(Float(margin))
      return v >= 0 ? Double(Float(m + v * (1 - m))) : Double(Float(-m + v * (1 - m)))
    }
  }

  /// Distinct values `spacing` apart, shuffled and centred on zero: no two elements tie, so
  /// max pooling has one argmax per window and no perturbation smaller than spacing / 2
  /// changes it.
  public static func distinct(_ shape: [Int], seed: UInt64, spacing: Double) -> HostTensor<Double> {
    var rng = SeededGenerator(seed: seed).split("distinct")
    let count = shape.reduce(1, *)
    var order = Array(0..<count)
    order.shuffle(using: &rng)
    let half = Double(count - 1) / 2
    return HostTensor(shape: shape, values: order.map { Double(Float((Double($0) - half) * spacing)) })
  }

  /// Labels in 0..<classes, with about `ignoreFraction` of them 255.
  public static func labels(count: Int, classes: Int, seed: UInt64, ignoreFraction: Double = 0) -> [UInt8] {
    var rng = SeededGenerator(seed: seed).split("labels")
    return (0..<count).map { _ in
      Double(rng.nextUniform()) < ignoreFraction ? 255 : UInt8(Int(rng.nextUniform() * Float(classes)) % classes)
    }
  }

  /// {0, 1} targets.
  public static func binaryTargets(_ shape: [Int], seed: UInt64) -> HostTensor<Double> {
    uniform(shape, seed: seed, in: 0...1).map { $0 < 0.5 ? 0 : 1 }
  }
}

extension Tensor {
  /// An engine tensor holding Float copies of a reference tensor's values.
  public convenience init<T: BinaryFloatingPoint & Sendable>(_ host: HostTensor<T>) {
    self.init(shape: host.shape, values: host.values.map { Float($0) })
  }
}
