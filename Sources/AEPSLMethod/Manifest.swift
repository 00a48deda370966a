import AEPSLData
import AEPSLFiles
import AEPSLImaging
import Foundation

/// What a finished stage wrote down about itself (docs/METHOD.md section 4: lineage lives in a
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
      throw AEPSLError(file: url.path, problem: "is not a valid stage manifest (\(error))",
                        fix: "Delete it to redo the stage.")
    }
  }
}

extension StageManifest {
  /// The one test of staleness for a stage's output: the manifest in `directory` when its
  /// parameters are `parameters`; nil when the stage has not finished there; an error naming
  /// every changed setting when it finished with others.
  public static func finished(in directory: URL, parameters: [String: String],
                              elsewhere: String = "use another --run") throws -> StageManifest? {
    guard let done = try read(from: directory) else { return nil }
    let changes = changedSettings(from: done.parameters, to: parameters)
    guard changes.isEmpty else {
      throw AEPSLError(file: directory.path, problem: "was made with other settings (\(changes.joined(separator: ", ")))",
                        fix: "Delete \(directory.path) to redo it with the new settings, or \(elsewhere).")
    }
    return done
  }

  /// When the stage in `directory` finished, from its manifest ("" when it has none): a
  /// derived artefact records it among its parameters so that a redone source is noticed,
  /// and a copied run directory (new file times) is not mistaken for one.
  public static func madeAt(_ directory: URL) -> String {
    guard let manifest = try? read(from: directory) else { return "" }
    return ISO8601DateFormatter().string(from: manifest.finishedAt)
  }
}

/// A parameter table as one line (sorted key=value pairs): what a training state records
/// to be resumed only under the same settings.
func settingsText(_ table: [String: String]) -> String {
  table.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ";")
}

/// "key old -> new" for every setting that differs ("-" where one side lacks it), sorted.
func changedSettings(from was: [String: String], to now: [String: String]) -> [String] {
  Set(was.keys).union(now.keys).sorted().filter { was[$0] != now[$0] }.map { "\($0) \(was[$0] ?? "-") -> \(now[$0] ?? "-")" }
}

public let aepslVersion = "0.1.0"

/// Creates `url` and its parents, or throws an error naming it (a read-only or full disk).
func makeDirectory(_ url: URL) throws {
  do {
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  } catch {
    let reason = (error as NSError).userInfo[NSUnderlyingErrorKey].map { "\($0)" } ?? error.localizedDescription
    throw AEPSLError(file: url.path, problem: "cannot be created (\(reason))",
                      fix: "Make its parent directory writable, free disk space, or choose another run directory.")
  }
}

/// The problem an image error states, without the file name (which the caller adds).
func problemText(_ error: Error) -> String {
  (error as? AEPSLError)?.problem ?? "\(error)"
}

/// A bad image under `--on-bad-image fail`: the file, the problem, the fix, and the option.
func badImageError(_ error: Error, file: String) -> AEPSLError {
  let original = error as? AEPSLError
  let kind = original?.kind ?? .invalidData
  let fix = original?.fix.map { $0.hasSuffix(".") ? $0 : $0 + "." } ?? ""
  if fix.contains("--on-bad-image") { return AEPSLError(kind: kind, file: file, problem: problemText(error), fix: fix) }
  return AEPSLError(kind: kind, file: file, problem: problemText(error),
                     fix: (fix.isEmpty ? "" : fix + " ") + "To leave bad images out instead (listed in the manifest), pass --on-bad-image skip.")
}

/// A short, stable name for a list of image ids (FNV-1a of the list, and its length), for
/// parameter tables: a training set that lost or gained an image is another training set.
public func fingerprint(of ids: [String]) -> String {
  var h: UInt64 = 0xCBF2_9CE4_8422_2325
  for b in ids.joined(separator: "\n").utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
  return "\(ids.count) \(String(h, radix: 16))"
}

extension SkippedImage {
  /// The manifest notes listing images a stage left out: how many, each with its reason,
  /// and their ids alone (read back by `StageManifest.skippedIDs`).
  public static func manifestNotes(_ skipped: [SkippedImage]) -> [String: String] {
    ["skipped_bad_images": "\(skipped.count)", "skipped_images": skipped.map(\.description).joined(separator: "\n"),
     "skipped_ids": skipped.map(\.id).joined(separator: "\n")]
  }
}

extension StageManifest {
  /// The ids of the images this stage left out as bad (`SkippedImage.manifestNotes`).
  public var skippedIDs: Set<String> {
    Set((notes["skipped_ids"] ?? "").split(separator: "\n").map(String.init))
  }
}

/// One error slot per index, filled from several threads (each index by one thread only).
final class ErrorSlots: @unchecked Sendable {
  private var slots: [Error?]
  private let lock = NSLock()
  init(count: Int) { slots = Array(repeating: nil, count: count) }
  func set(_ index: Int, _ error: Error) { lock.lock(); slots[index] = error; lock.unlock() }
  func get(_ index: Int) -> Error? { lock.lock(); defer { lock.unlock() }; return slots[index] }
}

/// Removes what a killed earlier run of `stage` left half-written in `directory` (see
/// `removeStaleTemporaries`), saying so when there was any.
func sweepTemporaries(_ directory: URL, stage: String, log: (String) -> Void) {
  let removed = removeStaleTemporaries(under: directory)
  if removed > 0 { log("\(stage): removed \(removed) temporary file\(removed == 1 ? "" : "s") left by a killed run in \(directory.path)") }
}

/// `path` made absolute against the working directory, with `.` and `..` resolved: what a
/// stage records, so that a later stage or the report finds it from anywhere.
public func absolutePath(_ path: String) -> String {
  path.isEmpty ? path : URL(fileURLWithPath: path).standardizedFileURL.path
}

/// Writes `value` as sorted, indented JSON, atomically.
func writeJSON<T: Encodable>(_ value: T, to url: URL) throws {
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
  try writeFileAtomically(try encoder.encode(value), to: url)
}
