#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Plain loop references for every engine layer and loss, generic over the scalar so they
/// run in Double for gradient checks. They follow PyTorch's definitions and are written for
/// clarity, not speed: one output element at a time.
public enum Reference {}

// MARK: - Element-wise functions a generic scalar lacks

@inlinable func exponential<T: BinaryFloatingPoint>(_ x: T) -> T { T(Foundation.exp(Double(x))) }
@inlinable func logarithm<T: BinaryFloatingPoint>(_ x: T) -> T { T(Foundation.log(Double(x))) }

extension Reference {
  // MARK: Convolution

  /// 2-D convolution (cross-correlation, as PyTorch's `conv2d`).
  ///
  ///     x [N, C, H, W], weight [O, C, k, k], bias [O] -> [N, O, Ho, Wo]
  ///     Ho = (H + 2 padding - dilation (k - 1) - 1) / stride + 1
  @inlinable public static func conv2d<T>(_ x: HostTensor<T>, weight: HostTensor<T>, bias: HostTensor<T>?,
                                          stride: Int = 1, padding: Int = 0, dilation: Int = 1) -> HostTensor<T> {
    let (n, c, h, w) = x.dims4
    let (o, wc, k, k2) = weight.dims4
    precondition(wc == c && k == k2, "weight \(weight.shape) for input \(x.shape)")
    let extent = dilation * (k - 1) + 1
    let ho = (h + 2 * padding - extent) / stride + 1
    let wo = (w + 2 * padding - extent) / stride + 1
    var y = HostTensor<T>(zeros: [n, o, ho, wo])
    for ni in 0..<n {
      for oi in 0..<o {
        for r in 0..<ho {
          for q in 0..<wo {
            var s: T = bias.map { $0.values[oi] } ?? 0
            for ci in 0..<c {
              for a in 0..<k {
                let ir = r * stride - padding + a * dilation
                guard ir >= 0 && ir < h else { continue }
                for b in 0..<k {
                  let iq = q * stride - padding + b * dilation
                  guard iq >= 0 && iq < w else { continue }
                  s += x[ni, ci, ir, iq] * weight[oi, ci, a, b]
                }
              }
            }
            y[ni, oi, r, q] = s
          }
        }
      }
    }
    return y
  }

  // MARK: Pooling

  /// Output size of max pooling by PyTorch's rule (`pooling_output_shape`): with
  /// `ceilMode` the division rounds up, but a last window that would start in the right
  /// padding (at or beyond H + padding) is dropped.
  public static func pooledSize(_ size: Int, kernel: Int, stride: Int, padding: Int, ceilMode: Bool) -> Int {
    let numerator = size + 2 * padding - (kernel - 1) - 1 + (ceilMode ? stride - 1 : 0)
    var out = numerator / stride + 1  // numerator >= 0 for valid geometry
    if ceilMode && (out - 1) * stride >= size + padding { out -= 1 }
    return out
  }

  /// The input positions a pooling window covers (padding and the ceil-mode overhang
  /// excluded).
  @usableFromInline static func window(_ o: Int, size: Int, kernel: Int, stride: Int, padding: Int) -> Range<Int> {
    let start = o * stride - padding
    return max(start, 0)..<min(start + kernel, size)
  }

