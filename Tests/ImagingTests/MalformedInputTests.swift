import AEPSLFiles
import AEPSLImaging
import Foundation
import Testing

/// One damaged file and what reading it must say.
struct MalformedCase: CustomTestStringConvertible, Sendable {
  var name: String
  var bytes: @Sendable () throws -> Data
  var kind: AEPSLError.Kind
  var phrases: [String]
  var testDescription: String { name }
}

/// Noise, so most of the file is scan data and a cut lands inside the image, not the tables.
private func validJPEG() throws -> Data {
  try Image(width: 96, height: 64, channels: 3, pixels: noiseBytes(96 * 64 * 3, seed: 4)).jpegData(quality: 90)
}

private func validPNG() throws -> Data {
  try Image(width: 16, height: 16, channels: 3, pixels: noiseBytes(16 * 16 * 3)).pngData()
}

/// Flips one bit of the CRC of the first chunk named `type`.
private func corruptingCRC(of type: String, in data: Data) -> Data {
  var bytes = [UInt8](data)
  var offset = 8
  while offset + 8 <= bytes.count {
    let length = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
    let name = String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self)
    if name == type {
      bytes[offset + 8 + length] ^= 0x01
      break
    }
    offset += 12 + length
  }
  return Data(bytes)
}

@Suite("Malformed input is rejected with a clear error")
struct MalformedInputTests {
  static let cases: [MalformedCase] = [
    MalformedCase(name: "zero-byte file", bytes: { Data() }, kind: .invalidData, phrases: ["empty", "0 bytes"]),
    MalformedCase(name: "random bytes", bytes: { Data(noiseBytes(500, seed: 9)) },
                  kind: .invalidData, phrases: ["not a JPEG or PNG", "convert"]),
    MalformedCase(name: "truncated JPEG", bytes: { let data = try validJPEG(); return data.prefix(data.count / 2) },
                  kind: .invalidData, phrases: ["truncated", "again"]),
    MalformedCase(name: "JPEG without its end marker", bytes: { try validJPEG().dropLast(2) },
                  kind: .invalidData, phrases: ["truncated"]),
    MalformedCase(name: "JPEG magic then noise", bytes: { Data([0xFF, 0xD8, 0xFF] + noiseBytes(300)) },
                  kind: .invalidData, phrases: []),
    MalformedCase(name: "CMYK JPEG", bytes: { Fixtures.cmykJPEG },
                  kind: .unsupported, phrases: ["CMYK JPEG is not supported", "sRGB"]),
    MalformedCase(name: "PNG with a bad IHDR CRC", bytes: { try corruptingCRC(of: "IHDR", in: validPNG()) },
                  kind: .invalidData, phrases: ["CRC"]),
    MalformedCase(name: "PNG with a bad IDAT CRC", bytes: { try corruptingCRC(of: "IDAT", in: validPNG()) },
                  kind: .invalidData, phrases: ["CRC"]),
    MalformedCase(name: "truncated PNG", bytes: { try validPNG().dropLast(40) },
                  kind: .invalidData, phrases: ["truncated"]),
    MalformedCase(name: "PNG signature only", bytes: { try validPNG().prefix(8) },
                  kind: .invalidData, phrases: ["truncated"]),
  ]

  @Test("reading the file fails and names it", arguments: cases)
  func readingFails(_ testCase: MalformedCase) throws {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("broken.img")
    try testCase.bytes().write(to: url)
    let error = expectImagingError(testCase.kind, mentioning: testCase.phrases + [url.path]) {
      _ = try Image(contentsOf: url)
    }
    #expect(error?.file == url.path)
  }

  @Test("truncation is not papered over with gray", arguments: [0.1, 0.5, 0.9, 0.99])
  func truncatedJPEGAtSeveralLengths(fraction: Double) throws {
    let data = try validJPEG()
    let kept = data.prefix(Int(Double(data.count) * fraction))
    expectImagingError(.invalidData, mentioning: []) { _ = try Image(jpegData: kept) }
  }

  @Test("an RGB PNG is not a mask")
  func rgbMaskRejected() throws {
    expectImagingError(.unsupported, mentioning: ["RGB", "palette", "class indices"]) {
      _ = try LabelMap(pngData: validPNG())
    }
  }

  @Test("a mask with alpha is not a mask")
  func grayAlphaMaskRejected() {
    let data = PNGBuilder.png(width: 1, height: 1, bitDepth: 8, colorType: PNGBuilder.grayAlpha, rows: [[1, 255]])
    expectImagingError(.unsupported, mentioning: ["gray+alpha"]) { _ = try LabelMap(pngData: data) }
  }

  @Test("a 16-bit mask is refused rather than guessed at")
  func sixteenBitMaskRejected() {
    let data = PNGBuilder.png(width: 2, height: 1, bitDepth: 16, colorType: PNGBuilder.gray, rows: [[0, 1, 0, 2]])
    expectImagingError(.unsupported, mentioning: ["16-bit", "8-bit"]) { _ = try LabelMap(pngData: data) }
  }

  @Test("a JPEG mask file is refused, naming the file")
  func jpegMaskRejected() throws {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("mask.png")
    try validJPEG().write(to: url)
    expectImagingError(.unsupported, mentioning: ["must be a PNG", url.path]) { _ = try LabelMap(contentsOf: url) }
  }

  @Test("a missing file is named")
  func missingFile() {
    let url = URL(fileURLWithPath: "/nonexistent/aepsl/image.jpg")
    expectImagingError(.fileSystem, mentioning: [url.path, "does not exist"]) { _ = try Image(contentsOf: url) }
  }

  @Test("bad encode arguments are refused", arguments: [0, 101])
  func badQuality(quality: Int) {
    let image = Image(width: 2, height: 2, channels: 1)
    expectImagingError(.badArgument, mentioning: ["quality"]) { _ = try image.jpegData(quality: quality) }
  }

  @Test("an unknown extension is refused on write")
  func unknownExtension() {
    let url = URL(fileURLWithPath: "/tmp/out.bmp")
    expectImagingError(.badArgument, mentioning: [".png", url.path]) {
      try Image(width: 1, height: 1, channels: 1).write(to: url)
    }
  }
}
