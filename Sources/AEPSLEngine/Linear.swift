import COpenBLAS

/// Fully connected layer through OpenBLAS.
///
///     input [N, inFeatures] -> output [N, outFeatures];  y = x W^T + b
///     weight [outFeatures, inFeatures] (PyTorch's order), bias [outFeatures]
public final class Linear: Layer {
  public let name: String
  public let inFeatures: Int, outFeatures: Int
  public let weight: Parameter
  public let bias: Parameter
  private var cachedInput: Tensor?

  public init(name: String, inFeatures: Int, outFeatures: Int) {
    self.name = name
    self.inFeatures = inFeatures
    self.outFeatures = outFeatures
    weight = Parameter(name: "\(name).weight", value: Tensor(shape: [outFeatures, inFeatures]))
    bias = Parameter(name: "\(name).bias", value: Tensor(shape: [outFeatures]), decayMultiplier: 0)
  }

  public var parameters: [Parameter] { [weight, bias] }
  public func outputShape(_ s: [Int]) -> [Int] { [s[0], outFeatures] }
  public func multiplyAdds(inputShape: [Int]) -> Int { inputShape[0] * inFeatures * outFeatures }

  public func initializeNormal(std: Float, _ rng: inout SeededGenerator) {
    for i in 0..<weight.value.count { weight.value.data[i] = std * rng.nextNormal() }
    bias.value.zero()
    weight.version += 1
  }

  public func forward(_ x: Tensor, training: Bool) -> Tensor {
    precondition(x.shape.count == 2 && x.shape[1] == inFeatures, "\(name): input \(x.shape), expected [N, \(inFeatures)]")
    let n = x.shape[0]
    let y = Tensor(shape: [n, outFeatures])
    for i in 0..<n { (y.data + i * outFeatures).update(from: bias.value.data, count: outFeatures) }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(outFeatures), Int32(inFeatures),
                1, x.data, Int32(inFeatures), weight.value.data, Int32(inFeatures), 1, y.data, Int32(outFeatures))
    if training { cachedInput = x }
    return y
  }

  public func backward(_ dy: Tensor) -> Tensor {
    guard let x = cachedInput else { preconditionFailure("\(name): backward without a training forward") }
    let n = x.shape[0]
    // dW += dy^T x ; db += sum_n dy ; dx = dy W
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(outFeatures), Int32(inFeatures), Int32(n),
                1, dy.data, Int32(outFeatures), x.data, Int32(inFeatures), 1, weight.grad.data, Int32(inFeatures))
    for i in 0..<n { for o in 0..<outFeatures { bias.grad.data[o] += dy.data[i * outFeatures + o] } }
    let dx = Tensor(shape: x.shape)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(inFeatures), Int32(outFeatures),
                1, dy.data, Int32(outFeatures), weight.value.data, Int32(inFeatures), 0, dx.data, Int32(inFeatures))
    return dx.handedDown()
  }
}
