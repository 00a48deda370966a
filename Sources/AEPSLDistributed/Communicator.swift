import AEPSLFiles
import Foundation

/// The processes of one job and the collectives aepsl needs from them: data-parallel
/// training sums gradients (and sync batch norm its statistics) with `allreduceSum`; stages
/// that only rank 0 writes wait at `barrier`. Every rank must call the same collectives in
/// the same order.
///
/// `SingleProcess` is the job of one process (every collective is a no-op); with the MPI
/// trait, `MPICommunicator` is Open MPI's world under `mpirun`.
public protocol Communicator: AnyObject, Sendable {
  /// 0 ..< size; rank 0 alone writes checkpoints, manifests and logs.
  var rank: Int { get }
  var size: Int { get }
  /// Sums `buffer` element-wise over every rank, in place; every rank gets the sum.
  func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>)
  func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>)
  /// Copies rank `root`'s bytes to every other rank.
  func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int)
  /// Returns once every rank has called it.
  func barrier()
  /// Ends every rank of the job with `code` (a rank that stops alone would leave the others
  /// waiting in a collective).
  func abort(code: Int32) -> Never
  /// The host each rank runs on (gethostname), indexed by rank: error messages name the
  /// host of a rank, since a lost host is what a user must go and look at.
  var hosts: [String] { get }
}

extension Communicator {
  public var isRoot: Bool { rank == 0 }
  public var isDistributed: Bool { size > 1 }

  /// "rank r of K on host H", the prefix of every message a rank prints about itself.
  public var identity: String { "rank \(rank) of \(size) on host \(hosts[rank])" }

  /// "rank 0 on a, rank 1 on b" for the given ranks.
  public func naming(ranks: [Int]) -> String {
    ranks.map { "rank \($0) on host \(hosts[$0])" }.joined(separator: ", ")
  }

  /// `log` on rank 0; nothing on the others, so a job prints each line once.
  public func rootOnly(_ log: @escaping (String) -> Void) -> (String) -> Void {
    isRoot ? log : { _ in }
  }

  /// Sums a few Double values over the ranks (counts, loss sums).
  public func allreduceSum(_ values: [Double]) -> [Double] {
    guard isDistributed else { return values }
    var v = values
    v.withUnsafeMutableBufferPointer { allreduceSum($0) }
    return v
  }
}

/// The job of one process: rank 0 of 1.
public final class SingleProcess: Communicator {
  public init() {}
  public var rank: Int { 0 }
  public var size: Int { 1 }
  public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {}
  public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {}
  public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {}
  public func barrier() {}
  public func abort(code: Int32) -> Never { exit(code) }
  public var hosts: [String] { [Distributed.hostName] }
}

public enum Distributed {
  /// True when this build links Open MPI (the package's MPI trait).
  #if MPI
  public static let mpiBuilt = true
  #else
  public static let mpiBuilt = false
  #endif

  /// The number of processes a launcher (mpirun, srun) started this job with, from the
  /// environment it sets; nil when started alone.
  public static func launchedSize(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
    for key in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"] {
      if let v = environment[key].flatMap(Int.init) { return v }
    }
    return environment["PMIX_RANK"] != nil ? 0 : nil
  }

  /// The MCA parameters that make mpirun notice a host that stops answering (power lost,
  /// cable cut): the TCP keepalive of its connections to the other hosts' daemons. Open
  /// MPI's defaults (300 s idle, then 9 probes 20 s apart) take 8 minutes; these, about 25 s.
  public static let keepaliveParameters = [("oob_tcp_keepalive_time", "10"), ("oob_tcp_keepalive_intvl", "5"),
                                           ("oob_tcp_keepalive_probes", "3")]

  /// This machine's name as gethostname gives it (what Open MPI's messages call the node).
  public static var hostName: String {
    var name = [CChar](repeating: 0, count: 256)
    guard gethostname(&name, name.count - 1) == 0 else { return "unknown host" }
    return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// The communicator of this process: Open MPI's world when an MPI launcher started it
  /// (and this build has the MPI trait), else one process. A build without MPI started by
  /// mpirun with more than one process is an error: each copy would train alone and they
  /// would overwrite each other's files.
  public static func start() throws -> Communicator {
    guard let launched = launchedSize() else { return SingleProcess() }
    #if MPI
    return try MPICommunicator.world()
    #else
    guard launched <= 1 else {
      throw AEPSLError(
        kind: .environment, problem: "aepsl was started by an MPI launcher with \(launched) processes, but this build has no MPI",
        fix: "Build it with the MPI trait: swift build -c release --traits MPI (needs libopenmpi-dev; README: On a cluster)")
    }
    return SingleProcess()
    #endif
  }
}
