import AEPSLEngine

/// Small generated images for training tests: coloured squares on noise, one colour per
/// class, so a tiny network can learn them from scratch in a few steps.
public struct SyntheticScenes {
  public let images: Tensor      // [N, 3, size, size]
  public let targets: Tensor     // [N, classes], 1 where the class is present
  public let labels: [UInt8]     // [N, size, size]: 0 background, c + 1 for class c
  public let size: Int
  public let classes: Int

  static let colors: [(Float, Float, Float)] = [(1, -1, -1), (-1, 1, -1), (-1, -1, 1), (1, 1, -1), (-1, 1, 1)]

  /// Every image holds at least one class (classes are present with probability 1/2).
  public init(count: Int, size: Int, classes: Int, seed: UInt64) {
    precondition(classes <= Self.colors.count, "at most \(Self.colors.count) classes")
    var rng = SeededGenerator(seed: seed).split("scenes")
    let images = Tensor(shape: [count, 3, size, size])
    let targets = Tensor(shape: [count, classes])
    var labels = [UInt8](repeating: 0, count: count * size * size)
    for n in 0..<count {
      for c in 0..<3 { for r in 0..<size { for q in 0..<size { images[n, c, r, q] = 0.3 * rng.nextNormal() } } }
      var present = (0..<classes).filter { _ in rng.nextUniform() < 0.5 }
      if present.isEmpty { present = [n % classes] }
      for c in present {
        targets[n, c] = 1
        let side = size / 4 + Int(rng.nextUniform() * Float(size / 4))
        let top = Int(rng.nextUniform() * Float(size - side)), left = Int(rng.nextUniform() * Float(size - side))
        let col = Self.colors[c]
        for r in top..<(top + side) {
          for q in left..<(left + side) {
            images[n, 0, r, q] = col.0; images[n, 1, r, q] = col.1; images[n, 2, r, q] = col.2
            labels[(n * size + r) * size + q] = UInt8(c + 1)
          }
        }
      }
    }
    self.images = images
    self.targets = targets
    self.labels = labels
    self.size = size
    self.classes = classes
  }

  /// Labels at every `stride`-th pixel (the centre of each output cell), for score maps at
  /// output stride `stride`.
  public func labels(stride: Int) -> [UInt8] {
    let n = images.shape[0], out = size / stride
    var result: [UInt8] = []
    for i in 0..<n {
      for r in 0..<out { for q in 0..<out { result.append(labels[(i * size + r * stride + stride / 2) * size + q * stride + stride / 2]) } }
    }
    return result
  }
}
