import AEPSLImaging
import Foundation

/// An image of the report, written as a PNG under RUN/report/img/ and referenced relatively.
struct Tile {
  /// Relative to index.html: "img/<name>.png".
  var source: String
  var width: Int
  var height: Int
  /// Label maps are drawn without smoothing.
  var isLabelMap: Bool
}

/// Writes the report's images into one directory and remembers them, so files of an earlier
/// report that the new one does not use can be removed afterwards.
final class TileWriter {
  let directory: URL
  /// Images larger than this on their longer side are scaled down (bilinear; label maps by
  /// nearest neighbour).
  let maxSide: Int
  private(set) var written: Set<String> = []

  init(directory: URL, maxSide: Int) throws {
    self.directory = directory
    self.maxSide = max(16, maxSide)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  }

  /// A file name from free text (an image id may hold any character): ASCII letters, digits,
  /// '-', '_' and '.' are kept, anything else becomes '_'.
  static func safeName(_ text: String) -> String {
    let kept = text.unicodeScalars.map { s -> Character in
      (s.isASCII && (CharacterSet.alphanumerics.contains(s) || s == "-" || s == "_" || s == ".")) ? Character(s) : "_"
    }
    let name = String(kept).trimmingCharacters(in: CharacterSet(charactersIn: "."))
    return name.isEmpty ? "_" : String(name.prefix(80))
  }

  func scaledSize(width: Int, height: Int) -> (Int, Int) {
    let side = max(width, height)
    guard side > maxSide else { return (width, height) }
    let s = Double(maxSide) / Double(side)
    return (max(1, Int((Double(width) * s).rounded())), max(1, Int((Double(height) * s).rounded())))
  }

  func write(_ image: Image, name: String) throws -> Tile {
    let (w, h) = scaledSize(width: image.width, height: image.height)
    let scaled = (w, h) == (image.width, image.height) ? image : image.resized(width: w, height: h)
    let file = "\(name).png"
    try scaled.write(to: directory.appendingPathComponent(file))
    written.insert(file)
    return Tile(source: "img/\(file)", width: w, height: h, isLabelMap: false)
  }

  /// A label map as a VOC palette PNG (0 black, classes coloured, 255 cream).
  func write(_ labels: LabelMap, name: String, palette: Palette = .voc) throws -> Tile {
    let (w, h) = scaledSize(width: labels.width, height: labels.height)
    let scaled = labels.resized(width: w, height: h)
    let file = "\(name).png"
    try scaled.write(to: directory.appendingPathComponent(file), palette: palette)
    written.insert(file)
    return Tile(source: "img/\(file)", width: w, height: h, isLabelMap: true)
  }

  /// Removes the PNGs of the directory this report did not write (left by an earlier one).
  func removeStale() {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    for name in names where name.hasSuffix(".png") && !written.contains(name) {
      try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
    }
  }
}
