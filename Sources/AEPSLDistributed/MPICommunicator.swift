#if MPI
import AEPSLFiles
import CMPI
import Foundation

/// Open MPI's MPI_COMM_WORLD. Only the main thread calls MPI (the loader's threads never
/// do): MPI_THREAD_FUNNELED.
///
/// Errors come back to aepsl (MPI_ERRORS_RETURN) rather than ending the process inside MPI:
/// a collective that fails, usually because another rank died, prints which rank, which
/// operation and what to do, then aborts the job. mpirun itself also ends the job when a
/// rank exits non-zero or is killed.
public final class MPICommunicator: Communicator {
  public let rank: Int
  public let size: Int
  public let hosts: [String]

  private init(rank: Int, size: Int, hosts: [String]) {
    self.rank = rank
    self.size = size
    self.hosts = hosts
  }

  nonisolated(unsafe) private static var shared: MPICommunicator?

  /// Initialises MPI once and returns the world communicator.
  public static func world() throws -> MPICommunicator {
    if let shared { return shared }
    var provided: Int32 = 0
    var argc: Int32 = 0
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
    guard Int(MPI_Init_thread(&argc, &argv, Int32(MPI_THREAD_FUNNELED), &provided)) == Int(MPI_SUCCESS) else {
      throw AEPSLError(kind: .environment, problem: "MPI_Init_thread failed", fix: "Check the Open MPI installation (mpirun --version) and the launcher's options")
    }
    MPI_Comm_set_errhandler(aepsl_mpi_comm_world(), aepsl_mpi_errors_return())
    var r: Int32 = 0, s: Int32 = 0
    MPI_Comm_rank(aepsl_mpi_comm_world(), &r)
    MPI_Comm_size(aepsl_mpi_comm_world(), &s)
    let c = MPICommunicator(rank: Int(r), size: Int(s), hosts: gatherHostNames(size: Int(s)))
    shared = c
    // MPI_Finalize at a normal exit: Open MPI reports a rank that exits without it as failed.
    atexit { MPICommunicator.finalize() }
    if c.isRoot && c.isDistributed { c.announceHosts() }
    return c
  }

  private static func finalize() {
    var finalized: Int32 = 0
    MPI_Finalized(&finalized)
    if finalized == 0 { MPI_Finalize() }
  }

  private func check(_ code: Int32, _ operation: String) {
    guard Int(code) != Int(MPI_SUCCESS) else { return }
    var text = [CChar](repeating: 0, count: 1024)  // MPI_MAX_ERROR_STRING is 256
    var length: Int32 = 0
    MPI_Error_string(code, &text, &length)
    let reason = String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    FileHandle.standardError.write(Data((
      "aepsl: \(identity): \(operation) failed (\(reason)); another rank has probably died (mpirun names it). "
        + "Stopping the job. Run the same command again to resume from the last saved training state.\n").utf8))
    abort(code: 1)
  }

  public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
    var offset = 0
    // MPI counts are Int32: very large buffers go in pieces.
    while offset < buffer.count {
      let n = min(buffer.count - offset, Int(Int32.max))
      check(MPI_Allreduce(aepsl_mpi_in_place(), buffer.baseAddress! + offset, Int32(n), aepsl_mpi_float(), aepsl_mpi_sum(),
                          aepsl_mpi_comm_world()), "MPI_Allreduce of \(buffer.count) floats")
      offset += n
    }
  }

  public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
    guard buffer.count > 0 else { return }
    check(MPI_Allreduce(aepsl_mpi_in_place(), buffer.baseAddress!, Int32(buffer.count), aepsl_mpi_double(), aepsl_mpi_sum(),
                        aepsl_mpi_comm_world()), "MPI_Allreduce of \(buffer.count) doubles")
  }

  public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
    guard buffer.count > 0 else { return }
    check(MPI_Bcast(buffer.baseAddress!, Int32(buffer.count), aepsl_mpi_byte(), Int32(root), aepsl_mpi_comm_world()),
          "MPI_Bcast of \(buffer.count) bytes")
  }

  /// Waits by polling a non-blocking barrier every millisecond: Open MPI's blocking calls
  /// spin, and ranks waiting while rank 0 alone works (checking images, writing files)
  /// would take the cores it needs.
  public func barrier() {
    var request: MPI_Request? = nil
    check(MPI_Ibarrier(aepsl_mpi_comm_world(), &request), "MPI_Ibarrier")
    var done: Int32 = 0
    while true {
      check(MPI_Test(&request, &done, aepsl_mpi_status_ignore()), "MPI_Test of a barrier")
      if done != 0 { return }
      usleep(1000)
    }
  }

  public func abort(code: Int32) -> Never {
    MPI_Abort(aepsl_mpi_comm_world(), code)
    exit(code)
  }
}
#endif
