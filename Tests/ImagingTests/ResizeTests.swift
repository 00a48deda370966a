import AEPSLImaging
import Testing

/// A bilinear resize of one row or plane with values worked out by hand.
struct ResizeCase: CustomTestStringConvertible, Sendable {
  var input: [Float]
  var height: Int, width: Int
  var toHeight: Int, toWidth: Int
  var alignCorners: Bool
  var expected: [Float]
  var testDescription: String {
    "\(height)x\(width) -> \(toHeight)x\(toWidth), alignCorners \(alignCorners)"
  }
}

private func expectClose(_ actual: [Float], _ expected: [Float], tolerance: Float = 1e-4,
                         sourceLocation: SourceLocation = #_sourceLocation) {
  #expect(actual.count == expected.count, sourceLocation: sourceLocation)
  let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
  #expect(worst <= tolerance, "got \(actual), expected \(expected)", sourceLocation: sourceLocation)
}

@Suite("Resizing, flipping, mean pixel")
struct ResizeTests {
  static let cases: [ResizeCase] = [
    // Half-pixel: src = (dst + 0.5) * in/out - 0.5, clamped at 0 -> 0, 0.25, 0.75, 1(.25).
    ResizeCase(input: [0, 10], height: 1, width: 2, toHeight: 1, toWidth: 4, alignCorners: false,
               expected: [0, 2.5, 7.5, 10]),
    // Corners aligned: src = dst * (in-1)/(out-1) = 0, 1/3, 2/3, 1.
    ResizeCase(input: [0, 10], height: 1, width: 2, toHeight: 1, toWidth: 4, alignCorners: true,
               expected: [0, 10.0 / 3, 20.0 / 3, 10]),
    // Downsampling 4 -> 2: half-pixel samples 0.5 and 2.5; aligned samples 0 and 3.
    ResizeCase(input: [0, 10, 20, 30], height: 1, width: 4, toHeight: 1, toWidth: 2, alignCorners: false,
               expected: [5, 25]),
    ResizeCase(input: [0, 10, 20, 30], height: 1, width: 4, toHeight: 1, toWidth: 2, alignCorners: true,
               expected: [0, 30]),
    // 2-D: rows blend like columns (columns 0, 0.25, 0.75, 1 of [[0, 10], [20, 30]]).
    ResizeCase(input: [0, 10, 20, 30], height: 2, width: 2, toHeight: 4, toWidth: 4, alignCorners: false,
               expected: [0, 2.5, 7.5, 10,
                          5, 7.5, 12.5, 15,
                          15, 17.5, 22.5, 25,
                          20, 22.5, 27.5, 30]),
    ResizeCase(input: [0, 10, 20, 30], height: 2, width: 2, toHeight: 3, toWidth: 3, alignCorners: true,
               expected: [0, 5, 10, 10, 15, 20, 20, 25, 30]),
    // To one pixel: aligned takes the corner, half-pixel the centre.
    ResizeCase(input: [0, 10, 20, 30], height: 2, width: 2, toHeight: 1, toWidth: 1, alignCorners: true,
               expected: [0]),
    ResizeCase(input: [0, 10, 20, 30], height: 2, width: 2, toHeight: 1, toWidth: 1, alignCorners: false,
               expected: [15]),
  ]

  @Test("bilinear float planes match hand computations", arguments: cases)
  func floatPlanes(_ c: ResizeCase) {
    let out = resizeBilinear(c.input, channels: 1, height: c.height, width: c.width,
                             toHeight: c.toHeight, toWidth: c.toWidth, alignCorners: c.alignCorners)
    expectClose(out, c.expected)
  }

  @Test("planes are resized independently")
  func severalPlanes() {
    let out = resizeBilinear([0, 10, 100, 50], channels: 2, height: 1, width: 2,
                             toHeight: 1, toWidth: 4, alignCorners: false)
    expectClose(out, [0, 2.5, 7.5, 10, 100, 87.5, 62.5, 50])
  }

