@preconcurrency import Glibc
import AEPSLDistributed
import AEPSLMethod
import ArgumentParser
import Foundation

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

/// Stage logs go to stdout; line buffering makes them appear as they happen when stdout is
/// a pipe or a file (`make demo | tee`, a batch scheduler's log), not only at exit.
func lineBufferedOutput() {
  // Called once at start-up, before any other thread writes.
  setvbuf(stdout, nil, _IOLBF, 0)
}

/// Runs a stage with SIGINT/SIGTERM handlers installed: the stage stops at the next safe
/// point, saves its state and the process exits with 130 (SIGINT) or 143 (SIGTERM). On a
/// multi-rank job only rank 0 prints the message.
func interruptible<T>(_ communicator: Communicator = SingleProcess(), _ body: () throws -> T) throws -> T {
  Interruption.install()
  do {
    return try body()
  } catch let interrupted as InterruptedError {
    if communicator.isRoot { FileHandle.standardError.write(Data("aepsl: \(interrupted)\n".utf8)) }
    throw ExitCode(interrupted.exitCode)
  }
}

/// A stage run as one rank of its job (`asJob`) with interruption handled (`interruptible`):
/// returns the stage's result and whether this process is the job's rank 0, which alone
/// prints what to run next.
func runStage<T>(_ body: (Communicator) throws -> T) throws -> (result: T, isRoot: Bool) {
  try asJob { communicator in (try interruptible(communicator) { try body(communicator) }, communicator.isRoot) }
}
