import AEPSLFiles
import CImageCodecs
import Foundation

/// The channel layout a decoder returns.
public enum ColorMode: Sendable {
  /// Gray files give 1 channel, colour files 3.
  case asStored
  /// Always 1 channel (ITU-R 601 luma).
  case gray
  /// Always 3 channels; what a training loader wants.
  case rgb

  var cChannels: Int32 {
    switch self {
    case .asStored: 0
    case .gray: 1
    case .rgb: 3
    }
  }
}

extension Image {
  /// Decodes a baseline or progressive JPEG. CMYK JPEGs and truncated data throw.
  public init(jpegData data: Data, colorMode: ColorMode = .asStored) throws {
    try self.init(decoding: data, as: .jpeg, colorMode: colorMode)
  }

  /// Encodes as JPEG. `quality` is 1...100 (libjpeg's scale; 95 keeps artefacts below what
  /// training notices); progressive files are a little smaller and load in passes.
  public func jpegData(quality: Int = 95, progressive: Bool = false) throws -> Data {
    guard (1...100).contains(quality) else {
      throw AEPSLError(kind: .badArgument, problem: "JPEG quality \(quality) is out of range",
                         fix: "Use a quality from 1 to 100")
    }
    return try pixels.withUnsafeBufferPointer { pixels in
      try runCodec(.encodeJPEG) {
        aepsl_jpeg_encode(pixels.baseAddress, Int32(width), Int32(height), Int32(channels),
                          Int32(quality), progressive ? 1 : 0, $0)
      }
    }.takeData()
  }
}
