import AEPSLEngine
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The share of the machine's CPU time that processes other than this one and its children
/// used since creation (from /proc/stat and getrusage): a busy machine makes figures low.
public struct BenchLoad {
  public let machine: (busy: Double, total: Double)
  public let own: Double

  public init() {
    machine = Self.machineSeconds()
    own = Self.ownSeconds()
  }

  public func othersPercent() -> Double {
    let now = Self.machineSeconds(), ownNow = Self.ownSeconds()
    let total = now.total - machine.total
    guard total > 0 else { return 0 }
    return max(0, 100 * ((now.busy - machine.busy) - (ownNow - own)) / total)
  }

  /// Waits until the machine has been nearly idle (other load at most `maxLoad` percent) for
  /// two consecutive 5-second windows, or until `timeout` seconds have passed.
  public static func waitForQuiet(maxLoad: Double, timeout: Double) {
    let start = Date()
    var quiet = 0
    while quiet < 2 && Date().timeIntervalSince(start) < timeout {
      let load = BenchLoad()
      Thread.sleep(forTimeInterval: 5)
      quiet = load.othersPercent() <= maxLoad ? quiet + 1 : 0
    }
  }

  /// Busy and total CPU seconds of the whole machine (all cores), from /proc/stat.
  public static func machineSeconds() -> (busy: Double, total: Double) {
    guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
    else { return (0, 0) }
    let v = line.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard v.count >= 8 else { return (0, 0) }
    let total = v[0..<8].reduce(0, +), idle = v[3] + v[4]
    let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
    return ((total - idle) / hz, total / hz)
  }

  /// CPU seconds of this process and its waited-for children.
  public static func ownSeconds() -> Double {
    func seconds(_ who: Int32) -> Double {
      var u = rusage()
      getrusage(__rusage_who_t(who), &u)
      return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }
    return seconds(RUSAGE_SELF.rawValue) + seconds(RUSAGE_CHILDREN.rawValue)
  }
}

public enum BenchMemory {
  /// Resident set size now, from /proc/self/status.
  public static func currentRSSMiB() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kib = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    else { return 0 }
    return kib / 1024
  }

  /// The process's peak resident set size (getrusage; KiB on Linux).
  public static func peakRSSMiB() -> Double {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    return Double(u.ru_maxrss) / 1024
  }
}

public enum BenchMachine {
  public static var cpuLine: String { "\(FMAPeak.cpuModel), \(ComputeThreads.cores) core(s), \(memoryGiB) GiB" }

  public static var memoryGiB: Int {
    guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
          let kib = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    else { return 0 }
    return Int((kib / 1024 / 1024).rounded())
  }

  public static func description(threads: Int) -> [String: Any] {
    ["cpu": FMAPeak.cpuModel, "cores": ComputeThreads.cores, "memory_gib": memoryGiB,
     "simd": FMAPeak.supportedISAs.map(\.rawValue), "threads": threads]
  }
}
