import AEPSLImaging
import AEPSLFiles
import Foundation
import Testing

@Suite("JPEG and PNG codecs")
struct CodecTests {
  @Test("JPEG round trip stays within a few levels", arguments: [1, 3], [false, true])
  func jpegRoundTrip(channels: Int, progressive: Bool) throws {
    let image = gradientImage(width: 37, height: 23, channels: channels)
    let data = try image.jpegData(quality: 95, progressive: progressive)
    let decoded = try Image(jpegData: data)
    #expect(decoded.width == 37 && decoded.height == 23 && decoded.channels == channels)
    #expect(meanAbsoluteDifference(image, decoded) < 2.0)
  }

  @Test("progressive encoding writes a progressive frame (SOF2), baseline does not")
  func progressiveMarker() throws {
    let image = gradientImage(width: 64, height: 48, channels: 3)
    let sof2 = Data([0xFF, 0xC2])
    let sof0 = Data([0xFF, 0xC0])
    let progressive = try image.jpegData(quality: 90, progressive: true)
    let baseline = try image.jpegData(quality: 90, progressive: false)
    #expect(progressive.range(of: sof2) != nil)
    #expect(baseline.range(of: sof2) == nil && baseline.range(of: sof0) != nil)
    #expect(try Image(jpegData: progressive).pixels.count == 64 * 48 * 3)
  }

  @Test("lower JPEG quality gives a smaller file")
  func jpegQuality() throws {
    let image = Image(width: 64, height: 64, channels: 3, pixels: noiseBytes(64 * 64 * 3))
    #expect(try image.jpegData(quality: 30).count < image.jpegData(quality: 95).count)
  }

  @Test("colour modes convert on decode", arguments: [ImageFormat.jpeg, .png])
  func colorModes(format: ImageFormat) throws {
    let rgb = gradientImage(width: 16, height: 8, channels: 3)
    let gray = gradientImage(width: 16, height: 8, channels: 1)
    func encode(_ image: Image) throws -> Data {
      format == .jpeg ? try image.jpegData(quality: 100) : try image.pngData()
    }
    func decode(_ data: Data, _ mode: ColorMode) throws -> Image {
      format == .jpeg ? try Image(jpegData: data, colorMode: mode) : try Image(pngData: data, colorMode: mode)
    }
    let grayAsRGB = try decode(encode(gray), .rgb)
    #expect(grayAsRGB.channels == 3)
    #expect(meanAbsoluteDifference(grayAsRGB, gray.converted(toChannels: 3)) < 1.0)
    let rgbAsGray = try decode(encode(rgb), .gray)
    #expect(rgbAsGray.channels == 1)
    #expect(meanAbsoluteDifference(rgbAsGray, rgb.converted(toChannels: 1)) < 1.5)
    #expect(try decode(encode(gray), .asStored).channels == 1)
  }

  @Test("PNG round trip is exact", arguments: [1, 3])
  func pngRoundTrip(channels: Int) throws {
    let image = Image(width: 19, height: 11, channels: channels, pixels: noiseBytes(19 * 11 * channels))
    #expect(try Image(pngData: image.pngData()) == image)
  }

  @Test("palette masks are read back by index, and carry VOC colours")
  func paletteMaskRoundTrip() throws {
    let labels: [UInt8] = [0, 1, 2, 15, 20, 255, 7, 0, 3, 255, 1, 19]
    let mask = LabelMap(width: 4, height: 3, labels: labels)
    let data = try mask.pngData()
    #expect(try LabelMap(pngData: data) == mask)
    // Decoded as an image, the same file shows palette colours, not indices.
    let colors = try Image(pngData: data)
    #expect(colors.channels == 3)
    #expect(Array(colors.pixels[3..<6]) == [128, 0, 0])  // label 1
    #expect(Array(colors.pixels[15..<18]) == [224, 224, 192])  // label 255
  }

  @Test("a gray PNG is read as indices")
  func grayMask() throws {
    let values: [UInt8] = [0, 1, 2, 255, 5, 5]
    let gray = Image(width: 3, height: 2, channels: 1, pixels: values)
    #expect(try LabelMap(pngData: gray.pngData()).labels == values)
  }

