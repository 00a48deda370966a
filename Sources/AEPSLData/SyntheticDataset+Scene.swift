import AEPSLEngine
import AEPSLImaging
import Foundation

/// Rendering one image of the synthetic dataset: background, clutter, objects, mask and
/// annotation.
extension SyntheticDataset {
  /// What one object of a scene is, for tests and statistics. Areas count pixel centres and
  /// ignore the image border and occlusion; `visibleArea` does not.
  public struct SceneObject: Sendable, Equatable {
    public var classIndex: Int
    public var body: BodyShape
    /// 0 flat, 1 shaded, 2 striped, 3 speckled, 4 checked, 5 dotted.
    public var texture: Int
    public var bodyArea: Int
    public var partArea: Int
    /// Body and part together.
    public var objectArea: Int
    public var visibleArea: Int
    public var visiblePartArea: Int
    /// The visible pixels' box (nil if an object ended up hidden).
    public var box: VOCAnnotation.Box?
    public var truncated: Bool

    public var partRatio: Double { Double(partArea) / Double(max(1, objectArea)) }
  }

  public struct Scene: Sendable {
    public var id: String
    public var image: Image
    /// 0 background, class + 1, 255 on object borders.
    public var mask: LabelMap
    /// 1 where a visible pixel belongs to an object's part (for tests; not written).
    public var partMask: [Bool]
    public var objects: [SceneObject]
    public var annotation: VOCAnnotation
  }

  /// Renders image `index` (train images first, then val, then test).
  public func scene(_ index: Int) -> Scene {
    var rng = SeededGenerator(seed: configuration.seed).split("synth image \(index)")
    let width = configuration.imageWidth, height = configuration.imageHeight
    let u = Float(min(width, height)) / 128
    let canvas = Canvas(width: width, height: height)
    paintBackground(canvas, rng: &rng)
    paintDistractors(canvas, u: u, rng: &rng)

    let layouts = drawLayouts(plan: plans[index], u: u, rng: &rng)
    for (k, layout) in layouts.enumerated() {
      canvas.paint(layout.body, color: layout.bodyColor, texture: layout.bodyTexture, instance: k + 1, isPart: false)
      let axis = atan2(layout.part.center.1 - layout.center.1, layout.part.center.0 - layout.center.0)
      canvas.paintPart(layout.part, style: Self.allStyles[layout.classIndex], axis: axis, instance: k + 1)
    }
    let image = canvas.image(noise: 3, seed: rng.next())
    let mask = bandedMask(canvas.instances, layouts: layouts, radius: max(1, Int((0.75 * u).rounded())))
    let (objects, annotation) = describe(layouts, canvas: canvas, id: id(index))
    return Scene(id: id(index), image: image, mask: mask,
                 partMask: canvas.partPixels.enumerated().map { $0.element && canvas.instances[$0.offset] > 0 },
                 objects: objects, annotation: annotation)
  }

  /// A two-colour gradient and low-frequency blotches.
  private func paintBackground(_ canvas: Canvas, rng: inout SeededGenerator) {
    let width = Float(canvas.width), height = Float(canvas.height)
    let c1 = hsv(rng.nextUniform(), 0.1 + 0.3 * rng.nextUniform(), 0.3 + 0.5 * rng.nextUniform())
    let c2 = hsv(rng.nextUniform(), 0.1 + 0.3 * rng.nextUniform(), 0.3 + 0.5 * rng.nextUniform())
    let angle = 2 * Float.pi * rng.nextUniform()
    let grid = 5
    let blotches = (0..<((grid + 1) * (grid + 1) * 3)).map { _ in 16 * rng.nextNormal() }
    canvas.paintBackground { x, y in
      let t = min(1, max(0, ((x / width - 0.5) * cos(angle) + (y / height - 0.5) * sin(angle)) + 0.5))
      let gx = x / width * Float(grid), gy = y / height * Float(grid)
      let ix = min(grid - 1, Int(gx)), iy = min(grid - 1, Int(gy))
      let fx = gx - Float(ix), fy = gy - Float(iy)
      var color: (Float, Float, Float) = (0, 0, 0)
      for c in 0..<3 {
        func b(_ i: Int, _ j: Int) -> Float { blotches[((j * (grid + 1)) + i) * 3 + c] }
        let blotch = (b(ix, iy) * (1 - fx) + b(ix + 1, iy) * fx) * (1 - fy) + (b(ix, iy + 1) * (1 - fx) + b(ix + 1, iy + 1) * fx) * fy
        let base = [c1.0, c1.1, c1.2][c] * (1 - t) + [c2.0, c2.1, c2.2][c] * t
        if c == 0 { color.0 = base + blotch } else if c == 1 { color.1 = base + blotch } else { color.2 = base + blotch }
      }
      return color
    }
  }

