import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation

/// A procedurally generated dataset in the VOC layout, made to exercise adversarial erasing
/// the way photographs do (`aepsl synth`; the README explains the design).
///
/// Each object is a *body* plus a small *part* (15-25% of the body's area: at most about
/// 22% of the object). The part is what names the class: a two-tone disc whose colours only
/// that class uses, the only fully saturated thing in the image. Bodies come from a pool of
/// six shapes and six textures shared by all classes, in muted colours; each class draws its
/// own shape, texture and hue band with probability 0.6 each and anything else otherwise. A
/// classifier can therefore decide from the part alone, so its class activation map covers
/// the part; once the part is erased, the body's weaker, statistical evidence is what a new
/// classifier must use. Parts of all classes share one silhouette, so an erased part's hole
/// does not give the class away.
///
/// Scenes hold 1 to 3 objects of distinct classes that may overlap (later ones in front),
/// on a cluttered background (a shaded gradient, blotches, and rectangles, triangles and
/// bars of muted colours that belong to no class). Masks label body and part with the class
/// and carry a 255 band, about 2 pixels at 128x128, along every object border, as VOC's do.
///
/// Everything follows from the seed: the same configuration gives byte-identical files.
public struct SyntheticDataset: Sendable {
  public struct Configuration: Sendable, Equatable, Codable {
    public var seed: UInt64
    public var trainCount: Int
    public var valCount: Int
    /// Image side in pixels; every length scales with it (128 is the reference).
    public var size: Int
    public var jpegQuality: Int

    public init(seed: UInt64 = 0, trainCount: Int = 800, valCount: Int = 200, size: Int = 128, jpegQuality: Int = 90) {
      self.seed = seed; self.trainCount = trainCount; self.valCount = valCount; self.size = size
      self.jpegQuality = jpegQuality
    }
  }

  /// A class: its name and the colours of its part (outer disc, inner dot).
  public struct ClassStyle: Sendable, Equatable {
    public var name: String
    public var outer: (UInt8, UInt8, UInt8)
    public var inner: (UInt8, UInt8, UInt8)
    public static func == (a: ClassStyle, b: ClassStyle) -> Bool { a.name == b.name }
  }

  public static let styles: [ClassStyle] = [
    ClassStyle(name: "redcap", outer: (222, 32, 32), inner: (250, 232, 40)),
    ClassStyle(name: "bluecap", outer: (30, 64, 222), inner: (245, 245, 245)),
    ClassStyle(name: "greencap", outer: (30, 176, 52), inner: (232, 40, 200)),
    ClassStyle(name: "orangecap", outer: (250, 140, 20), inner: (24, 24, 24)),
    ClassStyle(name: "purplecap", outer: (136, 40, 200), inner: (176, 250, 60)),
    ClassStyle(name: "cyancap", outer: (20, 206, 220), inner: (200, 20, 40)),
  ]

  public static var classes: ClassList { try! ClassList(names: styles.map(\.name)) }

  /// The shared body pool. Class `c` prefers shape `c`.
  public enum BodyShape: Int, Sendable, CaseIterable, Codable {
    case ellipse, rectangle, triangle, blob, diamond, capsule
  }

  /// How often an object's body is its class's own shape (else one of the other five,
  /// uniformly): the shape alone then names the class 60% of the time (chance: 1 in 6).
  public static let preferredBodyProbability: Float = 0.6
  /// The same for the body's texture (flat, shaded, striped, speckled, checked, dotted):
  /// class `c` prefers texture `c`. Shape and texture are drawn independently.
  public static let preferredTextureProbability: Float = 0.6
  /// The same for the body's hue: class `c` draws hue `bodyHues[c]` (within +-0.04) with
  /// this probability, any hue otherwise. Bodies are muted (saturation 0.25...0.55), so
  /// their colour never looks like a part's. Colour is what a small network learns first;
  /// without this cue a tiny classifier does not find the bodies within a few epochs.
  public static let preferredHueProbability: Float = 0.6
  /// Hues (0...1) between the parts' hues, one per class.
  public static let bodyHues: [Float] = [0.55, 0.14, 0.85, 0.30, 0.45, 0.95]
  /// The part's area as a fraction of the body's, uniform in this range; the part then
  /// covers at most about 18% of the object (the bound: 25%).
  public static let partFraction: ClosedRange<Float> = 0.15...0.25
  /// Share of images with 1, 2 and 3 objects.
  public static let objectCountWeights: [Float] = [0.4, 0.4, 0.2]

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

  public let configuration: Configuration
  /// Classes of the objects of every image (train first, then val), drawn from a shuffled
  /// deck so every class appears equally often.
  public let plans: [[Int]]

