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
    if x.layout != .nchw {
      // [N][C/B][H][W][B]: B running sums per block, one contiguous row of B per position.
      let b = x.layout.blockSize
      var acc = [Float](repeating: 0, count: b)
      for ni in 0..<n {
        for cb in 0..<(c / b) {
          for k in 0..<b { acc[k] = 0 }
          let base = x.data + (ni * c + cb * b) * hw
          for p in 0..<hw { for k in 0..<b { acc[k] += base[p * b + k] } }
          for k in 0..<b { y.data[ni * c + cb * b + k] = acc[k] * scale }
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
    let dx = Tensor.uninitialized(shape: inputShape, layout: inputLayout)
    let scale = 1 / Float(hw)
    let b = inputLayout.blockSize
    // Every element of channel c gets dy[n, c] / HW; with blocks, a position's B channels
    // are contiguous.
    for ni in 0..<n {
      for cb in 0..<(c / b) {
        let base = dx.data + (ni * c + cb * b) * hw
        let g = dy.data + ni * c + cb * b
        for p in 0..<hw { for k in 0..<b { base[p * b + k] = g[k] * scale } }
      }
    }
    return dx.handedDown()
  }
}
