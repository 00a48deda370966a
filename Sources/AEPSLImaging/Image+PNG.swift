import CImageCodecs
import Foundation

extension Image {
  /// Decodes any PNG to 8 bits: palettes are expanded to RGB, alpha and transparency are
  /// dropped, 16-bit samples are scaled to 8 bits, and gamma/ICC chunks are ignored.
  /// (Label masks are read by index with `LabelMap(pngData:)` instead.)
  public init(pngData data: Data, colorMode: ColorMode = .asStored) throws {
    try self.init(decoding: data, as: .png, colorMode: colorMode)
  }

  /// Encodes as an 8-bit gray or RGB PNG (lossless).
  public func pngData() throws -> Data {
    try pixels.withUnsafeBufferPointer { pixels in
      try runCodec(.encodePNG) {
        aepsl_png_encode(pixels.baseAddress, Int32(width), Int32(height), Int32(channels), nil, $0)
      }
    }.takeData()
  }
}

extension LabelMap {
  /// Reads a mask by index, never by colour: a palette PNG gives its palette indices, an
  /// 8-bit (or 1/2/4-bit) gray PNG its gray values. RGB and 16-bit masks throw.
  public init(pngData data: Data) throws {
    let output = try withBytes(of: data) { bytes, count in
      try runCodec(.decodeMask) { aepsl_png_decode_indices(bytes, count, $0) }
    }
    self.init(width: output.width, height: output.height, labels: output.takeArray())
  }

  /// Encodes as a palette PNG whose indices are the labels, like VOC's SegmentationClass.
  public func pngData(palette: Palette = .voc) throws -> Data {
    try labels.withUnsafeBufferPointer { labels in
      try palette.colors.withUnsafeBufferPointer { colors in
        try runCodec(.encodePNG) {
          aepsl_png_encode(labels.baseAddress, Int32(width), Int32(height), 1, colors.baseAddress, $0)
        }
      }
    }.takeData()
  }
}
