import AEPSLImaging
import Testing

@Suite("Palettes, colour maps and overlays")
struct ColorTests {
  @Test("the VOC palette matches the published colours",
        arguments: [(0, 0, 0, 0), (1, 128, 0, 0), (2, 0, 128, 0), (3, 128, 128, 0),
                    (15, 192, 128, 128), (20, 0, 64, 128), (255, 224, 224, 192)])
  func vocPalette(index: Int, red: Int, green: Int, blue: Int) {
    let color = Palette.voc[UInt8(index)]
    #expect([Int(color.red), Int(color.green), Int(color.blue)] == [red, green, blue])
  }

  @Test("jet runs from dark blue to dark red and clamps")
  func jetEndpoints() {
    let map = ColorMap.jet
    #expect(map.table.count == 768)
    #expect(map.color(0) == (0, 0, 128))
    #expect(map.color(1) == (128, 0, 0))
    #expect(map.color(0.5).green == 255)
    #expect(map.color(-3) == map.color(0))
    #expect(map.color(7) == map.color(1))
    #expect(map.color(.nan) == map.color(0))
    let rendered = map.image(values: [0, 1], width: 2, height: 1)
    #expect(rendered.pixels == [0, 0, 128, 128, 0, 0])
  }

  @Test("a heatmap overlay has the image's size, in RGB, even from a smaller CAM",
        arguments: [1, 3])
  func heatmapOverlaySize(channels: Int) {
    let image = gradientImage(width: 32, height: 24, channels: channels)
    let cam: [Float] = [0, 0.25, 0.5, 0.75, 1, 0.5]
    let overlay = image.overlaying(heatmap: cam, width: 3, height: 2, alpha: 0.5)
    #expect(overlay.width == 32 && overlay.height == 24 && overlay.channels == 3)
  }

  @Test("overlay alpha 0 keeps the image and alpha 1 shows only the colours")
  func heatmapAlpha() {
    let image = gradientImage(width: 4, height: 2, channels: 3)
    let scores = [Float](repeating: 1, count: 8)
    #expect(image.overlaying(heatmap: scores, width: 4, height: 2, alpha: 0) == image)
    let full = image.overlaying(heatmap: scores, width: 4, height: 2, alpha: 1)
    #expect(full.pixels == [UInt8]([128, 0, 0]).repeated(8))
    let half = Image(width: 1, height: 1, channels: 3, pixels: [100, 100, 100])
      .overlaying(heatmap: [0], width: 1, height: 1, alpha: 0.5)
    #expect(half.pixels == [50, 50, 114])  // (100 + 0) / 2, (100 + 128) / 2
  }

  @Test("a label overlay paints VOC colours, ignore in cream")
  func labelOverlay() {
    let gray = Image(width: 3, height: 1, channels: 1, pixels: [200, 200, 200])
    let labels = LabelMap(width: 3, height: 1, labels: [0, 1, 255])
    let painted = gray.overlaying(labels: labels, alpha: 1)
    #expect(painted.channels == 3)
    #expect(painted.pixels == [0, 0, 0, 128, 0, 0, 224, 224, 192])
    let blended = gray.overlaying(labels: labels, alpha: 0.25)
    #expect(Array(blended.pixels[3..<6]) == [182, 150, 150])  // 0.75 * 200 + 0.25 * (128, 0, 0)
  }
}
