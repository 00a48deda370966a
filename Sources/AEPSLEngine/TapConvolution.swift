import COpenBLAS

/// A stride-1 (dilated) convolution as one GEMM per kernel tap, in NCHW:
///
///     Y_n        += W_ab (O x C) . Xshift_n,ab (C x HW)             forward
///     dXshift_ab  = W_ab^T (C x O) . dY_n (O x HW), added back      backward data
///     dW_ab      += dY_n (O x HW) . Xshift_n,ab^T (HW x C)          weight gradient
///
/// Xshift_n,ab is the input moved by the tap's offset (dilation * (a, b) - padding), zero
/// outside the image. `Conv2d`'s fallback for shapes where oneDNN 2.6 offers only a reference
/// loop in every layout, hundreds of times slower (older CPUs; on AVX2 and AVX-512 it has
/// GEMM or brgemm kernels for every shape of the two networks). These GEMMs are large and
/// regular, so OpenBLAS runs them near its peak whatever the dilation.
enum TapConvolution {
  /// A tap's offsets and the output rows and columns whose shifted input lies inside.
  typealias Window = (dr: Int, dc: Int, rows: Range<Int>, cols: Range<Int>)

  struct Geometry {
    let n: Int, c: Int, h: Int, w: Int, o: Int, ho: Int, wo: Int
    let k: Int, dilation: Int, padding: Int
    var hwOut: Int { ho * wo }

    /// Offsets of a tap, and the output rows/columns whose shifted input lies inside.
    func window(_ a: Int, _ b: Int) -> Window? {
      let dr = a * dilation - padding, dc = b * dilation - padding
      // Check the bounds before forming ranges: a tap that misses the image entirely (dilation
      // or padding larger than the input) gives lower > upper, which -Ounchecked lets through.
      let (r0, r1, c0, c1) = (max(0, -dr), min(ho, h - dr), max(0, -dc), min(wo, w - dc))
      return r0 >= r1 || c0 >= c1 ? nil : (dr, dc, r0..<r1, c0..<c1)
    }
  }

  /// Copies image `ni` of x, shifted for a tap, into `shifted` [C, Ho * Wo] (zero outside).
  static func gather(_ x: Tensor, _ g: Geometry, _ ni: Int, _ win: Window, into shifted: Tensor) {
    shifted.zero()
    for ci in 0..<g.c {
      let src = x.data + (ni * g.c + ci) * g.h * g.w
      let dst = shifted.data + ci * g.hwOut
      for r in win.rows {
        (dst + r * g.wo + win.cols.lowerBound).update(from: src + (r + win.dr) * g.w + (win.cols.lowerBound + win.dc),
                                                      count: win.cols.count)
      }
    }
  }

  /// One tap's weights as a contiguous [O, C] matrix.
  static func tapWeights(_ weight: Tensor, _ g: Geometry, _ a: Int, _ b: Int, into m: Tensor) {
    let kk = g.k * g.k, t = a * g.k + b
    for oi in 0..<g.o { for ci in 0..<g.c { m.data[oi * g.c + ci] = weight.data[(oi * g.c + ci) * kk + t] } }
  }

  /// Calls `body` for every tap that reaches the image, with its window and its weights as
  /// an [O, C] matrix (one buffer, refilled for each tap).
  static func forEachTap(of weight: Tensor, _ g: Geometry, _ body: (Window, Tensor) -> Void) {
    let m = Tensor.uninitialized(shape: [g.o, g.c])
    for a in 0..<g.k {
      for b in 0..<g.k {
        guard let win = g.window(a, b) else { continue }
        tapWeights(weight, g, a, b, into: m)
        body(win, m)
      }
    }
  }

  /// y = conv(x) + bias, NCHW in and out.
  static func forward(x: Tensor, weight: Tensor, bias: Tensor?, _ g: Geometry) -> Tensor {
    let y = Tensor(shape: [g.n, g.o, g.ho, g.wo])
    let shifted = Tensor.uninitialized(shape: [g.c, g.hwOut])
    forEachTap(of: weight, g) { win, m in
      for ni in 0..<g.n {
        gather(x, g, ni, win, into: shifted)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(g.o), Int32(g.hwOut), Int32(g.c),
                    1, m.data, Int32(g.c), shifted.data, Int32(g.hwOut), 1, y.data + ni * g.o * g.hwOut, Int32(g.hwOut))
      }
    }
    if let bias {
      for ni in 0..<g.n { for oi in 0..<g.o {
        let row = y.data + (ni * g.o + oi) * g.hwOut
        let v = bias.data[oi]
        for q in 0..<g.hwOut { row[q] += v }
      } }
    }
    return y
  }

  /// dx from dy, NCHW in and out.
  static func backwardData(dy: Tensor, weight: Tensor, _ g: Geometry) -> Tensor {
    let dx = Tensor(shape: [g.n, g.c, g.h, g.w])
    let shifted = Tensor.uninitialized(shape: [g.c, g.hwOut])
    forEachTap(of: weight, g) { win, m in
      for ni in 0..<g.n {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(g.c), Int32(g.hwOut), Int32(g.o),
                    1, m.data, Int32(g.c), dy.data + ni * g.o * g.hwOut, Int32(g.hwOut), 0, shifted.data, Int32(g.hwOut))
        // Scatter back: the inverse of `gather`.
        for ci in 0..<g.c {
          let dst = dx.data + (ni * g.c + ci) * g.h * g.w
          let src = shifted.data + ci * g.hwOut
          for r in win.rows {
            let d = dst + (r + win.dr) * g.w + win.dc, s = src + r * g.wo
            for q in win.cols { d[q] += s[q] }
          }
        }
      }
    }
    return dx
  }

  /// weightGrad (OIHW) += dW, biasGrad += sum dy.
  static func accumulateWeightGradient(x: Tensor, dy: Tensor, _ g: Geometry, weightGrad: Tensor, biasGrad: Tensor?) {
    let shifted = Tensor.uninitialized(shape: [g.c, g.hwOut])
    let tap = Tensor.uninitialized(shape: [g.o, g.c])
    let kk = g.k * g.k
    for a in 0..<g.k {
      for b in 0..<g.k {
        guard let win = g.window(a, b) else { continue }
        for ni in 0..<g.n {
          gather(x, g, ni, win, into: shifted)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(g.o), Int32(g.c), Int32(g.hwOut),
                      1, dy.data + ni * g.o * g.hwOut, Int32(g.hwOut), shifted.data, Int32(g.hwOut),
                      ni == 0 ? 0 : 1, tap.data, Int32(g.c))
        }
        let t = a * g.k + b
        for oi in 0..<g.o {
          let dst = weightGrad.data + oi * g.c * kk + t
          let src = tap.data + oi * g.c
          for ci in 0..<g.c { dst[ci * kk] += src[ci] }
        }
      }
    }
    if let biasGrad {
      for ni in 0..<g.n { for oi in 0..<g.o {
        let row = dy.data + (ni * g.o + oi) * g.hwOut
        var s: Float = 0
        for q in 0..<g.hwOut { s += row[q] }
        biasGrad.data[oi] += s
      } }
    }
  }
}
