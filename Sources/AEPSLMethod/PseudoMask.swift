/// What one image's pseudo mask is made from (docs/METHOD.md 1.2).
public struct MinedRegions: Sendable {
  public let width: Int, height: Int
  /// Per labelled class (1-based label): the union of its erased regions over the merged
  /// steps, O_c.
  public var regions: [Int: [Bool]]
  /// Per labelled class: its CAM strength for settling conflicts (the maximum over the
  /// merged steps of the normalised CAMs).
  public var strength: [Int: [Float]]

  public init(width: Int, height: Int, regions: [Int: [Bool]] = [:], strength: [Int: [Float]] = [:]) {
    self.width = width
    self.height = height
    self.regions = regions
    self.strength = strength
  }
}

public enum PseudoMask {
  public static let background: UInt8 = 0
  public static let ignore: UInt8 = 255

  /// Per pixel: class c where only O_c covers it; the class with the higher CAM where
  /// several do; background where `isBackground` is true and no region covers it; 255
  /// elsewhere. Mined object regions win over the background cue: they come from the
  /// image's own labels. `mayBeObject` (nil: everywhere) limits where a region may label
  /// an object; elsewhere the pixel is as if no region covered it.
  public static func build(_ mined: MinedRegions, isBackground: [Bool], mayBeObject: [Bool]? = nil) -> [UInt8] {
    let n = mined.width * mined.height
    precondition(isBackground.count == n, "background cue has \(isBackground.count) pixels, image \(n)")
    precondition(mayBeObject.map { $0.count == n } ?? true, "object cue has \(mayBeObject?.count ?? 0) pixels, image \(n)")
    var mask = [UInt8](repeating: ignore, count: n)
    var best = [Float](repeating: -1, count: n)
    for (label, region) in mined.regions.sorted(by: { $0.key < $1.key }) {
      precondition(region.count == n && label > 0 && label < 255, "bad region for class \(label)")
      let strength = mined.strength[label]
      for i in 0..<n where region[i] && mayBeObject?[i] != false {
        let s = strength?[i] ?? 0
        if s > best[i] { best[i] = s; mask[i] = UInt8(label) }
      }
    }
    for i in 0..<n where mask[i] == ignore && isBackground[i] { mask[i] = background }
    return mask
  }

  /// `mask` with the ignored pixels of each 8-connected salient component that holds object
  /// labels given a class: the one class labelled in it, or where it holds several, per pixel
  /// the one of them with the higher CAM (`strength`). Background labels and components
  /// without object labels are left as they are.
  public static func filled(_ mask: [UInt8], salient: [Bool], width: Int, strength: [Int: [Float]]) -> [UInt8] {
    precondition(salient.count == mask.count, "salient cue has \(salient.count) pixels, mask \(mask.count)")
    var out = mask
    ConnectedComponents.forEach(in: salient, width: width) { component in
      let classes = Set(component.lazy.map { mask[$0] }.filter { $0 != background && $0 != ignore }).sorted()
      guard let first = classes.first else { return }
      for p in component where out[p] == ignore {
        out[p] = classes.count == 1 ? first : classes.max { (strength[Int($0)]?[p] ?? 0) < (strength[Int($1)]?[p] ?? 0) }!
      }
    }
    return out
  }
}
