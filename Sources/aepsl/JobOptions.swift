@preconcurrency import Glibc
import AEPSLDistributed
import AEPSLMethod
import ArgumentParser
import Foundation

/// --shard i/K, for the per-image stages (masks, predict).
struct ShardOptions: ParsableArguments {
  @Option(help: """
    Handle only images j with j % K == i (0 <= i < K), so that K independent jobs share a stage; \
    each writes exactly the files one process would. The stage's manifest is written by the \
    last shard to finish, or by a rerun without --shard once every shard has run. Under mpirun, \
    each shard is split again across the ranks.
    """)
  var shard: String?

  func validate() throws {
    if let shard, Shard(parsing: shard) == nil {
      throw ValidationError("--shard must be i/K with 0 <= i < K, e.g. 0/4, got '\(shard)'.")
    }
  }

  var value: Shard { shard.flatMap(Shard.init(parsing:)) ?? .whole }
}

/// Runs a command's work as one rank of its job: one process, or a rank of the mpirun job
/// that started it (with the MPI trait). On a multi-rank job, an error on any rank stops
/// every rank (MPI_Abort) after printing it with the rank; the job's files are all written
/// atomically and training states are saved every epoch, so the same command resumes.
func asJob<T>(_ body: (Communicator) throws -> T) throws -> T {
  let communicator = try Distributed.start()
  guard communicator.isDistributed else { return try body(communicator) }
  do {
    return try body(communicator)
  } catch let exit as ExitCode {
    // Interrupted: every rank stopped at the same iteration and rank 0 saved the state.
    fflush(stdout)
    _exit(exit.rawValue)
  } catch {
    FileHandle.standardError.write(Data("aepsl: \(communicator.identity): \(error)\n".utf8))
    fflush(stdout)
    communicator.abort(code: 1)
  }
}
