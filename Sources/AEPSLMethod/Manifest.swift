import AEPSLData
import AEPSLFiles
import AEPSLImaging
import Foundation

/// What a finished stage wrote down about itself (DESIGN.md section 4: lineage lives in a
/// manifest, not in directory names). A stage writes its manifest last, atomically: a stage
/// directory without one is unfinished and is redone.
public struct StageManifest: Codable, Sendable, Equatable {
  public var stage: String
  public var version: String
  /// Every parameter that shaped the output, as text.
  public var parameters: [String: String]
  /// Files or directories read, relative to the run directory where possible.
  public var inputs: [String]
  public var startedAt: Date
  public var finishedAt: Date
  public var seconds: Double
  /// Stage-specific facts (merged steps and why, skipped images, ...).
  public var notes: [String: String]

  public init(stage: String, parameters: [String: String], inputs: [String], startedAt: Date,
              finishedAt: Date = Date(), notes: [String: String] = [:]) {
    self.stage = stage
    self.version = aepslVersion
    self.parameters = parameters
    self.inputs = inputs
    self.startedAt = startedAt
    self.finishedAt = finishedAt
    self.seconds = finishedAt.timeIntervalSince(startedAt)
    self.notes = notes
  }

  public static let fileName = "manifest.json"

  public func write(to directory: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    try writeFileAtomically(try encoder.encode(self), to: directory.appendingPathComponent(Self.fileName))
  }

  /// The manifest in `directory`, or nil when the stage there has not finished.
  public static func read(from directory: URL) throws -> StageManifest? {
    let url = directory.appendingPathComponent(fileName)
    guard FileManager.default.fileExists(atPath: url.path) else { return nil }
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    do {
      return try decoder.decode(StageManifest.self, from: Data(contentsOf: url))
    } catch {
      throw MethodError(file: url.path, problem: "is not a valid stage manifest (\(error))",
                        fix: "Delete it to redo the stage.")
    }
  }
}

public let aepslVersion = "0.1.0"

/// An error in the method's stages: names the file, the problem and the fix.
public struct MethodError: Error, CustomStringConvertible, Sendable {
  public let file: String
  public let problem: String
  public let fix: String
  public init(file: String, problem: String, fix: String) {
    self.file = file
    self.problem = problem
    self.fix = fix
  }
  public var description: String { "\(file): \(problem). \(fix)" }
}

/// Creates `url` and its parents, or throws an error naming it (a read-only or full disk).
func makeDirectory(_ url: URL) throws {
  do {
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  } catch {
    let reason = (error as NSError).userInfo[NSUnderlyingErrorKey].map { "\($0)" } ?? error.localizedDescription
    throw MethodError(file: url.path, problem: "cannot be created (\(reason))",
                      fix: "Make its parent directory writable, free disk space, or choose another run directory.")
  }
}

/// The problem an image error states, without the file name (which the caller adds).
func problemText(_ error: Error) -> String {
  switch error {
  case let e as ImagingError: return e.problem
  case let e as DatasetError: return e.problem
  default: return "\(error)"
  }
}

/// A bad image under `--on-bad-image fail`: the file, the problem, the fix, and the option.
func badImageError(_ error: Error, file: String) -> MethodError {
  let fix: String
  switch error {
  case let e as ImagingError: fix = e.fix.map { $0 + "." } ?? ""
  case let e as DatasetError: fix = e.fix.map { $0 + "." } ?? ""
  default: fix = ""
  }
  if fix.contains("--on-bad-image") { return MethodError(file: file, problem: problemText(error), fix: fix) }
  return MethodError(file: file, problem: problemText(error),
                     fix: (fix.isEmpty ? "" : fix + " ") + "To leave bad images out instead (listed in the manifest), pass --on-bad-image skip.")
}
