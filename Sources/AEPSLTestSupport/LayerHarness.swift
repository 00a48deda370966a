import AEPSLEngine
import Testing

/// One training forward and one backward of the scalar sum(projection * y), the way a
/// network would run a layer: parameter gradients are zeroed first, and the output
/// gradient is handed over in the output's layout.
/// An output of the wrong shape is recorded as an issue (and backward skipped, dx zero)
/// rather than stopping the test run.
public func forwardBackward(_ layer: Layer, _ x: Tensor, projection: HostTensor<Double>,
                            sourceLocation: SourceLocation = #_sourceLocation) -> (y: Tensor, dx: Tensor) {
  for p in layer.parameters { p.grad.zero() }
  let y = layer.forward(x, training: true)
  guard y.shape == projection.shape else {
    Issue.record("\(layer.name): output \(y.shape), expected \(projection.shape)", sourceLocation: sourceLocation)
    return (y, x.zerosLike())
  }
  let dx = layer.backward(projection.tensor(layout: y.layout))
  return (y, dx)
}

/// The layouts a 4-D input with `channels` can come in: NCHW always, nChw8c when the
/// channels are a multiple of 8.
public func inputLayouts(channels: Int) -> [TensorLayout] {
  channels % 8 == 0 ? [.nchw, .nChw8c] : [.nchw]
}

extension Parameter {
  /// Writes new values and bumps the version so layers refresh cached reordered copies.
  public func assign<T: BinaryFloatingPoint & Sendable>(_ host: HostTensor<T>) {
    precondition(host.shape == value.shape, "\(name): \(host.shape) for \(value.shape)")
    for i in 0..<value.count { value.data[i] = Float(host.values[i]) }
    version += 1
  }
}
