import AEPSLEngine
import Foundation

/// A procedurally generated dataset in the VOC layout, made to exercise adversarial erasing
/// the way photographs do (`aepsl synth`; the README explains the design).
///
/// Each object is a *body* plus a small *part* (15-25% of the body's area: at most about
/// 22% of the object). The part is what names the class: a two-tone disc whose colours and
/// pattern only that class uses, the only fully saturated thing in the image. Bodies come
/// from a pool of six shapes and six textures shared by all classes, in muted colours; each
/// class draws its own shape, texture and hue band with probability 0.6 each and anything
/// else otherwise. A classifier can therefore decide from the part alone, so its class
/// activation map covers the part; once the part is erased, the body's weaker, statistical
/// evidence is what a new classifier must use. Parts of all classes share one silhouette,
/// so an erased part's hole does not give the class away.
///
/// The demo's 6 classes differ in their parts' colours. Beyond 6 (`classCount` up to 24)
/// classes share those colour pairs and differ in the part's pattern (a centre dot, two
/// halves, a ring, a bar) and in their bodies' preferences, so no single colour names a class.
///
/// Scenes hold 1 to 3 objects (`objectsPerImage`: any range up to 5) of distinct classes
/// that may overlap (later ones in front), on a cluttered background (a shaded gradient,
/// blotches, and rectangles, triangles and bars of muted colours that belong to no class).
/// Masks label body and part with the class and carry a 255 band, about 2 pixels at
/// 128x128, along every object border, as VOC's do.
///
/// Images are numbered train first, then val, then test; each is drawn from its own
/// generator, so adding test images (or more of any later split) changes no earlier file.
/// Everything follows from the seed: the same configuration gives byte-identical files.
public struct SyntheticDataset: Sendable {
  /// The generator's settings. Options left nil are the demo's, and then the demo's files
  /// come out byte for byte as they always did.
  public struct Configuration: Sendable, Equatable, Codable {
    public var seed: UInt64
    public var trainCount: Int
    public var valCount: Int
    /// Image side in pixels when `width` and `height` are nil; every length scales with the
    /// shorter side (128 is the reference).
    public var size: Int
    public var jpegQuality: Int
    /// Test images, numbered after val (nil: none).
    public var testCount: Int?
    /// Image width and height (nil: `size`).
    public var width: Int?
    public var height: Int?
    /// Foreground classes, 1...`SyntheticDataset.maxClasses` (nil: the demo's 6).
    public var classCount: Int?
    /// Each object's area (body and part) as a fraction of the image's, drawn log-uniformly
    /// from this range (nil: the demo's radii, objects of about 4-18% of a square image).
    public var objectScale: ClosedRange<Float>?
    /// Objects per image, uniformly (nil: the demo's 1, 2 or 3 with weights 0.4, 0.4, 0.2).
    public var objectsPerImage: ClosedRange<Int>?

    public init(seed: UInt64 = 0, trainCount: Int = 800, valCount: Int = 200, size: Int = 128, jpegQuality: Int = 90,
                testCount: Int? = nil, width: Int? = nil, height: Int? = nil, classCount: Int? = nil,
                objectScale: ClosedRange<Float>? = nil, objectsPerImage: ClosedRange<Int>? = nil) {
      self.seed = seed; self.trainCount = trainCount; self.valCount = valCount; self.size = size
      self.jpegQuality = jpegQuality; self.testCount = testCount; self.width = width; self.height = height
      self.classCount = classCount; self.objectScale = objectScale; self.objectsPerImage = objectsPerImage
    }

    public var imageWidth: Int { width ?? size }
    public var imageHeight: Int { height ?? size }
    public var classTotal: Int { classCount ?? SyntheticDataset.styles.count }
    public var testTotal: Int { testCount ?? 0 }
    public var imageTotal: Int { trainCount + valCount + testTotal }

    /// Why this configuration cannot be rendered, or nil.
    public var problem: String? {
      if trainCount < 0 || valCount < 0 || testTotal < 0 || imageTotal < 1 {
        return "the image counts must not be negative and must add up to at least 1"
      }
      if min(imageWidth, imageHeight) < 32 || max(imageWidth, imageHeight) > 4096 {
        return "images must be 32 to 4096 pixels a side, not \(imageWidth)x\(imageHeight)"
      }
      if !(1...SyntheticDataset.maxClasses).contains(classTotal) {
        return "the class count must be 1 to \(SyntheticDataset.maxClasses), not \(classTotal)"
      }
      if let r = objectScale, !(r.lowerBound > 0 && r.upperBound <= 0.8) {
        return "the object scale must lie in (0, 0.8] of the image's area, not \(r)"
      }
      if let r = objectsPerImage, !(r.lowerBound >= 1 && r.upperBound <= min(5, classTotal)) {
        return "objects per image must lie in 1...\(min(5, classTotal)) (distinct classes, at most 5), not \(r)"
      }
      return nil
    }
  }

  public let configuration: Configuration
  /// Classes of the objects of every image (train, val, then test), drawn from a shuffled
  /// deck so every class appears equally often.
  public let plans: [[Int]]

  public init(configuration: Configuration) {
    precondition(configuration.problem == nil, "synthetic dataset: \(configuration.problem ?? "")")
    self.configuration = configuration
    var rng = SeededGenerator(seed: configuration.seed).split("synth plan")
    var deck: [Int] = []
    var plans: [[Int]] = []
    let classCount = configuration.classTotal
    for _ in 0..<configuration.imageTotal {
      let k = Self.objectCount(rng.nextUniform(), configuration.objectsPerImage)
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

  /// The number of objects for a uniform draw `u`.
  static func objectCount(_ u: Float, _ range: ClosedRange<Int>?) -> Int {
    guard let range else {
      let w = objectCountWeights
      return u < w[0] ? 1 : (u < w[0] + w[1] ? 2 : 3)
    }
    return min(range.upperBound, range.lowerBound + Int(u * Float(range.count)))
  }

  public var count: Int { plans.count }

  public func id(_ index: Int) -> String { String(format: "synth_%06d", index + 1) }

  public func isTrain(_ index: Int) -> Bool { index < configuration.trainCount }

  /// The split image `index` belongs to: train, val or test.
  public func split(_ index: Int) -> String {
    index < configuration.trainCount ? "train" : (index < configuration.trainCount + configuration.valCount ? "val" : "test")
  }

  /// The class styles of this dataset, in class order.
  public var styles: [ClassStyle] { Array(Self.allStyles.prefix(configuration.classTotal)) }

  public var classes: ClassList { try! ClassList(names: styles.map(\.name)) }
}
