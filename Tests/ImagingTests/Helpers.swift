import AEPSLFiles
import AEPSLImaging
import Foundation
import Testing

/// A smooth ramp (JPEG keeps it within a level or two) with every channel different.
func gradientImage(width: Int, height: Int, channels: Int) -> Image {
  var pixels = [UInt8]()
  pixels.reserveCapacity(width * height * channels)
  for y in 0..<height {
    for x in 0..<width {
      for k in 0..<channels {
        pixels.append(UInt8(40 + x * 100 / max(1, width - 1) + y * 60 / max(1, height - 1) + k * 20))
      }
    }
  }
  return Image(width: width, height: height, channels: channels, pixels: pixels)
}

/// Reproducible noise (a 64-bit LCG), so a failure can be replayed.
func noiseBytes(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
  var state = seed
  return (0..<count).map { _ in
    state = state &* 6364136223846793005 &+ 1442695040888963407
    return UInt8(truncatingIfNeeded: state >> 56)
  }
}

func meanAbsoluteDifference(_ a: Image, _ b: Image) -> Double {
  let total = zip(a.pixels, b.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }
  return Double(total) / Double(a.pixels.count)
}

/// A fresh directory under the system temporary directory, removed by the caller.
func makeTemporaryDirectory() throws -> URL {
  let url = FileManager.default.temporaryDirectory
    .appendingPathComponent("aepsl-imaging-tests-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

/// Expects `body` to throw an AEPSLError of `kind` whose description contains every
/// string in `phrases`, and returns it for further checks.
@discardableResult
func expectImagingError(
  _ kind: AEPSLError.Kind, mentioning phrases: [String],
  sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () throws -> Void
) -> AEPSLError? {
  let error = #expect(throws: AEPSLError.self, sourceLocation: sourceLocation) { try body() }
  guard let error else { return nil }
  #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
  for phrase in phrases {
    #expect(error.description.localizedCaseInsensitiveContains(phrase),
            "\"\(error)\" should mention \"\(phrase)\"", sourceLocation: sourceLocation)
  }
  return error
}
