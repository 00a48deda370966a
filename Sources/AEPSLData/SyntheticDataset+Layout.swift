import AEPSLEngine
import Foundation

/// Where the objects of a synthetic scene go, how large they are and what they look like.
extension SyntheticDataset {
  struct ObjectLayout {
    var classIndex: Int
    var bodyShape: BodyShape
    var center: (Float, Float)
    var radius: Float
    var body: Shape
    var bodyColor: (Float, Float, Float)
    var bodyTexture: Texture
    var part: (center: (Float, Float), radius: Float)
    var bodyArea: Int
    var partArea: Int
    var objectArea: Int
    var inImageArea: Int
    /// Pixel indices (in the image) the object covers, before occlusion.
    var pixels: Set<Int>
    var partPixels: Set<Int>
  }

  /// The objects of `plan`, redrawn (up to 200 times) until every one is mostly inside the
  /// image and mostly visible; the last draw is kept when none is.
  func drawLayouts(plan: [Int], u: Float, rng: inout SeededGenerator) -> [ObjectLayout] {
    var layouts: [ObjectLayout] = []
    for attempt in 0..<200 {
      layouts = []
      for (k, c) in plan.enumerated() {
        let near = k > 0 && rng.nextUniform() < 0.6 ? layouts[Int(rng.next() % UInt64(layouts.count))] : nil
        layouts.append(drawLayout(classIndex: c, near: near, u: u, rng: &rng))
      }
      if acceptable(layouts) || attempt == 199 { break }
    }
    return layouts
  }

  static func insideTriangle(_ x: Float, _ y: Float) -> Bool {
    // Vertices (1, 0), (-0.8, 0.95), (-0.8, -0.95).
    x >= -0.8 && 0.95 * (1 - x) / 1.8 >= abs(y)
  }

  /// Inside test of a body shape in coordinates scaled to its radii.
  static func insideBody(_ shape: BodyShape, _ x: Float, _ y: Float, wobble: Float) -> Bool {
    switch shape {
    case .ellipse: return x * x + y * y <= 1
    case .rectangle: return abs(x) <= 0.85 && abs(y) <= 0.85
    case .triangle: return insideTriangle(x * 0.95, y * 0.95)
    case .blob:
      let r = (x * x + y * y).squareRoot()
      return r <= 0.9 * (1 + 0.25 * sin(3 * atan2(y, x) + wobble))
    case .diamond: return abs(x) + abs(y) <= 1.15
    case .capsule:
      let dx = max(0, abs(x) - 0.5)
      return dx * dx + y * y <= 0.36 * 1.1
    }
  }

  /// The body's radius (its longer semi-axis) for a uniform draw `r` and the body's aspect.
  /// With `objectScale`, the object's area (body, about pi * radius^2 * aspect, plus a part
  /// of 20% of it on average) is a log-uniform fraction of the image's.
  private func bodyRadius(_ r: Float, aspect: Float, u: Float) -> Float {
    guard let scale = configuration.objectScale else { return (18 + 10 * r) * u }
    let fraction = scale.lowerBound * pow(scale.upperBound / scale.lowerBound, r)
    let area = fraction * Float(configuration.imageWidth * configuration.imageHeight)
    return (area / (Float.pi * aspect * 1.2)).squareRoot()
  }

  /// A centre for a free-standing body: the middle 60% of the image (the demo's), or with
  /// `objectScale` anywhere the body's radius keeps it inside when it can.
  private func freeCenter(radius: Float, rng: inout SeededGenerator) -> (Float, Float) {
    let w = Float(configuration.imageWidth), h = Float(configuration.imageHeight)
    let a = rng.nextUniform(), b = rng.nextUniform()
    guard configuration.objectScale != nil else { return (w * (0.2 + 0.6 * a), h * (0.2 + 0.6 * b)) }
    func place(_ t: Float, _ side: Float) -> Float {
      let lo = min(radius, side / 2), hi = max(side - radius, side / 2)
      return lo + (hi - lo) * t
    }
    return (place(a, w), place(b, h))
  }

