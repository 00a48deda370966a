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

  /// A note for a job about to start `threads` threads on a machine whose cores other work
  /// already keeps busy: the larger of the one-minute load average and the tasks running
  /// right now (from /proc; this job has not started working) plus `threads` exceeds the
  /// cores. Two jobs that share the cores each run far below half speed, whatever libgomp's
  /// waiting policy (BENCHMARKS.md, Contention): every parallel region waits for its slowest
  /// thread, and on a shared core that thread waits for the other job. nil on a quiet machine.
  public static func busyMachineNote(threads: Int, busy: Double? = busyCores(), cores: Int = cores) -> String? {
    guard let busy, busy + Double(threads) > Double(cores) + 0.5 else { return nil }
    let free = max(1, cores - Int(busy.rounded()))
    guard free < threads else { return nil }
    return String(format: "aepsl: note: the load is %.1f on %d cores and this job starts %d threads; "
                    + "jobs that share cores each run far below their share (BENCHMARKS.md, Contention). "
                    + "Give this job --threads %d, or run the jobs one after the other.", busy, cores, threads, free)
  }

  /// Cores busy with other work: the larger of the one-minute load average and the tasks
  /// running now other than the caller (procs_running of /proc/stat); nil without /proc.
  public static func busyCores() -> Double? {
    guard let load = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8),
          let average = load.split(separator: " ").first.flatMap({ Double($0) }) else { return nil }
    let stat = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)) ?? ""
    let running = stat.split(separator: "\n").first { $0.hasPrefix("procs_running ") }
      .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } } ?? 1
    return max(average, running - 1)
  }
}
