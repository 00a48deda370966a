import AEPSLFiles
import CImageCodecs
import Foundation

/// What a C codec call was doing, to choose the fix an error message suggests.
enum CodecOperation {
  case decodeJPEG, decodePNG, decodeMask, encodeJPEG, encodePNG

  func fix(for kind: AEPSLError.Kind) -> String? {
    switch (kind, self) {
    case (.invalidData, _):
      return "The file is damaged or incomplete; copy or download it again"
    case (.unsupported, .decodeJPEG):
      return "Convert it to RGB, e.g. `convert in.jpg -colorspace sRGB out.jpg`"
    case (.unsupported, .decodeMask):
      return "Save masks as palette PNGs (like VOC SegmentationClass) or 8-bit gray PNGs of class indices"
    case (.outOfMemory, _):
      return "Free memory or use fewer loader threads"
    default:
      return nil
    }
  }
}

/// The useful part of an aepsl_codec_result once the call succeeded.
struct CodecOutput {
  var width: Int
  var height: Int
  var channels: Int
  /// Owned bytes from the C side (pixels or an encoded file); nil for header reads.
  var bytes: UnsafeMutableBufferPointer<UInt8>?

  /// Copies the bytes into an array and frees the C buffer.
  consuming func takeArray() -> [UInt8] {
    guard let bytes else { return [] }
    defer { free(bytes.baseAddress) }
    return Array(bytes)
  }

  /// Hands the C buffer to Data without copying; Data frees it.
  consuming func takeData() -> Data {
    guard let bytes, let base = bytes.baseAddress else { return Data() }
    return Data(bytesNoCopy: base, count: bytes.count, deallocator: .free)
  }
}

/// Runs one C codec call and turns its status and message into a `CodecOutput` or an
/// `AEPSLError`.
func runCodec(
  _ operation: CodecOperation,
  _ call: (UnsafeMutablePointer<aepsl_codec_result>) -> aepsl_codec_status
) throws -> CodecOutput {
  var result = aepsl_codec_result()
  let status = call(&result)
  guard status == AEPSL_CODEC_OK else {
    aepsl_codec_result_free(&result)
    let message = withUnsafeBytes(of: result.message) { raw in
      String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
    let kind: AEPSLError.Kind
    switch status {
    case AEPSL_CODEC_UNSUPPORTED: kind = .unsupported
    case AEPSL_CODEC_OUT_OF_MEMORY: kind = .outOfMemory
    case AEPSL_CODEC_BAD_ARGUMENT: kind = .badArgument
    default: kind = .invalidData
    }
    throw AEPSLError(kind: kind, problem: message, fix: operation.fix(for: kind))
  }
  let bytes = result.bytes.map { UnsafeMutableBufferPointer(start: $0, count: result.count) }
  return CodecOutput(width: Int(result.width), height: Int(result.height),
                     channels: Int(result.channels), bytes: bytes)
}

/// Calls `body` with the data's bytes as the C functions take them (nil and 0 when empty).
func withBytes<R>(of data: Data, _ body: (UnsafePointer<UInt8>?, Int) throws -> R) rethrows -> R {
  try data.withUnsafeBytes { raw in
    try body(raw.bindMemory(to: UInt8.self).baseAddress, raw.count)
  }
}

extension ImageFormat {
  /// The operation that decodes this format, for the fix an error suggests.
  var decodeOperation: CodecOperation { self == .jpeg ? .decodeJPEG : .decodePNG }
}

extension Image {
  /// Decodes `data` as `format` with its C decoder, to `colorMode`'s channels.
  init(decoding data: Data, as format: ImageFormat, colorMode: ColorMode) throws {
    let output = try withBytes(of: data) { bytes, count in
      try runCodec(format.decodeOperation) { result in
        format == .jpeg
          ? aepsl_jpeg_decode(bytes, count, colorMode.cChannels, result)
          : aepsl_png_decode(bytes, count, colorMode.cChannels, result)
      }
    }
    self.init(width: output.width, height: output.height, channels: output.channels, pixels: output.takeArray())
  }
}
