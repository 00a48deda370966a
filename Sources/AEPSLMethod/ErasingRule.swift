/// How a class activation map becomes the discriminative region to erase (docs/METHOD.md 1.1).
public enum ErasingRule: String, Sendable, Codable, CaseIterable {
  /// Pixels whose normalised CAM is at least 1 - delta (the default, delta 0.2).
  case maxRatio = "max-ratio"
  /// The delta fraction of pixels with the highest CAM (ties included), among positive ones.
  case topFraction = "top-fraction"

  /// The region of a CAM normalised to a maximum of 1 (an all-zero CAM gives no region).
  public func region(cam: [Float], delta: Float) -> [Bool] {
    guard let peak = cam.max(), peak > 0 else { return Array(repeating: false, count: cam.count) }
    switch self {
    case .maxRatio:
      let threshold = (1 - delta) * peak
      return cam.map { $0 >= threshold && $0 > 0 }
    case .topFraction:
      let keep = Int((Float(cam.count) * delta).rounded(.up))
      guard keep > 0 else { return Array(repeating: false, count: cam.count) }
      let sorted = cam.sorted(by: >)
      let threshold = sorted[min(keep, sorted.count) - 1]
      return cam.map { $0 >= threshold && $0 > 0 }
    }
  }
}

/// Normalises a CAM to a maximum of 1 in place (an all-zero map stays zero).
public func normaliseToPeak(_ cam: inout [Float]) {
  guard let peak = cam.max(), peak > 0 else { return }
  let inv = 1 / peak
  for i in cam.indices { cam[i] *= inv }
}

/// When adversarial erasing stops (docs/METHOD.md 1.1): a step has converged when its final-epoch
/// loss is finite and at most `ratio` times step 1's. The first step that has not is dropped
/// and erasing ends; the steps before it are merged.
public struct StoppingRule: Sendable, Equatable {
  public var ratio: Float

  public init(ratio: Float) { self.ratio = ratio }

  public func converged(finalLoss: Float, firstStepLoss: Float) -> Bool {
    finalLoss.isFinite && finalLoss <= ratio * firstStepLoss
  }

  /// After the step whose final loss is the last of `finalLosses` (step 1 first): why
  /// erasing stops there without merging that step, or nil when the step is merged. Step 1
  /// is always merged. The erasing stage calls this after every step it trains.
  public func failure(finalLosses: [Float]) -> String? {
    guard finalLosses.count > 1, let first = finalLosses.first, let last = finalLosses.last,
          !converged(finalLoss: last, firstStepLoss: first) else { return nil }
    let t = finalLosses.count
    return String(format: "step %d did not converge: final loss %.4f > %.2f x step 1's %.4f; merged steps 1-%d",
                  t, last, ratio, first, t - 1)
  }
}
