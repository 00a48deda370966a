/// Per-pixel label distributions after inference.
public struct Marginals: Sendable {
  public let width: Int
  public let height: Int
  public let labels: Int
  /// [pixel][labels padded to a multiple of 8].
  let storage: [Float]
  var stride: Int { (labels + 7) / 8 * 8 }

  init(copying q: UnsafePointer<SIMD8<Float>>, width: Int, height: Int, labels: Int) {
    self.width = width
    self.height = height
    self.labels = labels
    let count = width * height * ((labels + 7) / 8 * 8)
    let raw = UnsafeRawPointer(q).assumingMemoryBound(to: Float.self)
    storage = Array(UnsafeBufferPointer(start: raw, count: count))
  }

  /// Q(label) at pixel y * width + x.
  public func probability(label: Int, pixel: Int) -> Float { storage[pixel * stride + label] }

  /// All marginals as [labels][height][width].
  public func channelsFirst() -> [Float] {
    let n = width * height, s = stride
    var out = [Float](repeating: 0, count: labels * n)
    for i in 0..<n { for l in 0..<labels { out[l * n + i] = storage[i * s + l] } }
    return out
  }

  /// The most probable label of every pixel (the first on ties), [height][width].
  public func labelMap() -> [Int32] {
    storage.withUnsafeBufferPointer { raw in
      Self.argmax(UnsafeRawPointer(raw.baseAddress!).assumingMemoryBound(to: SIMD8<Float>.self),
                  pixels: width * height, labels: labels)
    }
  }

  static func argmax(_ q: UnsafePointer<SIMD8<Float>>, pixels: Int, labels: Int) -> [Int32] {
    let stride = (labels + 7) / 8 * 8
    let raw = UnsafeRawPointer(q).assumingMemoryBound(to: Float.self)
    return (0..<pixels).map { i in
      let row = raw + i * stride
      var best = 0
      for l in 1..<max(1, labels) where row[l] > row[best] { best = l }
      return Int32(best)
    }
  }
}
