import CDNNL
import COpenBLAS
import Foundation

/// The one thread pool that oneDNN and OpenBLAS share (libgomp's; see docs/METHOD.md section 3).
public enum ComputeThreads {
  /// Sets the number of threads both libraries use (default: all cores).
  public static func set(_ count: Int) {
    let n = Int32(max(1, count))
    omp_set_num_threads(n)
    openblas_set_num_threads(n)
  }

  public static var current: Int { Int(omp_get_max_threads()) }

  public static var cores: Int { ProcessInfo.processInfo.activeProcessorCount }
}
