import Foundation

/// Why something could not be done: the file involved (when there is one), the problem, and
/// what to do about it. The one error type every target throws for a bad file, a bad
/// argument or a stage that cannot go on, so that whoever catches one can name the file
/// without guessing it.
///
/// Printed as `file: problem. fix`; a problem of several lines (a list of mismatches) puts
/// the fix on a line of its own.
public struct AEPSLError: Error, CustomStringConvertible, Sendable, Equatable {
  public enum Kind: Sendable, Equatable {
    /// A file or directory that is required is not there (an image, a list, a stage's output).
    case missingFile
    /// A file exists but its content cannot be used: empty, truncated, corrupt, unparsable,
    /// the wrong shape, or made with other settings.
    case invalidData
    /// A valid file in a variant that is deliberately not read (CMYK JPEG, RGB mask).
    case unsupported
    /// Reading, writing, listing or creating the file itself failed (permissions, disk full).
    case fileSystem
    case outOfMemory
    /// The caller asked for something out of range or that the data cannot give (a JPEG
    /// quality of 0, mixed sizes in one batch, a batch smaller than the number of ranks).
    case badArgument
    /// An annotation names a class that is not in the class list.
    case unknownClass
    /// The machine or the job's launch does not allow it (MPI missing or failing).
    case environment
  }

  public var kind: Kind
  /// The path of the file involved, or nil when there is none (in-memory data, a setting).
  public var file: String?
  public var problem: String
  public var fix: String?

  public init(kind: Kind = .invalidData, file: String? = nil, problem: String, fix: String? = nil) {
    self.kind = kind
    self.file = file
    self.problem = problem
    self.fix = fix
  }

  public var description: String {
    var text = file.map { "\($0): \(problem)" } ?? problem
    if let fix { text += problem.contains("\n") ? "\n\(fix)" : ". \(fix)" }
    return text
  }

  /// The problem followed by the fix, without the file (for tables that list the file apart).
  public var problemAndFix: String {
    fix.map { "\(problem). \($0)" } ?? problem
  }

  /// The same error, attributed to `url` unless it already names a file.
  public func attributed(to url: URL) -> AEPSLError {
    var copy = self
    if copy.file == nil { copy.file = url.path }
    return copy
  }
}
