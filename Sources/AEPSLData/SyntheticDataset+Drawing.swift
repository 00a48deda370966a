import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation

// The drawing primitives of the synthetic scenes: colours, shapes, textures, the canvas.

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
  let side: Int
  let fine: Int
  var color: [Float]
  var instances: [UInt8]
  var partPixels: [Bool]

  init(side: Int) {
    self.side = side
    fine = 2 * side
    color = [Float](repeating: 0, count: fine * fine * 3)
    instances = [UInt8](repeating: 0, count: side * side)
    partPixels = [Bool](repeating: false, count: side * side)
  }

  func paintBackground(_ f: (Float, Float) -> (Float, Float, Float)) {
    for fy in 0..<fine {
      for fx in 0..<fine {
        let c = f((Float(fx) + 0.5) / 2, (Float(fy) + 0.5) / 2)
        let i = (fy * fine + fx) * 3
        color[i] = c.0; color[i + 1] = c.1; color[i + 2] = c.2
      }
    }
  }

  private func bounds(_ shape: Shape) -> (Int, Int, Int, Int)? {
    let x0 = max(0, Int(((shape.center.0 - shape.extent) * 2).rounded(.down)) - 1)
    let x1 = min(fine - 1, Int(((shape.center.0 + shape.extent) * 2).rounded(.up)) + 1)
    let y0 = max(0, Int(((shape.center.1 - shape.extent) * 2).rounded(.down)) - 1)
    let y1 = min(fine - 1, Int(((shape.center.1 + shape.extent) * 2).rounded(.up)) + 1)
    return x0 <= x1 && y0 <= y1 ? (x0, x1, y0, y1) : nil
  }

  func paint(_ shape: Shape, color base: (Float, Float, Float), texture: Texture, instance: Int?, isPart: Bool = false) {
    guard let (x0, x1, y0, y1) = bounds(shape) else { return }
    for fy in y0...y1 {
      for fx in x0...x1 {
        let x = (Float(fx) + 0.5) / 2, y = (Float(fy) + 0.5) / 2
        guard shape.contains(x, y) else { continue }
        let o = texture.offset(x, y, center: shape.center)
        let i = (fy * fine + fx) * 3
        color[i] = base.0 + o; color[i + 1] = base.1 + o; color[i + 2] = base.2 + o
      }
    }
    if let instance { label(shape, instance: instance, isPart: isPart) }
  }

  func paintPart(_ part: (center: (Float, Float), radius: Float), style: SyntheticDataset.ClassStyle, instance: Int) {
    let r = part.radius
    let shape = Shape(center: part.center, rotation: 0, extent: r + 1) { x, y in x * x + y * y <= r * r }
    guard let (x0, x1, y0, y1) = bounds(shape) else { return }
    for fy in y0...y1 {
      for fx in x0...x1 {
        let x = (Float(fx) + 0.5) / 2, y = (Float(fy) + 0.5) / 2
        let dx = x - part.center.0, dy = y - part.center.1
        let d2 = dx * dx + dy * dy
        guard d2 <= r * r else { continue }
        let c = d2 <= 0.25 * r * r ? style.inner : style.outer
        let i = (fy * fine + fx) * 3
        color[i] = Float(c.0); color[i + 1] = Float(c.1); color[i + 2] = Float(c.2)
      }
    }
    label(shape, instance: instance, isPart: true)
  }

  private func label(_ shape: Shape, instance: Int, isPart: Bool) {
    let x0 = max(0, Int(shape.center.0 - shape.extent) - 1), x1 = min(side - 1, Int(shape.center.0 + shape.extent) + 1)
    let y0 = max(0, Int(shape.center.1 - shape.extent) - 1), y1 = min(side - 1, Int(shape.center.1 + shape.extent) + 1)
    guard x0 <= x1 && y0 <= y1 else { return }
    for y in y0...y1 {
      for x in x0...x1 where shape.contains(Float(x) + 0.5, Float(y) + 0.5) {
        instances[y * side + x] = UInt8(instance)
        partPixels[y * side + x] = isPart
      }
    }
  }

  /// Averages the 2x2 subsamples, adds Gaussian sensor noise, rounds to bytes.
  func image(noise: Float, seed: UInt64) -> Image {
    var rng = SeededGenerator(seed: seed)
    var pixels = [UInt8](repeating: 0, count: side * side * 3)
    for y in 0..<side {
      for x in 0..<side {
        for c in 0..<3 {
          let a = color[((2 * y) * fine + 2 * x) * 3 + c], b = color[((2 * y) * fine + 2 * x + 1) * 3 + c]
          let d = color[((2 * y + 1) * fine + 2 * x) * 3 + c], e = color[((2 * y + 1) * fine + 2 * x + 1) * 3 + c]
          let v = (a + b + d + e) / 4 + noise * rng.nextNormal()
          pixels[(y * side + x) * 3 + c] = UInt8(max(0, min(255, v.rounded())))
        }
      }
    }
    return Image(width: side, height: side, channels: 3, pixels: pixels)
  }
}
