import AEPSLEngine
import AEPSLImaging
import Foundation

// The drawing primitives of the synthetic dataset: colours, shapes, textures and a
// supersampled canvas that also records which object covers each pixel.

/// HSV in [0, 1] to RGB in [0, 255].
func hsv(_ h: Float, _ s: Float, _ v: Float) -> (Float, Float, Float) {
  let h6 = (h - h.rounded(.down)) * 6
  let i = Int(h6) % 6
  let f = h6 - Float(Int(h6))
  let p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f))
  let rgb: (Float, Float, Float)
  switch i {
  case 0: rgb = (v, t, p)
  case 1: rgb = (q, v, p)
  case 2: rgb = (p, v, t)
  case 3: rgb = (p, q, v)
  case 4: rgb = (t, p, v)
  default: rgb = (v, p, q)
  }
  return (rgb.0 * 255, rgb.1 * 255, rgb.2 * 255)
}

/// A filled region: an inside test in local coordinates (rotated about `center`).
struct Shape {
  var center: (Float, Float)
  var rotation: Float
  /// A radius that bounds the region.
  var extent: Float
  var inside: (Float, Float) -> Bool

  init(center: (Float, Float), rotation: Float, extent: Float, inside: @escaping (Float, Float) -> Bool) {
    self.center = center; self.rotation = rotation; self.extent = extent; self.inside = inside
  }

  func contains(_ x: Float, _ y: Float) -> Bool {
    let dx = x - center.0, dy = y - center.1
    let c = cos(rotation), s = sin(rotation)
    return inside(c * dx + s * dy, -s * dx + c * dy)
  }

  /// Integer pixels (x, y) whose centres are inside; unclipped when `clippedTo` is nil.
  func pixelCenters(clippedTo side: Int?) -> Set<Pair> {
    var result = Set<Pair>()
    let x0 = Int((center.0 - extent).rounded(.down)) - 1, x1 = Int((center.0 + extent).rounded(.up)) + 1
    let y0 = Int((center.1 - extent).rounded(.down)) - 1, y1 = Int((center.1 + extent).rounded(.up)) + 1
    for y in y0...y1 {
      for x in x0...x1 where contains(Float(x) + 0.5, Float(y) + 0.5) {
        if let side, x < 0 || y < 0 || x >= side || y >= side { continue }
        result.insert(Pair(x, y))
      }
    }
    return result
  }
}

struct Pair: Hashable {
  var x: Int, y: Int
  init(_ x: Int, _ y: Int) { self.x = x; self.y = y }
}

/// A surface pattern: 0 flat, 1 linear shade, 2 stripes, 3 speckle, 4 checks, 5 dots.
struct Texture {
  static let bodyKinds = 6

  var kind: Int
  var period: Float
  var angle: Float
  var seed: UInt64

  func offset(_ x: Float, _ y: Float, center: (Float, Float)) -> Float {
    let along = (x - center.0) * cos(angle) + (y - center.1) * sin(angle)
    switch kind {
    case 1: return max(-30, min(30, along * 1.2))
    case 2: return sin(2 * Float.pi * along / period) > 0 ? 16 : -16
    case 3:
      var h = seed ^ (UInt64(bitPattern: Int64(Int(x * 2))) &* 0x9E37_79B9_7F4A_7C15)
        ^ (UInt64(bitPattern: Int64(Int(y * 2))) &* 0xC2B2_AE3D_27D4_EB4F)
      h = (h ^ (h >> 29)) &* 0xBF58_476D_1CE4_E5B9
      h ^= h >> 32
      return Float(h & 0xFF) / 255 * 36 - 18
    case 4:
      let across = -(x - center.0) * sin(angle) + (y - center.1) * cos(angle)
      let a = Int((along / period).rounded(.down)), b = Int((across / period).rounded(.down))
      return (a + b) & 1 == 0 ? 18 : -18
    case 5:
      let across = -(x - center.0) * sin(angle) + (y - center.1) * cos(angle)
      let fa = along / period - (along / period).rounded(), fb = across / period - (across / period).rounded()
      return fa * fa + fb * fb < 0.09 ? -40 : 6
    default: return 0
    }
  }
}

/// A 2x supersampled colour buffer plus per-pixel instance ids (pixel-centre tests).
final class Canvas {
  let width: Int
  let height: Int
  let fineWidth: Int
  let fineHeight: Int
  var color: [Float]
  var instances: [UInt8]
  var partPixels: [Bool]

  init(width: Int, height: Int) {
    self.width = width
    self.height = height
    fineWidth = 2 * width
    fineHeight = 2 * height
    color = [Float](repeating: 0, count: fineWidth * fineHeight * 3)
    instances = [UInt8](repeating: 0, count: width * height)
    partPixels = [Bool](repeating: false, count: width * height)
  }

