import COpenBLAS

/// Weight gradient of a stride-1 dilated convolution as one GEMM per kernel tap:
///
///     dW[:, :, a, b] += sum_n dY_n (O x HW) . Xshift_n,ab^T (HW x C)
///
/// where Xshift_n,ab is the input shifted by the tap's offset (dilation * (a, b) - padding),
/// zero outside. Large, regular GEMMs run near OpenBLAS's peak whatever the dilation, where
/// oneDNN 2.6 only has slow paths (DESIGN.md section 3).
enum DilatedWeightGradient {
  /// x [N, C, H, W] and dy [N, O, Ho, Wo] in NCHW; accumulates into OIHW `weightGrad`.
  static func accumulate(x: Tensor, dy: Tensor, kernelSize k: Int, dilation d: Int, padding p: Int,
                         weightGrad: Tensor, biasGrad: Tensor?) {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, ho, wo) = (dy.shape[1], dy.shape[2], dy.shape[3])
    let hwOut = ho * wo
    let shifted = Tensor(shape: [c, hwOut])
    let tap = Tensor(shape: [o, c])
    for a in 0..<k {
      for b in 0..<k {
        tap.zero()
        let (dr, dc) = (a * d - p, b * d - p)
        // Output rows/columns whose shifted input falls inside the image.
        let r0 = max(0, -dr), r1 = min(ho, h - dr)
        let c0 = max(0, -dc), c1 = min(wo, w - dc)
        if r0 >= r1 || c0 >= c1 { continue }
        for ni in 0..<n {
          shifted.zero()
          for ci in 0..<c {
            let src = x.data + (ni * c + ci) * h * w
            let dst = shifted.data + ci * hwOut
            for r in r0..<r1 {
              (dst + r * wo + c0).update(from: src + (r + dr) * w + (c0 + dc), count: c1 - c0)
            }
          }
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(o), Int32(c), Int32(hwOut),
                      1, dy.data + ni * o * hwOut, Int32(hwOut), shifted.data, Int32(hwOut),
                      1, tap.data, Int32(c))
        }
        let kk = k * k, t = a * k + b
        for oi in 0..<o {
          let g = weightGrad.data + oi * c * kk + t
          let src = tap.data + oi * c
          for ci in 0..<c { g[ci * kk] += src[ci] }
        }
      }
    }
    if let biasGrad {
      for ni in 0..<n {
        for oi in 0..<o {
          let src = dy.data + (ni * o + oi) * hwOut
          var s: Float = 0
          for q in 0..<hwOut { s += src[q] }
          biasGrad.data[oi] += s
        }
      }
    }
  }
}