  private func drawLayout(classIndex: Int, near: ObjectLayout?, u: Float, rng: inout SeededGenerator) -> ObjectLayout {
    let width = configuration.imageWidth, height = configuration.imageHeight
    let shapes = BodyShape.allCases
    var bodyShape = Self.preferredShape(classIndex)
    if rng.nextUniform() >= Self.preferredBodyProbability {
      let others = shapes.filter { $0 != bodyShape }
      bodyShape = others[min(others.count - 1, Int(rng.nextUniform() * Float(others.count)))]
    }
    let radiusDraw = rng.nextUniform()
    let aspect = 0.6 + 0.4 * rng.nextUniform()
    let radius = bodyRadius(radiusDraw, aspect: aspect, u: u)
    let rotation = 2 * Float.pi * rng.nextUniform()
    let wobble = 2 * Float.pi * rng.nextUniform()
    var center: (Float, Float)
    if let near {
      let direction = 2 * Float.pi * rng.nextUniform()
      let distance = (near.radius + radius) * (0.55 + 0.4 * rng.nextUniform())
      center = (near.center.0 + distance * cos(direction), near.center.1 + distance * sin(direction))
    } else {
      center = freeCenter(radius: radius, rng: &rng)
    }
    let (ry, rx) = (radius * aspect, radius)
    let body = Shape(center: center, rotation: rotation, extent: 1.3 * radius) { x, y in
      Self.insideBody(bodyShape, x / rx, y / ry, wobble: wobble)
    }
    var hue = rng.nextUniform()
    if rng.nextUniform() < Self.preferredHueProbability {
      hue = Self.bodyHue(classIndex) + 0.08 * (rng.nextUniform() - 0.5)
    }
    let bodyColor = hsv(hue, 0.25 + 0.3 * rng.nextUniform(), 0.4 + 0.45 * rng.nextUniform())
    var textureKind = Self.preferredTexture(classIndex)
    if rng.nextUniform() >= Self.preferredTextureProbability {
      textureKind = (textureKind + 1 + min(Texture.bodyKinds - 2, Int(rng.nextUniform() * Float(Texture.bodyKinds - 1)))) % Texture.bodyKinds
    }
    let bodyTexture = Texture(kind: textureKind, period: (5 + 3 * rng.nextUniform()) * u,
                              angle: 2 * Float.pi * rng.nextUniform(), seed: rng.next())

    // The part: a disc whose area is a fixed fraction of the body's, centred just outside
    // the body's border in a random direction so that it sticks out like a head.
    let bodyPixels = body.pixelCenters(clippedTo: nil)
    let bodyArea = bodyPixels.count
    let fraction = Self.partFraction.lowerBound + (Self.partFraction.upperBound - Self.partFraction.lowerBound) * rng.nextUniform()
    let partRadius = (fraction * Float(bodyArea) / Float.pi).squareRoot()
    let direction = 2 * Float.pi * rng.nextUniform()
    var reach: Float = 0
    // Large bodies walk to their border in coarser steps (the demo's keep 0.25 px).
    let step = configuration.objectScale == nil ? 0.25 : max(0.25, radius / 100)
    while reach < 2 * radius && body.contains(center.0 + reach * cos(direction), center.1 + reach * sin(direction)) {
      reach += step
    }
    reach += 0.25 * partRadius
    let partCenter = (center.0 + reach * cos(direction), center.1 + reach * sin(direction))
    let partShape = Shape(center: partCenter, rotation: 0, extent: partRadius + 1) { x, y in
      x * x + y * y <= partRadius * partRadius
    }
    let partPixels = partShape.pixelCenters(clippedTo: nil)
    let union = bodyPixels.union(partPixels)
    func inside(_ p: Pair) -> Bool { p.x >= 0 && p.x < width && p.y >= 0 && p.y < height }
    let inImage = union.filter(inside)
    return ObjectLayout(
      classIndex: classIndex, bodyShape: bodyShape, center: center, radius: radius, body: body,
      bodyColor: bodyColor, bodyTexture: bodyTexture, part: (partCenter, partRadius),
      bodyArea: bodyArea, partArea: partPixels.count, objectArea: union.count, inImageArea: inImage.count,
      pixels: Set(inImage.map { $0.y * width + $0.x }),
      partPixels: Set(partPixels.filter(inside).map { $0.y * width + $0.x }))
  }

  /// Every object mostly inside the image, at least half visible, its part mostly visible.
  private func acceptable(_ layouts: [ObjectLayout]) -> Bool {
    for (k, layout) in layouts.enumerated() {
      guard Float(layout.inImageArea) >= 0.8 * Float(layout.objectArea),
            Float(layout.partPixels.count) >= 0.9 * Float(layout.partArea) else { return false }
      var covered = Set<Int>()
      for later in layouts[(k + 1)...] { covered.formUnion(later.pixels) }
      let visible = layout.pixels.subtracting(covered).count
      let visiblePart = layout.partPixels.subtracting(covered).count
      guard Float(visible) >= 0.5 * Float(layout.inImageArea),
            Float(visiblePart) >= 0.7 * Float(layout.partArea) else { return false }
    }
    return true
  }
}
