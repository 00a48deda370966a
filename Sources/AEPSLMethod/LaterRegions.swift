/// Which parts of a later erasing step's regions count as found (docs/METHOD.md 1.1).
public enum LaterRegions: String, Sendable, Codable, CaseIterable {
  /// Every region the erasing rule makes of every step's CAM (the paper).
  case all
  /// A class's first non-empty region whole; after it, only the connected parts (8-neighbour)
  /// of its region that come within `StepRegions.reach` of what the earlier steps mined for
  /// that class. Erasing looks for the next part of the same object, which adjoins the part
  /// erased before it; a later classifier's region that lies apart from its class's earlier
  /// ones is on background clutter or another object (RESULTS.md, "Later steps' regions").
  /// The default.
  case touching
}

/// One image's regions, step by step: what each labelled class has mined so far, and what
/// each new step's CAMs add under the erasing rule and `LaterRegions`. The erasing stage and
/// the masks stage both go through it, so that what was erased and what is mined agree.
public struct StepRegions: Sendable {
  public let width: Int, height: Int
  public let rule: ErasingRule
  public let delta: Float
  public let later: LaterRegions
  /// How near (in pixels, along x and y) a later part must come to its class's earlier
  /// regions to be kept under `touching`: one cell of the CAM (`cell`), whose upsampled
  /// blobs can leave that much between two parts of one object.
  public let reach: Int
  /// Per label (in the order the CAMs come in): the union of its regions so far.
  public private(set) var mined: [[Bool]]

  public init(labels: Int, width: Int, height: Int, rule: ErasingRule, delta: Float, later: LaterRegions, reach: Int = 1) {
    (self.width, self.height, self.rule, self.delta, self.later, self.reach) = (width, height, rule, delta, later, max(1, reach))
    mined = Array(repeating: Array(repeating: false, count: width * height), count: labels)
  }

  /// One cell of a CAM in image pixels: the network's output stride over the scale from the
  /// image to the working resolution.
  public static func cell(outputStride: Int, workingScale: Double) -> Int {
    max(1, Int((Double(outputStride) / workingScale).rounded(.up)))
  }

  /// Adds the next step's CAMs (one per label, in the order of `mined`) and returns that
  /// step's region per label.
  public mutating func add(cams: [[Float]]) -> [[Bool]] {
    precondition(cams.count == mined.count, "\(cams.count) CAMs for \(mined.count) labels")
    return cams.indices.map { k in
      var region = rule.region(cam: cams[k], delta: delta)
      if later == .touching && mined[k].contains(true) {
        region = Self.parts(of: region, near: Self.dilated(mined[k], by: reach, width: width), width: width)
      }
      for p in region.indices where region[p] { mined[k][p] = true }
      return region
    }
  }

  /// The 8-connected components of `region` that have a pixel in `near`.
  static func parts(of region: [Bool], near: [Bool], width: Int) -> [Bool] {
    var kept = [Bool](repeating: false, count: region.count)
    ConnectedComponents.forEach(in: region, width: width) { component in
      if component.contains(where: { near[$0] }) { for p in component { kept[p] = true } }
    }
    return kept
  }

  /// `mask` grown by `r` pixels along x and y (a (2r+1)-square), one axis at a time.
  static func dilated(_ mask: [Bool], by r: Int, width: Int) -> [Bool] {
    let height = mask.count / width
    func pass(_ input: [Bool], along count: Int, lines: Int, index: (Int, Int) -> Int) -> [Bool] {
      var out = [Bool](repeating: false, count: input.count)
      for line in 0..<lines {
        // Forward: within r after a set pixel; backward: within r before one.
        var last = Int.min / 2
        for i in 0..<count {
          if input[index(line, i)] { last = i }
          if i - last <= r { out[index(line, i)] = true }
        }
        last = Int.max / 2
        for i in stride(from: count - 1, through: 0, by: -1) {
          if input[index(line, i)] { last = i }
          if last - i <= r { out[index(line, i)] = true }
        }
      }
      return out
    }
    let rows = pass(mask, along: width, lines: height) { $0 * width + $1 }
    return pass(rows, along: height, lines: width) { $1 * width + $0 }
  }
}