  func paintBackground(_ f: (Float, Float) -> (Float, Float, Float)) {
    for fy in 0..<fineHeight {
      for fx in 0..<fineWidth {
        let c = f((Float(fx) + 0.5) / 2, (Float(fy) + 0.5) / 2)
        let i = (fy * fineWidth + fx) * 3
        color[i] = c.0; color[i + 1] = c.1; color[i + 2] = c.2
      }
    }
  }

  private func bounds(_ shape: Shape) -> (Int, Int, Int, Int)? {
    let x0 = max(0, Int(((shape.center.0 - shape.extent) * 2).rounded(.down)) - 1)
    let x1 = min(fineWidth - 1, Int(((shape.center.0 + shape.extent) * 2).rounded(.up)) + 1)
    let y0 = max(0, Int(((shape.center.1 - shape.extent) * 2).rounded(.down)) - 1)
    let y1 = min(fineHeight - 1, Int(((shape.center.1 + shape.extent) * 2).rounded(.up)) + 1)
    return x0 <= x1 && y0 <= y1 ? (x0, x1, y0, y1) : nil
  }

  func paint(_ shape: Shape, color base: (Float, Float, Float), texture: Texture, instance: Int?, isPart: Bool = false) {
    guard let (x0, x1, y0, y1) = bounds(shape) else { return }
    for fy in y0...y1 {
      for fx in x0...x1 {
        let x = (Float(fx) + 0.5) / 2, y = (Float(fy) + 0.5) / 2
        guard shape.contains(x, y) else { continue }
        let o = texture.offset(x, y, center: shape.center)
        let i = (fy * fineWidth + fx) * 3
        color[i] = base.0 + o; color[i + 1] = base.1 + o; color[i + 2] = base.2 + o
      }
    }
    if let instance { label(shape, instance: instance, isPart: isPart) }
  }

  /// A part: a disc in the style's two colours laid out by its pattern; `axis` is the
  /// direction (radians) from the body's centre to the part's.
  func paintPart(_ part: (center: (Float, Float), radius: Float), style: SyntheticDataset.ClassStyle, axis: Float,
                 instance: Int) {
    let r = part.radius
    let shape = Shape(center: part.center, rotation: 0, extent: r + 1) { x, y in x * x + y * y <= r * r }
    guard let (x0, x1, y0, y1) = bounds(shape) else { return }
    let ax = cos(axis), ay = sin(axis)
    for fy in y0...y1 {
      for fx in x0...x1 {
        let x = (Float(fx) + 0.5) / 2, y = (Float(fy) + 0.5) / 2
        let dx = x - part.center.0, dy = y - part.center.1
        let d2 = dx * dx + dy * dy
        guard d2 <= r * r else { continue }
        let useInner: Bool
        switch style.pattern {
        case .dot: useInner = d2 <= 0.25 * r * r
        case .halves: useInner = dx * ax + dy * ay > 0
        case .ring: useInner = d2 >= 0.3 * r * r && d2 <= 0.6 * r * r
        case .bar: useInner = abs(-dx * ay + dy * ax) <= 0.22 * r
        }
        let c = useInner ? style.inner : style.outer
        let i = (fy * fineWidth + fx) * 3
        color[i] = Float(c.0); color[i + 1] = Float(c.1); color[i + 2] = Float(c.2)
      }
    }
    label(shape, instance: instance, isPart: true)
  }

  private func label(_ shape: Shape, instance: Int, isPart: Bool) {
    let x0 = max(0, Int(shape.center.0 - shape.extent) - 1), x1 = min(width - 1, Int(shape.center.0 + shape.extent) + 1)
    let y0 = max(0, Int(shape.center.1 - shape.extent) - 1), y1 = min(height - 1, Int(shape.center.1 + shape.extent) + 1)
    guard x0 <= x1 && y0 <= y1 else { return }
    for y in y0...y1 {
      for x in x0...x1 where shape.contains(Float(x) + 0.5, Float(y) + 0.5) {
        instances[y * width + x] = UInt8(instance)
        partPixels[y * width + x] = isPart
      }
    }
  }

  /// Averages the 2x2 subsamples, adds Gaussian sensor noise, rounds to bytes.
  func image(noise: Float, seed: UInt64) -> Image {
    var rng = SeededGenerator(seed: seed)
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
      for x in 0..<width {
        for c in 0..<3 {
          let row = 2 * y * fineWidth, next = (2 * y + 1) * fineWidth
          let a = color[(row + 2 * x) * 3 + c], b = color[(row + 2 * x + 1) * 3 + c]
          let d = color[(next + 2 * x) * 3 + c], e = color[(next + 2 * x + 1) * 3 + c]
          let v = (a + b + d + e) / 4 + noise * rng.nextNormal()
          pixels[(y * width + x) * 3 + c] = UInt8(max(0, min(255, v.rounded())))
        }
      }
    }
    return Image(width: width, height: height, channels: 3, pixels: pixels)
  }
}