  /// Max pooling; padded positions never win (they are -infinity in PyTorch).
  @inlinable public static func maxPool2d<T>(_ x: HostTensor<T>, kernel: Int, stride: Int, padding: Int = 0,
                                             ceilMode: Bool = false) -> HostTensor<T> {
    let (n, c, h, w) = x.dims4
    let ho = pooledSize(h, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
    let wo = pooledSize(w, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
    var y = HostTensor<T>(zeros: [n, c, ho, wo])
    for ni in 0..<n {
      for ci in 0..<c {
        for r in 0..<ho {
          for q in 0..<wo {
            var m = -T.infinity
            for ir in window(r, size: h, kernel: kernel, stride: stride, padding: padding) {
              for iq in window(q, size: w, kernel: kernel, stride: stride, padding: padding) {
                m = max(m, x[ni, ci, ir, iq])
              }
            }
            y[ni, ci, r, q] = m
          }
        }
      }
    }
    return y
  }

  /// Per pooling window, the gap between its largest and second-largest input (+infinity
  /// for a one-element window): where a gap reaches zero the argmax switches, a kink.
  @inlinable public static func maxPoolMargins<T>(_ x: HostTensor<T>, kernel: Int, stride: Int, padding: Int = 0,
                                                  ceilMode: Bool = false) -> [T] {
    let (n, c, h, w) = x.dims4
    let ho = pooledSize(h, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
    let wo = pooledSize(w, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
    var margins: [T] = []
    for ni in 0..<n {
      for ci in 0..<c {
        for r in 0..<ho {
          for q in 0..<wo {
            var first = -T.infinity, second = -T.infinity
            for ir in window(r, size: h, kernel: kernel, stride: stride, padding: padding) {
              for iq in window(q, size: w, kernel: kernel, stride: stride, padding: padding) {
                let v = x[ni, ci, ir, iq]
                if v > first { second = first; first = v } else if v > second { second = v }
              }
            }
            margins.append(second == -T.infinity ? T.infinity : first - second)
          }
        }
      }
    }
    return margins
  }

  /// Global average pooling: [N, C, H, W] -> [N, C].
  @inlinable public static func globalAvgPool<T>(_ x: HostTensor<T>) -> HostTensor<T> {
    let (n, c, h, w) = x.dims4
    var y = HostTensor<T>(zeros: [n, c])
    for ni in 0..<n {
      for ci in 0..<c {
        var s: T = 0
        for r in 0..<h { for q in 0..<w { s += x[ni, ci, r, q] } }
        y[ni, ci] = s / T(h * w)
      }
    }
    return y
  }

  // MARK: Normalisation

  /// Batch normalisation in training mode: each channel normalised by the batch's mean and
  /// biased variance over N, H, W. Returns the output and those statistics.
  @inlinable public static func batchNormTraining<T>(_ x: HostTensor<T>, scale: HostTensor<T>, shift: HostTensor<T>,
                                                     epsilon: T = 1e-5) -> (y: HostTensor<T>, mean: [T], variance: [T]) {
    let (n, c, h, w) = x.dims4
    let m = T(n * h * w)
    var mean = [T](repeating: 0, count: c), variance = [T](repeating: 0, count: c)
    for ci in 0..<c {
      var s: T = 0
      for ni in 0..<n { for r in 0..<h { for q in 0..<w { s += x[ni, ci, r, q] } } }
      mean[ci] = s / m
      var v: T = 0
      for ni in 0..<n { for r in 0..<h { for q in 0..<w { let d = x[ni, ci, r, q] - mean[ci]; v += d * d } } }
      variance[ci] = v / m
    }
    let y = batchNormInference(x, scale: scale, shift: shift, mean: mean, variance: variance, epsilon: epsilon)
    return (y, mean, variance)
  }

  /// Batch normalisation with given statistics: y = (x - mean) / sqrt(var + eps) gamma + beta.
  @inlinable public static func batchNormInference<T>(_ x: HostTensor<T>, scale: HostTensor<T>, shift: HostTensor<T>,
                                                      mean: [T], variance: [T], epsilon: T = 1e-5) -> HostTensor<T> {
    let (n, c, h, w) = x.dims4
    var y = x
    for ci in 0..<c {
      let inv = 1 / (variance[ci] + epsilon).squareRoot()
      for ni in 0..<n {
        for r in 0..<h {
          for q in 0..<w { y[ni, ci, r, q] = (x[ni, ci, r, q] - mean[ci]) * inv * scale.values[ci] + shift.values[ci] }
        }
      }
    }
    return y
  }

  // MARK: Element-wise and dense

  @inlinable public static func relu<T>(_ x: HostTensor<T>) -> HostTensor<T> { x.map { max($0, 0) } }

  /// y = x W^T + b: x [N, I], weight [O, I], bias [O] -> [N, O].
  @inlinable public static func linear<T>(_ x: HostTensor<T>, weight: HostTensor<T>, bias: HostTensor<T>) -> HostTensor<T> {
    let (n, i) = (x.shape[0], x.shape[1])
    let o = weight.shape[0]
    precondition(weight.shape == [o, i] && bias.shape == [o], "linear: x \(x.shape), weight \(weight.shape)")
    var y = HostTensor<T>(zeros: [n, o])
    for ni in 0..<n {
      for oi in 0..<o {
        var s = bias.values[oi]
        for k in 0..<i { s += x[ni, k] * weight[oi, k] }
        y[ni, oi] = s
      }
    }
    return y
  }

  /// PyTorch's source coordinate for bilinear interpolation (`area_pixel_compute_source_index`).
  @inlinable public static func bilinearSource<T: BinaryFloatingPoint>(_ o: Int, input: Int, output: Int,
                                                                       alignCorners: Bool) -> T {
    if alignCorners {
      return output > 1 ? T(o) * T(input - 1) / T(output - 1) : 0
    }
    let s = (T(o) + T(0.5)) * T(input) / T(output) - T(0.5)
    return s < 0 ? 0 : s
  }

  /// Bilinear resize of [N, C, H, W] to [N, C, outHeight, outWidth].
  @inlinable public static func bilinear<T>(_ x: HostTensor<T>, outHeight: Int, outWidth: Int,
                                            alignCorners: Bool) -> HostTensor<T> {
    let (n, c, h, w) = x.dims4
    var y = HostTensor<T>(zeros: [n, c, outHeight, outWidth])
    for r in 0..<outHeight {
      let sy: T = bilinearSource(r, input: h, output: outHeight, alignCorners: alignCorners)
      let y0 = min(Int(sy), h - 1), y1 = min(Int(sy) + 1, h - 1)
      let ly = sy - T(y0)
      for q in 0..<outWidth {
        let sx: T = bilinearSource(q, input: w, output: outWidth, alignCorners: alignCorners)
        let x0 = min(Int(sx), w - 1), x1 = min(Int(sx) + 1, w - 1)
        let lx = sx - T(x0)
        for ni in 0..<n {
          for ci in 0..<c {
            y[ni, ci, r, q] = (1 - ly) * ((1 - lx) * x[ni, ci, y0, x0] + lx * x[ni, ci, y0, x1])
              + ly * ((1 - lx) * x[ni, ci, y1, x0] + lx * x[ni, ci, y1, x1])
          }
        }
      }
    }
    return y
  }

  /// Softmax over dimension 1 of [N, C, H, W] or [N, C].
  @inlinable public static func channelSoftmax<T>(_ x: HostTensor<T>) -> HostTensor<T> {
    let (n, c) = (x.shape[0], x.shape[1])
    let hw = x.count / (n * c)
    var y = x
    for ni in 0..<n {
      for p in 0..<hw {
        var m = -T.infinity
        for k in 0..<c { m = max(m, x.values[(ni * c + k) * hw + p]) }
        var s: T = 0
        for k in 0..<c { s += exponential(x.values[(ni * c + k) * hw + p] - m) }
        for k in 0..<c { y.values[(ni * c + k) * hw + p] = exponential(x.values[(ni * c + k) * hw + p] - m) / s }
      }
    }
    return y
  }

  // MARK: Losses

  @inlinable public static func sigmoid<T: BinaryFloatingPoint>(_ z: T) -> T { 1 / (1 + exponential(-z)) }

  /// Caffe's Euclidean loss on sigmoid scores: sum (sigmoid(z) - y)^2 / (2N), N the first
  /// dimension (PyTorch: mse_loss(sigmoid(z), y, reduction="sum") / (2N)).
  @inlinable public static func sigmoidSquaredError<T>(logits: HostTensor<T>, targets: HostTensor<T>) -> T {
    var s: T = 0
    for i in 0..<logits.count { let d = sigmoid(logits.values[i]) - targets.values[i]; s += d * d }
    return s / T(2 * logits.shape[0])
  }

  /// mean -(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))) (binary_cross_entropy_with_logits).
  @inlinable public static func binaryCrossEntropy<T>(logits: HostTensor<T>, targets: HostTensor<T>) -> T {
    var s: T = 0
    for i in 0..<logits.count {
      let p = sigmoid(logits.values[i]), y = targets.values[i]
      s -= y * logarithm(p) + (1 - y) * logarithm(1 - p)
    }
    return s / T(logits.count)
  }

  /// Pixel-wise softmax cross-entropy over [N, K, H, W] averaged over the labels that are
  /// not 255 (cross_entropy with ignore_index=255); 0 when every label is ignored.
  @inlinable public static func softmaxCrossEntropy<T>(logits: HostTensor<T>, labels: [UInt8]) -> T {
    let (n, k) = (logits.shape[0], logits.shape[1])
    let hw = logits.count / (n * k)
    precondition(labels.count == n * hw, "\(labels.count) labels for logits \(logits.shape)")
    var total: T = 0
    var valid = 0
    for ni in 0..<n {
      for p in 0..<hw {
        let l = labels[ni * hw + p]
        guard l != 255 else { continue }
        var m = -T.infinity
        for c in 0..<k { m = max(m, logits.values[(ni * k + c) * hw + p]) }
        var s: T = 0
        for c in 0..<k { s += exponential(logits.values[(ni * k + c) * hw + p] - m) }
        total -= logits.values[(ni * k + Int(l)) * hw + p] - m - logarithm(s)
        valid += 1
      }
    }
    return valid > 0 ? total / T(valid) : 0
  }
}