  @Test("4-bit palette and 1-bit gray masks keep their raw indices")
  func subByteMasks() throws {
    // 4 pixels a row at 4 bits: indices 1, 2, 15, 0.
    let palette = PNGBuilder.png(width: 4, height: 1, bitDepth: 4, colorType: PNGBuilder.palette,
                                 rows: [[0x12, 0xF0]], palette: Palette.voc.colors.prefix(48).map { $0 })
    #expect(try LabelMap(pngData: palette).labels == [1, 2, 15, 0])
    // 1-bit gray 1 0 1 1: an index 1, not the 255 that gray expansion would give.
    let binary = PNGBuilder.png(width: 4, height: 1, bitDepth: 1, colorType: PNGBuilder.gray, rows: [[0b1011_0000]])
    #expect(try LabelMap(pngData: binary).labels == [1, 0, 1, 1])
    // As an image, the same 1-bit file is scaled to full range.
    #expect(try Image(pngData: binary).pixels == [255, 0, 255, 255])
  }

  @Test("16-bit PNG images are scaled to 8 bits")
  func sixteenBitImage() throws {
    let data = PNGBuilder.png(width: 2, height: 1, bitDepth: 16, colorType: PNGBuilder.gray,
                              rows: [[0xFF, 0xFF, 0x80, 0x00]])
    let image = try Image(pngData: data)
    #expect(image.channels == 1)
    #expect(image.pixels == [255, 128])
  }

  @Test("alpha is dropped from RGBA and gray+alpha images")
  func alphaDropped() throws {
    let rgba = PNGBuilder.png(width: 1, height: 1, bitDepth: 8, colorType: PNGBuilder.rgba, rows: [[10, 20, 30, 0]])
    #expect(try Image(pngData: rgba) == Image(width: 1, height: 1, channels: 3, pixels: [10, 20, 30]))
    let grayAlpha = PNGBuilder.png(width: 1, height: 1, bitDepth: 8, colorType: PNGBuilder.grayAlpha, rows: [[77, 9]])
    #expect(try Image(pngData: grayAlpha) == Image(width: 1, height: 1, channels: 1, pixels: [77]))
  }

  @Test("headers give size and channels without decoding")
  func headers() throws {
    let image = gradientImage(width: 31, height: 17, channels: 3)
    #expect(try ImageHeader(data: image.jpegData()) == ImageHeader(data: image.jpegData(progressive: true)))
    let jpeg = try ImageHeader(data: image.jpegData())
    #expect(jpeg.format == .jpeg && jpeg.width == 31 && jpeg.height == 17 && jpeg.channels == 3)
    let png = try ImageHeader(data: LabelMap(width: 5, height: 9).pngData())
    #expect(png.format == .png && png.width == 5 && png.height == 9 && png.channels == 3)
    let cmyk = try ImageHeader(data: Fixtures.cmykJPEG)
    #expect(cmyk.channels == 4)
  }

  @Test("files are recognised by content, written atomically, and read back")
  func fileRoundTrip() throws {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let image = Image(width: 8, height: 6, channels: 3, pixels: noiseBytes(8 * 6 * 3, seed: 7))
    // A PNG under a .jpg name still reads as PNG: detection goes by magic bytes.
    let misnamed = directory.appendingPathComponent("really-a-png.jpg")
    try writeFileAtomically(image.pngData(), to: misnamed)
    #expect(try Image(contentsOf: misnamed) == image)

    let png = directory.appendingPathComponent("image.png")
    try image.write(to: png)
    #expect(try Image(contentsOf: png) == image)
    let jpeg = directory.appendingPathComponent("image.JPEG")
    try image.write(to: jpeg, jpegQuality: 90)
    #expect(try ImageHeader(contentsOf: jpeg).format == .jpeg)

    let maskURL = directory.appendingPathComponent("mask.png")
    let mask = LabelMap(width: 8, height: 6, labels: noiseBytes(48, seed: 3).map { $0 % 21 })
    try mask.write(to: maskURL)
    #expect(try LabelMap(contentsOf: maskURL) == mask)
    // No temporary files are left behind.
    let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
    #expect(names == ["image.JPEG", "image.png", "mask.png", "really-a-png.jpg"])
  }

  @Test("writeFileAtomically replaces an existing file and names a missing directory")
  func atomicWrite() throws {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("data.bin")
    try writeFileAtomically(Data([1, 2, 3]), to: url)
    try writeFileAtomically(Data([4, 5]), to: url)
    #expect(try Data(contentsOf: url) == Data([4, 5]))
    let missing = directory.appendingPathComponent("no/such/dir/data.bin")
    let error = #expect(throws: AEPSLError.self) { try writeFileAtomically(Data([1]), to: missing) }
    #expect(error?.description.contains(missing.path) == true)
  }
}
