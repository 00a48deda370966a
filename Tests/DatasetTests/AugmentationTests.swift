import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation
import Testing
@testable import AEPSLData

@Suite("Augmentation")
struct AugmentationTests {
  static func image(_ w: Int, _ h: Int, seed: UInt64) -> Image {
    var rng = SeededGenerator(seed: seed)
    return Image(width: w, height: h, channels: 3, pixels: (0..<(w * h * 3)).map { _ in UInt8(rng.next() % 256) })
  }

  static func labels(_ w: Int, _ h: Int) -> LabelMap {
    LabelMap(width: w, height: h, labels: (0..<(w * h)).map { UInt8(($0 / 7 + $0 % 5) % 21) })
  }

  /// The plain composition: resize with imaging, pad bottom/right, crop, mirror, normalise.
  static func reference(_ image: Image, _ map: LabelMap, _ p: Augmentation.Placement,
                        _ norm: PixelNormalization) -> ([Float], [UInt8]) {
    let scaled = image.resized(width: p.scaledWidth, height: p.scaledHeight)
    let scaledMap = map.resized(width: p.scaledWidth, height: p.scaledHeight)
    var pixels = [Float](repeating: 0, count: 3 * p.width * p.height)
    var labels = [UInt8](repeating: 255, count: p.width * p.height)
    for y in 0..<p.height {
      for x in 0..<p.width {
        let sx = p.left + (p.flipped ? p.width - 1 - x : x), sy = p.top + y
        guard sx < p.scaledWidth && sy < p.scaledHeight else { continue }  // padding: 0 and 255
        for c in 0..<3 {
          let v = Float(scaled.pixels[(sy * p.scaledWidth + sx) * 3 + c])
          pixels[c * p.width * p.height + y * p.width + x] = (v - norm.mean[c]) / norm.std[c]
        }
        labels[y * p.width + x] = scaledMap[sx, sy]
      }
    }
    return (pixels, labels)
  }

  @Test("the one-pass sampler equals resize, pad, crop and flip done one after another",
        arguments: [(40, 30), (17, 50), (64, 64)])
  func matchesReference(width: Int, height: Int) {
    let image = Self.image(width, height, seed: UInt64(width * height))
    let map = Self.labels(width, height)
    let norm = PixelNormalization.imageNet
    var sawFlip = false, sawPad = false, sawUp = false, sawDown = false
    for trial in 0..<40 {
      var rng = SeededGenerator(seed: UInt64(trial))
      let placement = try! Augmentation.deepLab(crop: 40).placement(width: width, height: height, rng: &rng)
      var pixels = [Float](repeating: .nan, count: 3 * 40 * 40)
      var labels = [UInt8](repeating: 7, count: 40 * 40)
      pixels.withUnsafeMutableBufferPointer { p in
        labels.withUnsafeMutableBufferPointer { l in
          Augmentation.apply(placement, image: image, labelMap: map, normalization: norm,
                             pixels: p.baseAddress!, labels: l.baseAddress!)
        }
      }
      let (expectedPixels, expectedLabels) = Self.reference(image, map, placement, norm)
      #expect(pixels == expectedPixels, "trial \(trial): \(placement)")
      #expect(labels == expectedLabels, "trial \(trial): \(placement)")
      sawFlip = sawFlip || placement.flipped
      sawPad = sawPad || placement.scaledWidth < 40 || placement.scaledHeight < 40
      sawUp = sawUp || placement.scaledWidth > width
      sawDown = sawDown || placement.scaledWidth < width
    }
    #expect(sawFlip && sawPad && sawUp && sawDown, "the trials should cover flips, padding, up- and downscaling")
  }

  @Test("scales are uniform in 0.5...1.5, crops stay inside the padded image, half are flipped")
  func drawStatistics() throws {
    var scales: [Double] = [], flips = 0
    let n = 2000
    for trial in 0..<n {
      var rng = SeededGenerator(seed: 99).split("\(trial)")
      let p = try Augmentation.deepLab(crop: 321).placement(width: 500, height: 375, rng: &rng)
      scales.append(Double(p.scaledWidth) / 500)
      if p.flipped { flips += 1 }
      #expect(p.width == 321 && p.height == 321)
      #expect(p.top >= 0 && p.top + 321 <= max(321, p.scaledHeight))
      #expect(p.left >= 0 && p.left + 321 <= max(321, p.scaledWidth))
    }
    #expect(scales.min()! >= 0.499 && scales.max()! <= 1.501)
    #expect(abs(scales.reduce(0, +) / Double(n) - 1.0) < 0.03)
    #expect(scales.filter { $0 < 0.75 }.count > n / 5)  // uniform, not clustered at 1
    #expect(abs(Double(flips) / Double(n) - 0.5) < 0.05)
  }

  @Test("a working resolution resizes the longer side first, then the random scale applies")
  func longerSide() throws {
    var rng = SeededGenerator(seed: 5)
    let fixed = try Augmentation(crop: 64, randomCrop: true, longerSide: 64).placement(width: 256, height: 128, rng: &rng)
    #expect(fixed.scaledWidth == 64 && fixed.scaledHeight == 32 && fixed.width == 64)
    let portrait = try Augmentation(longerSide: 100).placement(width: 50, height: 200, rng: &rng)
    #expect(portrait.scaledWidth == 25 && portrait.scaledHeight == 100 && portrait.width == 25)
    for trial in 0..<50 {
      var r = SeededGenerator(seed: 6).split("\(trial)")
      let p = try Augmentation(scales: 0.5...1.5, crop: 32, randomCrop: true, longerSide: 80).placement(width: 400, height: 300, rng: &r)
      #expect(p.scaledWidth >= 40 && p.scaledWidth <= 120 && abs(Double(p.scaledHeight) / Double(p.scaledWidth) - 0.75) < 0.03)
    }
  }

  @Test("test time: no augmentation is the identity, padding keeps the image at the top left")
  func testTime() throws {
    let image = Self.image(20, 12, seed: 4)
    let norm = PixelNormalization.imageNet
    var rng = SeededGenerator(seed: 1)
    let identity = try Augmentation.none.placement(width: 20, height: 12, rng: &rng)
    #expect(identity == .init(scaledWidth: 20, scaledHeight: 12, width: 20, height: 12, top: 0, left: 0, flipped: false))
    let padded = try Augmentation.padded(to: 24).placement(width: 20, height: 12, rng: &rng)
    var pixels = [Float](repeating: .nan, count: 3 * 24 * 24)
    pixels.withUnsafeMutableBufferPointer {
      Augmentation.apply(padded, image: image, labelMap: nil, normalization: norm, pixels: $0.baseAddress!, labels: nil)
    }
    let direct = norm.tensor(image)
    for c in 0..<3 {
      for y in 0..<24 {
        for x in 0..<24 {
          let v = pixels[c * 576 + y * 24 + x]
          if x < 20 && y < 12 { #expect(v == direct[0, c, y, x]) } else { #expect(v == 0) }
        }
      }
    }
    #expect(throws: AEPSLError.self) { try Augmentation.padded(to: 16).placement(width: 20, height: 12, rng: &rng) }
  }

  @Test("normalisation is ImageNet's on the 0-255 scale and inverts")
  func normalization() {
    let n = PixelNormalization.imageNet
    #expect(abs((255 - n.mean[0]) / n.std[0] - (1 - 0.485) / 0.229) < 1e-5)
    #expect(n.meanPixel == [124, 116, 104])
    let image = Self.image(9, 5, seed: 8)
    #expect(n.image(from: n.tensor(image), at: 0) == image)
  }
}
