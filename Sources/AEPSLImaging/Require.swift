import Foundation

/// Traps on a programming error. Unlike `precondition`, this survives -Ounchecked, which
/// this target is built with; the unsafe loops behind it rely on the checked sizes.
@inline(__always)
func require(_ condition: Bool, _ message: @autoclosure () -> String,
             file: StaticString = #file, line: UInt = #line) {
  if !condition { fatalError(message(), file: file, line: line) }
}
