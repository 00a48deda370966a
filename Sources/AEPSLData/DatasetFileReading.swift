import AEPSLFiles
import AEPSLImaging
import Foundation

/// Every file the dataset code reads goes through here, so tests can prove which files a
/// code path opens (see `FileReadLog`).
func readDatasetFile(_ url: URL, what: String) throws -> Data {
  FileReadLog.shared.record(url)
  do {
    return try Data(contentsOf: url)
  } catch {
    let exists = FileManager.default.fileExists(atPath: url.path)
    throw AEPSLError(
      kind: exists ? .invalidData : .missingFile, file: url.path,
      problem: exists ? "\(what) cannot be read (\(error.localizedDescription))" : "missing \(what)",
      fix: exists ? "Check its permissions" : "Check the path and the dataset layout (docs/METHOD.md section 4)")
  }
}

/// Decodes an image file as RGB, naming the file in any error.
///
/// The header is read first: an image outside `ImageLimits` is refused before its pixels
/// are allocated. Used for every image the stages read, dataset or not.
public func readRGBImage(_ url: URL) throws -> Image {
  try decodeRGBImage(readDatasetFile(url, what: "image"), file: url)
}

/// Decodes a dataset image's bytes as RGB within `ImageLimits`, naming `url` in any error.
func decodeRGBImage(_ data: Data, file url: URL) throws -> Image {
  do {
    let header = try ImageHeader(data: data)
    try ImageLimits.check(width: header.width, height: header.height, file: url.path)
    if data.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try Image(pngData: data, colorMode: .rgb) }
    return try Image(jpegData: data, colorMode: .rgb)
  } catch var error as AEPSLError {
    if error.file == nil { error.file = url.path }
    throw error
  }
}

/// Decodes a label mask PNG by palette index, naming the file in any error.
func readLabelMap(_ url: URL) throws -> LabelMap {
  try decodeLabelMap(readDatasetFile(url, what: "mask"), file: url)
}

/// Decodes a mask's bytes by palette index within `ImageLimits`, naming `url` in any error.
func decodeLabelMap(_ data: Data, file url: URL) throws -> LabelMap {
  do {
    let header = try ImageHeader(data: data)
    if header.width.multipliedReportingOverflow(by: header.height).overflow
        || header.width * header.height > ImageLimits.maximumPixels {
      throw AEPSLError(kind: .invalidData, file: url.path,
                         problem: "the mask is \(header.width)x\(header.height) pixels, more than the limit of \(ImageLimits.maximumPixels) pixels",
                         fix: "Masks must have their image's size; check the file")
    }
    return try LabelMap(pngData: data)
  } catch var error as AEPSLError {
    if error.file == nil { error.file = url.path }
    throw error
  }
}

/// Records the paths of files read while enabled. Internal: for tests that prove a code path
/// never opens a file (training never reads a training image's mask).
final class FileReadLog: @unchecked Sendable {
  static let shared = FileReadLog()
  private let lock = NSLock()
  private var recording = 0
  private var paths: [String] = []

  func record(_ url: URL) {
    lock.lock()
    defer { lock.unlock() }
    if recording > 0 { paths.append(url.standardizedFileURL.path) }
  }

  /// Runs `body` with recording on and returns the paths read under `prefix` meanwhile
  /// (other tests may read other files concurrently).
  func paths<R>(under prefix: URL, during body: () throws -> R) rethrows -> (R, [String]) {
    lock.lock(); recording += 1; lock.unlock()
    defer { lock.lock(); recording -= 1; if recording == 0 { paths.removeAll() }; lock.unlock() }
    let result = try body()
    let root = prefix.standardizedFileURL.path
    lock.lock()
    let seen = paths.filter { $0.hasPrefix(root) }
    lock.unlock()
    return (result, seen)
  }
}
