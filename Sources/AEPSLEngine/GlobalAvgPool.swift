/// Global average pooling over the spatial positions.
///
///     input [N, C, H, W] (either layout) -> output [N, C]
public final class GlobalAvgPool: Layer {
  public let name: String
  private var inputShape: [Int] = []
  private var inputLayout: TensorLayout = .nchw

  public init(name: String) { self.name = name }

  public func outputShape(_ s: [Int]) -> [Int] { [s[0], s[1]] }

  public func forward(_ x: Tensor, training: Bool) -> Tensor {
    let (n, c, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
    let y = Tensor(shape: [n, c])
    let scale = 1 / Float(hw)
    if x.layout == .nChw8c {
      for ni in 0..<n {
        for cb in 0..<(c / 8) {
          var acc = SIMD8<Float>()
          let base = x.data + (ni * c + cb * 8) * hw
          for p in 0..<hw {
            acc += UnsafeRawPointer(base + p * 8).loadUnaligned(as: SIMD8<Float>.self)
          }
          for k in 0..<8 { y.data[ni * c + cb * 8 + k] = acc[k] * scale }
        }
      }
    } else {
      for i in 0..<(n * c) {
        var s: Float = 0
        let base = x.data + i * hw
        for p in 0..<hw { s += base[p] }
        y.data[i] = s * scale
      }
    }
    if training { inputShape = x.shape; inputLayout = x.layout }
    return y
  }

  public func backward(_ dy: Tensor) -> Tensor {
    precondition(!inputShape.isEmpty, "\(name): backward without a training forward")
    let (n, c, hw) = (inputShape[0], inputShape[1], inputShape[2] * inputShape[3])
    let dx = Tensor(shape: inputShape, layout: inputLayout)
    let scale = 1 / Float(hw)
    for ni in 0..<n {
      for ci in 0..<c {
        let g = dy.data[ni * c + ci] * scale
        if inputLayout == .nChw8c {
          let base = dx.data + (ni * c + (ci / 8) * 8) * hw + ci % 8
          for p in 0..<hw { base[p * 8] = g }
        } else {
          let base = dx.data + (ni * c + ci) * hw
          for p in 0..<hw { base[p] = g }
        }
      }
    }
    return dx
  }
}
