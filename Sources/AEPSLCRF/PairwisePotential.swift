import Foundation

/// One pairwise term of a fully connected CRF: energy sum_{i,j} mu(x_i, x_j) k(f_i, f_j) with
/// k(f_i, f_j) = exp(-|f_i - f_j|^2 / 2) over features already divided by their standard
/// deviations, normalised as `normalization` says.
public struct PairwisePotential: Sendable {
  /// Where the features come from.
  public enum Kernel: Sendable {
    /// (x / sxy, y / sxy).
    case gaussian(sxy: Float)
    /// (x / sxy, y / sxy, r / srgb, g / srgb, b / srgb) of RGB bytes [height][width][3].
    case bilateral(sxy: Float, srgb: Float, image: [UInt8])
    /// Given features, [pixels][dimensions].
    case features([Float], dimensions: Int)
  }

  /// How the kernel is evaluated.
  public enum Evaluation: Sendable, Equatable {
    /// On a permutohedral lattice over the features (densecrf).
    case lattice
    /// Exactly, as a separable blur of the pixel grid (Gaussian kernels only).
    case separableGaussian(sigmaX: Float, sigmaY: Float, truncation: Float)
  }

  public let kernel: Kernel
  public let width: Int
  public let height: Int
  public let compatibility: LabelCompatibility
  public let normalization: KernelNormalization
  public let evaluation: Evaluation

  public var dimensions: Int {
    switch kernel {
    case .gaussian: return 2
    case .bilateral: return 5
    case .features(_, let d): return d
    }
  }

  /// The features, [pixels][dimensions], built on `threads` threads.
  public func features(threads: Int = 1) -> [Float] {
    let n = width * height, d = dimensions, w = width
    switch kernel {
    case .features(let values, _):
      return values
    case .gaussian(let sxy):
      return [Float](unsafeUninitializedCapacity: n * d) { out, count in
        let base = out.baseAddress!
        parallelRanges(n, threads: threads, grain: 8192) { _, range in
          // Column and row are stepped, not divided out of i per pixel.
          var x = range.lowerBound % w, y = range.lowerBound / w
          for i in range {
            base[i &* 2] = Float(x) / sxy
            base[i &* 2 &+ 1] = Float(y) / sxy
            x &+= 1
            if x == w { x = 0; y &+= 1 }
          }
        }
        count = n * d
      }
    case .bilateral(let sxy, let srgb, let image):
      return [Float](unsafeUninitializedCapacity: n * d) { out, count in
        let base = out.baseAddress!
        image.withUnsafeBufferPointer { rgb in
          let rgb = rgb.baseAddress!
          parallelRanges(n, threads: threads, grain: 8192) { _, range in
            var x = range.lowerBound % w, y = range.lowerBound / w
            for i in range {
              let o = base + i &* 5, c = rgb + i &* 3
              o[0] = Float(x) / sxy
              o[1] = Float(y) / sxy
              o[2] = Float(c[0]) / srgb
              o[3] = Float(c[1]) / srgb
              o[4] = Float(c[2]) / srgb
              x &+= 1
              if x == w { x = 0; y &+= 1 }
            }
          }
        }
        count = n * d
      }
    }
  }
}
