@testable import AEPSLMethod
import Testing

@Suite("Minimum-barrier saliency")
struct SaliencyTests {
  /// A uniform background with one centred square of another colour: the square is the
  /// answer.
  static func square(size: Int, background: (UInt8, UInt8, UInt8), object: (UInt8, UInt8, UInt8)) -> [UInt8] {
    var rgb = [UInt8]()
    for y in 0..<size { for x in 0..<size {
      let inside = abs(y - size / 2) < size / 5 && abs(x - size / 2) < size / 5
      let c = inside ? object : background
      rgb += [c.0, c.1, c.2]
    } }
    return rgb
  }

  @Test(arguments: [((40, 90, 40), (220, 40, 40)), ((200, 200, 200), (20, 20, 120)), ((10, 10, 10), (250, 250, 250))])
  func centredObjectIsSalientAndBorderIsNot(colors: ((UInt8, UInt8, UInt8), (UInt8, UInt8, UInt8))) {
    let size = 48
    let s = MBDSaliency().saliency(rgb: Self.square(size: size, background: colors.0, object: colors.1), width: size, height: size)
    let centre = s[(size / 2) * size + size / 2]
    let corner = s[2 * size + 2]
    #expect(centre > 0.8, "centre saliency \(centre)")
    #expect(corner < 0.1, "corner saliency \(corner)")
    #expect(s.allSatisfy { $0 >= 0 && $0 <= 1 })
  }

  @Test func mbdIsZeroOnTheBorderAndTheBarrierInside() {
    // A 5x5 plane of zeros with a 9 in the middle: the barrier from the border to the centre
    // is 9 - 0.
    var plane = [Float](repeating: 0, count: 25)
    plane[12] = 9
    let d = MBDSaliency().mbd(plane, 5, 5)
    #expect(d[0] == 0)
    #expect(d[12] == 9)
    #expect(d[6] == 0)
  }
}
