import CCRFKernels

/// Which code runs the CRF's hot loops (splat, blur, slice, softmax). The package compiles
/// Swift for baseline x86-64, where SIMD8<Float> is two SSE instructions per operation and
/// has no fused multiply-add; CCRFKernels holds the same loops compiled for AVX2 and FMA,
/// chosen at run time, so one binary runs everywhere and fast where it can.
public enum CRFVectorCode: String, Sendable, CaseIterable, CustomStringConvertible {
  /// The Swift SIMD8 loops: any CPU; the reference the AVX2 kernels are tested against.
  case portable
  /// CCRFKernels' AVX2/FMA loops (for rows of up to 64 labels; more use the portable loops).
  case avx2

  /// The fastest code this CPU runs.
  public static let best: CRFVectorCode = crf_kernels_have_avx2() != 0 ? .avx2 : .portable

  /// Every kind this CPU runs.
  public static var available: [CRFVectorCode] { best == .avx2 ? [.portable, .avx2] : [.portable] }

  public var description: String { self == .avx2 ? "AVX2+FMA" : "portable SIMD (SSE2)" }

  /// Whether the AVX2 kernels take rows of `vectors` SIMD8 vectors.
  @inline(__always)
  func usesAVX2(vectors: Int) -> Bool { self == .avx2 && vectors <= 8 }
}

/// A vector buffer as the C kernels take it.
@inline(__always)
func floats(_ p: UnsafePointer<SIMD8<Float>>) -> UnsafePointer<Float> {
  UnsafeRawPointer(p).assumingMemoryBound(to: Float.self)
}

@inline(__always)
func floats(_ p: UnsafeMutablePointer<SIMD8<Float>>) -> UnsafeMutablePointer<Float> {
  UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
}