  public init(configuration: Configuration) {
    precondition(configuration.size >= 32, "synthetic images need a side of at least 32 pixels")
    self.configuration = configuration
    let total = configuration.trainCount + configuration.valCount
    var rng = SeededGenerator(seed: configuration.seed).split("synth plan")
    var deck: [Int] = []
    var plans: [[Int]] = []
    let classCount = Self.styles.count
    for _ in 0..<total {
      let u = rng.nextUniform()
      let k = u < Self.objectCountWeights[0] ? 1 : (u < Self.objectCountWeights[0] + Self.objectCountWeights[1] ? 2 : 3)
      var chosen: [Int] = []
      while chosen.count < k {
        if deck.isEmpty {
          deck = Array(0..<classCount)
          for i in stride(from: deck.count - 1, to: 0, by: -1) { deck.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        }
        // Take the first card not yet in this image.
        let position = deck.firstIndex { !chosen.contains($0) } ?? 0
        let card = deck.remove(at: position)
        if !chosen.contains(card) { chosen.append(card) }
      }
      plans.append(chosen)
    }
    self.plans = plans
  }

  public var count: Int { plans.count }

  public func id(_ index: Int) -> String { String(format: "synth_%06d", index + 1) }

  public func isTrain(_ index: Int) -> Bool { index < configuration.trainCount }

  // MARK: Rendering

  /// Renders image `index` (train images first, then val).
  public func scene(_ index: Int) -> Scene {
    var rng = SeededGenerator(seed: configuration.seed).split("synth image \(index)")
    let size = configuration.size
    let u = Float(size) / 128
    let canvas = Canvas(side: size)

    // Background: a two-colour gradient and low-frequency blotches.
    let c1 = hsv(rng.nextUniform(), 0.1 + 0.3 * rng.nextUniform(), 0.3 + 0.5 * rng.nextUniform())
    let c2 = hsv(rng.nextUniform(), 0.1 + 0.3 * rng.nextUniform(), 0.3 + 0.5 * rng.nextUniform())
    let angle = 2 * Float.pi * rng.nextUniform()
    let grid = 5
    let blotches = (0..<((grid + 1) * (grid + 1) * 3)).map { _ in 16 * rng.nextNormal() }
    canvas.paintBackground { x, y in
      let t = min(1, max(0, ((x / Float(size) - 0.5) * cos(angle) + (y / Float(size) - 0.5) * sin(angle)) + 0.5))
      let gx = x / Float(size) * Float(grid), gy = y / Float(size) * Float(grid)
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

    // Distractors: shapes of any hue that belong to no class. Never discs (the parts'
    // silhouette), smaller than bodies (a body keeps its weak evidence), and muted like
    // bodies: only parts are fully saturated, which a first classifier picks up fast.
    let distractorCount = 5 + Int(rng.nextUniform() * 6)
    for _ in 0..<distractorCount {
      let kind = Int(rng.nextUniform() * 3)
      let cx = Float(size) * rng.nextUniform(), cy = Float(size) * rng.nextUniform()
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

    // Objects.
    let plan = plans[index]
    var layouts: [ObjectLayout] = []
    for attempt in 0..<200 {
      layouts = []
      for (k, c) in plan.enumerated() {
        let near = k > 0 && rng.nextUniform() < 0.6 ? layouts[Int(rng.next() % UInt64(layouts.count))] : nil
        layouts.append(drawLayout(classIndex: c, near: near, u: u, size: size, rng: &rng))
      }
      if acceptable(layouts, size: size) || attempt == 199 { break }
    }
    var objects: [SceneObject] = []
    for (k, layout) in layouts.enumerated() {
      canvas.paint(layout.body, color: layout.bodyColor, texture: layout.bodyTexture, instance: k + 1, isPart: false)
      canvas.paintPart(layout.part, style: Self.styles[layout.classIndex], instance: k + 1)
    }
    let image = canvas.image(noise: 3, seed: rng.next())
    let instances = canvas.instances
    let isPart = canvas.partPixels

    // Masks: class labels from instances, then a 255 band where the instance changes.
    let radius = max(1, Int((0.75 * u).rounded()))
    var labels = [UInt8](repeating: 0, count: size * size)
    for i in 0..<(size * size) where instances[i] > 0 { labels[i] = UInt8(layouts[Int(instances[i]) - 1].classIndex + 1) }
    var banded = labels
    for y in 0..<size {
      for x in 0..<size {
        let me = instances[y * size + x]
        var border = false
        search: for dy in -radius...radius {
          let yy = y + dy
          guard yy >= 0 && yy < size else { continue }
          for dx in -radius...radius {
            let xx = x + dx
            guard xx >= 0 && xx < size else { continue }
            if instances[yy * size + xx] != me { border = true; break search }
          }
        }
        if border { banded[y * size + x] = LabelMap.ignore }
      }
    }

    var annotationObjects: [VOCAnnotation.Object] = []
    for (k, layout) in layouts.enumerated() {
      var visible = 0, visiblePart = 0
      var minX = size, minY = size, maxX = -1, maxY = -1
      for y in 0..<size {
        for x in 0..<size where Int(instances[y * size + x]) == k + 1 {
          visible += 1
          if isPart[y * size + x] { visiblePart += 1 }
          minX = min(minX, x); maxX = max(maxX, x); minY = min(minY, y); maxY = max(maxY, y)
        }
      }
      let box = maxX < 0 ? nil : VOCAnnotation.Box(xmin: minX + 1, ymin: minY + 1, xmax: maxX + 1, ymax: maxY + 1)
      objects.append(SceneObject(classIndex: layout.classIndex, body: layout.bodyShape, texture: layout.bodyTexture.kind, bodyArea: layout.bodyArea,
                                 partArea: layout.partArea, objectArea: layout.objectArea, visibleArea: visible,
                                 visiblePartArea: visiblePart, box: box, truncated: layout.inImageArea < layout.objectArea))
      annotationObjects.append(VOCAnnotation.Object(name: Self.styles[layout.classIndex].name, classIndex: layout.classIndex,
                                                    difficult: false, truncated: layout.inImageArea < layout.objectArea, box: box))
    }
    let id = id(index)
    return Scene(id: id, image: image, mask: LabelMap(width: size, height: size, labels: banded),
                 partMask: isPart.enumerated().map { $0.element && instances[$0.offset] > 0 }, objects: objects,
                 annotation: VOCAnnotation(filename: "\(id).jpg", width: size, height: size, objects: annotationObjects))
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

  private func drawLayout(classIndex: Int, near: ObjectLayout?, u: Float, size: Int,
                          rng: inout SeededGenerator) -> ObjectLayout {
    let shapes = BodyShape.allCases
    var bodyShape = shapes[classIndex % shapes.count]
    if rng.nextUniform() >= Self.preferredBodyProbability {
      let others = shapes.filter { $0 != bodyShape }
      bodyShape = others[min(others.count - 1, Int(rng.nextUniform() * Float(others.count)))]
    }
    let radius = (18 + 10 * rng.nextUniform()) * u
    let aspect = 0.6 + 0.4 * rng.nextUniform()
    let rotation = 2 * Float.pi * rng.nextUniform()
    let wobble = 2 * Float.pi * rng.nextUniform()
    var center: (Float, Float)
    if let near {
      let direction = 2 * Float.pi * rng.nextUniform()
      let distance = (near.radius + radius) * (0.55 + 0.4 * rng.nextUniform())
      center = (near.center.0 + distance * cos(direction), near.center.1 + distance * sin(direction))
    } else {
      center = (Float(size) * (0.2 + 0.6 * rng.nextUniform()), Float(size) * (0.2 + 0.6 * rng.nextUniform()))
    }
    let (ry, rx) = (radius * aspect, radius)
    let body = Shape(center: center, rotation: rotation, extent: 1.3 * radius) { x, y in
      Self.insideBody(bodyShape, x / rx, y / ry, wobble: wobble)
    }
    var hue = rng.nextUniform()
    if rng.nextUniform() < Self.preferredHueProbability {
      hue = Self.bodyHues[classIndex] + 0.08 * (rng.nextUniform() - 0.5)
    }
    let bodyColor = hsv(hue, 0.25 + 0.3 * rng.nextUniform(), 0.4 + 0.45 * rng.nextUniform())
    var textureKind = classIndex % Texture.bodyKinds
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
    while reach < 2 * radius && body.contains(center.0 + reach * cos(direction), center.1 + reach * sin(direction)) {
      reach += 0.25
    }
    reach += 0.25 * partRadius
    let partCenter = (center.0 + reach * cos(direction), center.1 + reach * sin(direction))
    let partShape = Shape(center: partCenter, rotation: 0, extent: partRadius + 1) { x, y in
      x * x + y * y <= partRadius * partRadius
    }
    let partPixels = partShape.pixelCenters(clippedTo: nil)
    let union = bodyPixels.union(partPixels)
    func inside(_ p: Pair) -> Bool { p.x >= 0 && p.x < size && p.y >= 0 && p.y < size }
    let inImage = union.filter(inside)
    return ObjectLayout(
      classIndex: classIndex, bodyShape: bodyShape, center: center, radius: radius, body: body,
      bodyColor: bodyColor, bodyTexture: bodyTexture, part: (partCenter, partRadius),
      bodyArea: bodyArea, partArea: partPixels.count, objectArea: union.count, inImageArea: inImage.count,
      pixels: Set(inImage.map { $0.y * size + $0.x }),
      partPixels: Set(partPixels.filter(inside).map { $0.y * size + $0.x }))
  }

  /// Every object mostly inside the image, at least half visible, its part mostly visible.
  private func acceptable(_ layouts: [ObjectLayout], size: Int) -> Bool {
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
