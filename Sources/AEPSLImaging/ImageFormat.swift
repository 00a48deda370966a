import AEPSLFiles
import CImageCodecs
import Foundation

/// The file formats images and masks are stored in.
public enum ImageFormat: String, Sendable, CaseIterable {
  case jpeg, png

  /// Recognises the format from the first bytes (magic numbers), not the file name.
  public init?(sniffing data: Data) {
    let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF]
    let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    if data.starts(with: jpeg) {
      self = .jpeg
    } else if data.starts(with: png) {
      self = .png
    } else {
      return nil
    }
  }

  /// The format a file name asks for: .jpg/.jpeg or .png (any case).
  public init?(pathExtension: String) {
    switch pathExtension.lowercased() {
    case "jpg", "jpeg": self = .jpeg
    case "png": self = .png
    default: return nil
    }
  }

  /// Throws a clear error for data that is empty or neither JPEG nor PNG.
  static func detect(_ data: Data) throws -> ImageFormat {
    if data.isEmpty {
      throw AEPSLError(kind: .invalidData, problem: "the file is empty (0 bytes)",
                         fix: "Copy or download it again")
    }
    guard let format = ImageFormat(sniffing: data) else {
      let start = data.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")
      throw AEPSLError(kind: .invalidData,
                         problem: "not a JPEG or PNG file (it starts with bytes \(start))",
                         fix: "Only JPEG and PNG are read; convert the file to one of them")
    }
    return format
  }
}

/// An image's size from its header, without decoding the pixels.
public struct ImageHeader: Sendable, Equatable {
  public var format: ImageFormat
  public var width: Int
  public var height: Int
  /// Channels as stored: 1 gray, 3 colour (palette PNGs count as colour), 4 CMYK JPEG.
  public var channels: Int

  public init(data: Data) throws {
    let format = try ImageFormat.detect(data)
    let output = try withBytes(of: data) { bytes, count in
      try runCodec(format.decodeOperation) { result in
        format == .jpeg
          ? aepsl_jpeg_read_header(bytes, count, result)
          : aepsl_png_read_header(bytes, count, result)
      }
    }
    self.format = format
    width = output.width
    height = output.height
    channels = output.channels
  }

  public init(contentsOf url: URL) throws {
    let data = try readFile(url)
    do {
      try self.init(data: data)
    } catch let error as AEPSLError {
      throw error.attributed(to: url)
    }
  }
}

/// Reads a whole file, turning Foundation's error into one that names the file.
func readFile(_ url: URL) throws -> Data {
  do {
    return try Data(contentsOf: url)
  } catch {
    let exists = FileManager.default.fileExists(atPath: url.path)
    throw AEPSLError(
      kind: .fileSystem, file: url.path,
      problem: exists ? "cannot be read (\(error.localizedDescription))" : "does not exist",
      fix: exists ? "Check its permissions" : "Check the path and the dataset layout")
  }
}