  @Test("UInt8 images resize per channel and round to nearest")
  func imageResize() {
    let image = Image(width: 2, height: 1, channels: 3, pixels: [0, 100, 255, 10, 0, 255])
    let out = image.resized(width: 4, height: 1)
    // Channel 0: 0, 2.5, 7.5, 10 -> 0, 3, 8, 10 (halves round up).
    #expect(out.pixels == [0, 100, 255, 3, 75, 255, 8, 25, 255, 10, 0, 255])
    let aligned = image.resized(width: 3, height: 1, alignCorners: true)
    #expect(aligned.pixels == [0, 100, 255, 5, 50, 255, 10, 0, 255])
  }

  @Test("the UInt8 path agrees with the float path", arguments: [false, true])
  func imageMatchesFloat(alignCorners: Bool) {
    let (w, h) = (13, 7)
    let gray = Image(width: w, height: h, channels: 1, pixels: noiseBytes(w * h, seed: 5))
    let out = gray.resized(width: 29, height: 4, alignCorners: alignCorners)
    let reference = resizeBilinear(gray.pixels.map(Float.init), channels: 1, height: h, width: w,
                                   toHeight: 4, toWidth: 29, alignCorners: alignCorners)
    #expect(out.width == 29 && out.height == 4)
    expectClose(out.pixels.map(Float.init), reference.map { ($0 + 0.5).rounded(.down) })
  }

  @Test("resizing to the same size is the identity")
  func identity() {
    let image = Image(width: 5, height: 3, channels: 3, pixels: noiseBytes(45))
    #expect(image.resized(width: 5, height: 3) == image)
    #expect(image.resized(width: 5, height: 3, alignCorners: true) == image)
  }

  @Test("nearest resize of masks copies blocks and never invents labels")
  func nearestMasks() {
    let mask = LabelMap(width: 2, height: 2, labels: [1, 2, 3, 255])
    let up = mask.resized(width: 4, height: 4)
    #expect(up.labels == [1, 1, 2, 2,
                          1, 1, 2, 2,
                          3, 3, 255, 255,
                          3, 3, 255, 255])
    #expect(up.resized(width: 2, height: 2) == mask)

    let noisy = LabelMap(width: 23, height: 17, labels: noiseBytes(23 * 17, seed: 2).map { [0, 5, 255][Int($0) % 3] })
    for (w, h) in [(7, 5), (50, 31), (23, 1)] {
      let resized = noisy.resized(width: w, height: h)
      #expect(resized.width == w && resized.height == h)
      #expect(Set(resized.labels).isSubset(of: [0, 5, 255]))
    }
    #expect(Set(noisy.resized(width: 50, height: 31).labels) == [0, 5, 255])
  }

  @Test("horizontal flip mirrors pixels and labels")
  func flips() {
    let image = Image(width: 3, height: 2, channels: 3, pixels: Array(0..<18))
    #expect(image.flippedHorizontally().pixels == [6, 7, 8, 3, 4, 5, 0, 1, 2,
                                                  15, 16, 17, 12, 13, 14, 9, 10, 11])
    #expect(image.flippedHorizontally().flippedHorizontally() == image)
    let mask = LabelMap(width: 3, height: 1, labels: [1, 2, 255])
    #expect(mask.flippedHorizontally().labels == [255, 2, 1])
  }

  @Test("mean pixel weights images by their pixel count")
  func meanPixel() throws {
    let a = Image(width: 2, height: 2, channels: 3, pixels: [UInt8]([10, 20, 30]).repeated(4))
    let b = Image(width: 2, height: 1, channels: 3, pixels: [UInt8]([40, 80, 255]).repeated(2))
    let mean = try #require(Image.meanPixel(of: [a, b]))
    let expected: [Double] = [120.0 / 6, 240.0 / 6, 630.0 / 6]  // (4 * a + 2 * b) / 6 per channel
    for (m, e) in zip(mean, expected) { #expect(abs(m - e) < 1e-12) }
    #expect(Image.meanPixel(of: [Image]()) == nil)
    let gray = Image(width: 3, height: 1, channels: 1, pixels: [0, 1, 255])
    #expect(Image.meanPixel(of: [gray]) == [256.0 / 3])
  }
}

extension Array {
  func repeated(_ times: Int) -> [Element] { (0..<times).flatMap { _ in self } }
}