  /// Shapes of any hue that belong to no class. Never discs (the parts' silhouette),
  /// smaller than bodies (a body keeps its weak evidence), and muted like bodies: only
  /// parts are fully saturated, which a first classifier picks up fast. A wide image gets
  /// more of them, in proportion to its area over its shorter side's square.
  private func paintDistractors(_ canvas: Canvas, u: Float, rng: inout SeededGenerator) {
    let width = Float(canvas.width), height = Float(canvas.height)
    var distractorCount = 5 + Int(rng.nextUniform() * 6)
    if canvas.width != canvas.height {
      distractorCount = Int((Float(distractorCount) * max(width, height) / min(width, height)).rounded())
    }
    for _ in 0..<distractorCount {
      let kind = Int(rng.nextUniform() * 3)
      let cx = width * rng.nextUniform(), cy = height * rng.nextUniform()
      let rotation = 2 * Float.pi * rng.nextUniform()
      let color = hsv(rng.nextUniform(), 0.1 + 0.5 * rng.nextUniform(), 0.25 + 0.65 * rng.nextUniform())
      let texture = Texture(kind: Int(rng.nextUniform() * 2), period: (4 + 4 * rng.nextUniform()) * u,
                            angle: 2 * Float.pi * rng.nextUniform(), seed: rng.next())
      let shape: Shape
      switch kind {
      case 0:
        let a = (3 + 7 * rng.nextUniform()) * u, b = (2 + 6 * rng.nextUniform()) * u
        shape = Shape(center: (cx, cy), rotation: rotation, extent: a + b) { x, y in abs(x) <= a && abs(y) <= b }
      case 1:
        let r = (5 + 7 * rng.nextUniform()) * u
        shape = Shape(center: (cx, cy), rotation: rotation, extent: r) { x, y in
          Self.insideTriangle(x / r, y / r)
        }
      default:
        let length = (8 + 22 * rng.nextUniform()) * u, width = (0.7 + 1.3 * rng.nextUniform()) * u
        shape = Shape(center: (cx, cy), rotation: rotation, extent: length + width) { x, y in
          abs(x) <= length && abs(y) <= width
        }
      }
      canvas.paint(shape, color: color, texture: texture, instance: nil)
    }
  }

  /// Class labels from instances, then a 255 band of `radius` where the instance changes.
  private func bandedMask(_ instances: [UInt8], layouts: [ObjectLayout], radius: Int) -> LabelMap {
    let width = configuration.imageWidth, height = configuration.imageHeight
    var labels = [UInt8](repeating: 0, count: width * height)
    for i in 0..<(width * height) where instances[i] > 0 { labels[i] = UInt8(layouts[Int(instances[i]) - 1].classIndex + 1) }
    var banded = labels
    for y in 0..<height {
      for x in 0..<width {
        let me = instances[y * width + x]
        var border = false
        search: for dy in -radius...radius {
          let yy = y + dy
          guard yy >= 0 && yy < height else { continue }
          for dx in -radius...radius {
            let xx = x + dx
            guard xx >= 0 && xx < width else { continue }
            if instances[yy * width + xx] != me { border = true; break search }
          }
        }
        if border { banded[y * width + x] = LabelMap.ignore }
      }
    }
    return LabelMap(width: width, height: height, labels: banded)
  }

  /// The objects as they ended up (visible areas, boxes) and the VOC annotation.
  private func describe(_ layouts: [ObjectLayout], canvas: Canvas, id: String) -> ([SceneObject], VOCAnnotation) {
    let width = canvas.width, height = canvas.height
    var objects: [SceneObject] = []
    var annotationObjects: [VOCAnnotation.Object] = []
    for (k, layout) in layouts.enumerated() {
      var visible = 0, visiblePart = 0
      var minX = width, minY = height, maxX = -1, maxY = -1
      for y in 0..<height {
        for x in 0..<width where Int(canvas.instances[y * width + x]) == k + 1 {
          visible += 1
          if canvas.partPixels[y * width + x] { visiblePart += 1 }
          minX = min(minX, x); maxX = max(maxX, x); minY = min(minY, y); maxY = max(maxY, y)
        }
      }
      let box = maxX < 0 ? nil : VOCAnnotation.Box(xmin: minX + 1, ymin: minY + 1, xmax: maxX + 1, ymax: maxY + 1)
      let truncated = layout.inImageArea < layout.objectArea
      objects.append(SceneObject(classIndex: layout.classIndex, body: layout.bodyShape, texture: layout.bodyTexture.kind,
                                 bodyArea: layout.bodyArea, partArea: layout.partArea, objectArea: layout.objectArea,
                                 visibleArea: visible, visiblePartArea: visiblePart, box: box, truncated: truncated))
      annotationObjects.append(VOCAnnotation.Object(name: Self.allStyles[layout.classIndex].name, classIndex: layout.classIndex,
                                                    difficult: false, truncated: truncated, box: box))
    }
    return (objects, VOCAnnotation(filename: "\(id).jpg", width: width, height: height, objects: annotationObjects))
  }
}
