import AEPSLFiles
import Foundation

/// The foreground classes of a dataset, in label order: class `i` (0-based) is label `i + 1`
/// in masks; 0 is background and 255 ignore, so there are at most 254 classes.
public struct ClassList: Sendable, Equatable, CustomStringConvertible {
  public let names: [String]
  private let indexByName: [String: Int]

  /// The 20 PASCAL VOC classes in VOC order.
  public static let voc = ClassList(uncheckedNames: [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
  ])

  /// Checks the names: non-empty, no whitespace, no duplicates, not "background", at most 254.
  public init(names: [String], file: String? = nil) throws {
    func fail(_ problem: String, _ fix: String) -> AEPSLError {
      AEPSLError(kind: .invalidData, file: file, problem: problem, fix: fix)
    }
    guard !names.isEmpty else {
      throw fail("no class names", "List one foreground class a line")
    }
    guard names.count <= 254 else {
      throw fail("\(names.count) classes; labels 1...254 allow at most 254",
                 "Merge classes or drop some")
    }
    var seen: [String: Int] = [:]
    for (i, name) in names.enumerated() {
      let line = i + 1
      guard !name.isEmpty, !name.contains(where: \.isWhitespace) else {
        throw fail("class \(line) '\(name)' is empty or contains whitespace",
                   "Write one class name a line, without spaces")
      }
      guard !["background", "__background__", "_background_"].contains(name.lowercased()) else {
        throw fail("class \(line) is '\(name)', but background is implicit (label 0)",
                   "Remove that line: list foreground classes only")
      }
      if let previous = seen[name] {
        throw fail("class '\(name)' is listed twice (classes \(previous) and \(line))",
                   "Remove the duplicate")
      }
      seen[name] = line
    }
    self.init(uncheckedNames: names)
  }

  private init(uncheckedNames names: [String]) {
    self.names = names
    var index: [String: Int] = [:]
    for (i, name) in names.enumerated() { index[name] = i }
    indexByName = index
  }

  /// Reads classes.txt: one foreground class a line; blank lines are skipped.
  public init(contentsOf url: URL) throws {
    let data = try readDatasetFile(url, what: "class list")
    guard let text = String(data: data, encoding: .utf8) else {
      throw AEPSLError(kind: .invalidData, file: url.path, problem: "not UTF-8 text",
                         fix: "Save classes.txt as UTF-8, one class name a line")
    }
    let names = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
      .map { $0.trimmingCharacters(in: .whitespaces) }
      .filter { !$0.isEmpty }
    try self.init(names: names, file: url.path)
  }

  public var count: Int { names.count }

  /// The 0-based index of `name`, or nil when it is not a class.
  public func index(of name: String) -> Int? { indexByName[name] }

  /// The text of classes.txt for this list.
  public var fileContents: String { names.map { $0 + "\n" }.joined() }

  public var description: String { names.joined(separator: ", ") }

  public static func == (a: ClassList, b: ClassList) -> Bool { a.names == b.names }
}
