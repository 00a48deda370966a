import AEPSLEngine
import ArgumentParser

/// The checks that `validate()` repeats across commands, each with one message: the option,
/// the rule, and the value given.
enum Check {
  /// `value` is at least `minimum`.
  static func atLeast<T: Comparable>(_ minimum: T, _ value: T, _ option: String) throws {
    guard value >= minimum else { throw ValidationError("\(option) must be at least \(minimum), got \(value).") }
  }

  /// `value` lies in [0, 1].
  static func fraction(_ value: Float, _ option: String) throws {
    guard value >= 0 && value <= 1 else { throw ValidationError("\(option) must be in [0, 1], got \(value).") }
  }

  /// `value` is strictly positive (NaN is not).
  static func positive(_ value: Float, _ option: String) throws {
    guard value > 0 else { throw ValidationError("\(option) must be positive, got \(value).") }
  }

  /// `name` is a network aepsl builds.
  static func network(_ name: String) throws {
    guard BackboneSpec.named(name) != nil else { throw ValidationError("Unknown --net '\(name)'; choose tiny or largefov.") }
  }
}
