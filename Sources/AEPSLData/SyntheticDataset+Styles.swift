/// What a class looks like: its part's colours and pattern, and the body shape, texture and
/// hue it prefers.
extension SyntheticDataset {
  /// How the two colours of a part are laid out. The silhouette is always a disc.
  public enum PartPattern: Int, Sendable, CaseIterable, Codable {
    /// The outer colour with an inner dot (the demo's six classes).
    case dot
    /// Two halves, the inner colour on the half away from the body.
    case halves
    /// The outer colour with a ring of the inner colour.
    case ring
    /// The outer colour with a bar of the inner colour pointing away from the body.
    case bar
  }

  /// A class: its name and the colours and pattern of its part (outer colour, inner colour).
  public struct ClassStyle: Sendable, Equatable {
    public var name: String
    public var outer: (UInt8, UInt8, UInt8)
    public var inner: (UInt8, UInt8, UInt8)
    public var pattern: PartPattern
    public static func == (a: ClassStyle, b: ClassStyle) -> Bool { a.name == b.name }
  }

  /// The six colour pairs of the parts, by name.
  static let partColors: [(name: String, outer: (UInt8, UInt8, UInt8), inner: (UInt8, UInt8, UInt8))] = [
    ("red", (222, 32, 32), (250, 232, 40)),
    ("blue", (30, 64, 222), (245, 245, 245)),
    ("green", (30, 176, 52), (232, 40, 200)),
    ("orange", (250, 140, 20), (24, 24, 24)),
    ("purple", (136, 40, 200), (176, 250, 60)),
    ("cyan", (20, 206, 220), (200, 20, 40)),
  ]

  /// Every class the generator can draw: six colour pairs times four patterns. Class `c`
  /// uses colour pair `c % 6` and pattern `c / 6`; the first six are the demo's.
  public static let allStyles: [ClassStyle] = PartPattern.allCases.flatMap { pattern in
    partColors.map { color in
      let suffix = ["cap", "half", "ring", "bar"][pattern.rawValue]
      return ClassStyle(name: color.name + suffix, outer: color.outer, inner: color.inner, pattern: pattern)
    }
  }

  public static var maxClasses: Int { allStyles.count }

  /// The demo's six classes.
  public static var styles: [ClassStyle] { Array(allStyles.prefix(6)) }

  /// The demo's class list.
  public static var classes: ClassList { try! ClassList(names: styles.map(\.name)) }

  /// The shared body pool. Class `c` prefers shape `c % 6`.
  public enum BodyShape: Int, Sendable, CaseIterable, Codable {
    case ellipse, rectangle, triangle, blob, diamond, capsule
  }

  /// How often an object's body is its class's own shape (else one of the other five,
  /// uniformly): the shape alone then names the class 60% of the time (chance: 1 in 6).
  public static let preferredBodyProbability: Float = 0.6
  /// The same for the body's texture (flat, shaded, striped, speckled, checked, dotted).
  /// Shape and texture are drawn independently.
  public static let preferredTextureProbability: Float = 0.6
  /// The same for the body's hue: class `c` draws `bodyHue(c)` (within +-0.04) with this
  /// probability, any hue otherwise. Bodies are muted (saturation 0.25...0.55), so their
  /// colour never looks like a part's. Colour is what a small network learns first; without
  /// this cue a tiny classifier does not find the bodies within a few epochs.
  public static let preferredHueProbability: Float = 0.6
  /// Hues (0...1) between the parts' hues, one per colour pair.
  public static let bodyHues: [Float] = [0.55, 0.14, 0.85, 0.30, 0.45, 0.95]
  /// The part's area as a fraction of the body's, uniform in this range; the part then
  /// covers at most about 18% of the object (the bound: 25%).
  public static let partFraction: ClosedRange<Float> = 0.15...0.25
  /// Share of images with 1, 2 and 3 objects (the demo's).
  public static let objectCountWeights: [Float] = [0.4, 0.4, 0.2]

  /// Class `c`'s preferred body: shape `c % 6`, texture `(c + g) % 6` and hue
  /// `bodyHues[(c + 2g) % 6]` for pattern group `g = c / 6`, so that classes sharing a
  /// part's colours share no body preference, and the demo's classes keep theirs.
  static func preferredShape(_ c: Int) -> BodyShape { BodyShape.allCases[c % BodyShape.allCases.count] }
  static func preferredTexture(_ c: Int) -> Int { (c + c / 6) % Texture.bodyKinds }
  static func bodyHue(_ c: Int) -> Float { bodyHues[(c + 2 * (c / 6)) % bodyHues.count] }
}
