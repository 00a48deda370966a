import Foundation

/// A small, fast, seedable generator (SplitMix64). One seed fixes initialisation, data
/// order and dropout; every consumer derives its own stream with `split`.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
  private var state: UInt64

  public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Skips `count` draws of `next()` at once (SplitMix64's state moves by a constant per
  /// draw): a data-parallel rank starts its dropout stream where its first sample's is.
  public mutating func advance(by count: Int) {
    state &+= 0x9E37_79B9_7F4A_7C15 &* UInt64(truncatingIfNeeded: count)
  }

  /// An independent stream for a named purpose ("init", "dropout", "order"...).
  public func split(_ purpose: String) -> SeededGenerator {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a, stable across runs unlike Hasher
    for b in purpose.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return SeededGenerator(seed: state ^ h)
  }

  /// Uniform in [0, 1).
  public mutating func nextUniform() -> Float { Float(next() >> 40) * (1.0 / Float(1 << 24)) }

  /// Standard normal (Box-Muller).
  public mutating func nextNormal() -> Float {
    let u1 = max(Double(next() >> 11) * (1.0 / Double(1 << 53)), 1e-300)
    let u2 = Double(next() >> 11) * (1.0 / Double(1 << 53))
    return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
  }
}
