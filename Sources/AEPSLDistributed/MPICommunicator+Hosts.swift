#if MPI
import CMPI
import Foundation

/// Which rank runs where, and how soon Open MPI notices a host that went silent.
extension MPICommunicator {
  /// Longest host name kept (POSIX HOST_NAME_MAX is 64 on Linux).
  static let hostNameBytes = 64

  /// Every rank's host name, by rank (one MPI_Allgather at start-up; this host's name for
  /// every rank if it fails, which the first collective then reports).
  static func gatherHostNames(size: Int) -> [String] {
    let width = hostNameBytes
    var mine = [UInt8](repeating: 0, count: width)
    for (i, b) in Distributed.hostName.utf8.prefix(width - 1).enumerated() { mine[i] = b }
    var all = [UInt8](repeating: 0, count: width * size)
    let code = MPI_Allgather(&mine, Int32(width), aepsl_mpi_byte(), &all, Int32(width), aepsl_mpi_byte(), aepsl_mpi_comm_world())
    guard Int(code) == Int(MPI_SUCCESS) else { return Array(repeating: Distributed.hostName, count: size) }
    return (0..<size).map { r in
      String(decoding: all[(r * width)..<((r + 1) * width)].prefix { $0 != 0 }, as: UTF8.self)
    }
  }

  /// Rank 0 prints where the ranks run, so that an error naming a host (Open MPI's "lost
  /// communication with a remote daemon ... on node H") can be read as ranks, and says how to
  /// bound the time a lost host takes to stop the job when the job spans several hosts.
  func announceHosts() {
    var order: [String] = []
    var ranksOn: [String: [Int]] = [:]
    for (r, h) in hosts.enumerated() {
      if ranksOn[h] == nil { order.append(h) }
      ranksOn[h, default: []].append(r)
    }
    let table = order.map { "\($0): rank\(ranksOn[$0]!.count > 1 ? "s" : "") \(Self.ranges(ranksOn[$0]!))" }
    var text = "aepsl: \(size) ranks on \(order.count) host\(order.count > 1 ? "s" : "") (\(table.joined(separator: "; ")))\n"
    if order.count > 1, let advice = Self.keepaliveAdvice() { text += advice + "\n" }
    FileHandle.standardError.write(Data(text.utf8))
  }

  /// "0-3,5" for [0, 1, 2, 3, 5].
  static func ranges(_ ranks: [Int]) -> String {
    var parts: [String] = []
    var i = 0
    while i < ranks.count {
      var j = i
      while j + 1 < ranks.count && ranks[j + 1] == ranks[j] + 1 { j += 1 }
      parts.append(j > i ? "\(ranks[i])-\(ranks[j])" : "\(ranks[i])")
      i = j + 1
    }
    return parts.joined(separator: ",")
  }

  static func keepaliveAdvice(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
    if environment["OMPI_MCA_oob_tcp_keepalive_time"] != nil { return nil }
    let files = [environment["HOME"].map { "\($0)/.openmpi/mca-params.conf" }, "/etc/openmpi/openmpi-mca-params.conf"]
    for case let file? in files {
      if let text = try? String(contentsOfFile: file, encoding: .utf8),
         text.split(separator: "\n").contains(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("oob_tcp_keepalive_time") }) {
        return nil
      }
    }
    let flags = Distributed.keepaliveParameters.map { "--mca \($0.0) \($0.1)" }.joined(separator: " ")
    return "aepsl: note: if a host of this job loses power or its network, Open MPI's default TCP keepalive "
      + "takes about 8 minutes to stop the job; give mpirun \(flags) to stop it within about 25 s (README: On a cluster)."
  }
}
#endif
