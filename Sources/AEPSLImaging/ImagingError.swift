import Foundation

/// Why an image could not be read or written: the file (when known), the problem, and
/// what to do about it.
public struct ImagingError: Error, CustomStringConvertible, Sendable, Equatable {
  public enum Kind: Sendable, Equatable {
    /// Empty, truncated, corrupt, or not JPEG/PNG at all.
    case invalidData
    /// A valid file in a variant that is deliberately not read (CMYK JPEG, RGB mask).
    case unsupported
    /// Reading or writing the file itself failed.
    case fileSystem
    case outOfMemory
    /// The caller asked for something out of range (a JPEG quality of 0).
    case badArgument
  }

  public var kind: Kind
  /// The path of the file involved, or nil for in-memory data.
  public var file: String?
  public var problem: String
  public var fix: String?

  public init(kind: Kind, file: String? = nil, problem: String, fix: String? = nil) {
    self.kind = kind
    self.file = file
    self.problem = problem
    self.fix = fix
  }

  public var description: String {
    var text = file.map { "\($0): \(problem)" } ?? problem
    if let fix { text += ". \(fix)" }
    return text
  }

  /// The same error, attributed to `url` unless it already names a file.
  func attributed(to url: URL) -> ImagingError {
    var copy = self
    if copy.file == nil { copy.file = url.path }
    return copy
  }
}

/// Traps on a programming error. Unlike `precondition`, this survives -Ounchecked, which
/// this target is built with; the unsafe loops behind it rely on the checked sizes.
@inline(__always)
func require(_ condition: Bool, _ message: @autoclosure () -> String,
             file: StaticString = #file, line: UInt = #line) {
  if !condition { fatalError(message(), file: file, line: line) }
}
