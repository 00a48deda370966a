@preconcurrency import Glibc
import AEPSLEngine
import ArgumentParser
import Foundation

@main
struct AEPSL: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "aepsl",
    abstract: "Weakly supervised semantic segmentation: Adversarial Erasing with Prohibitive Segmentation Learning.",
    discussion: """
      From images tagged only with the classes they contain to a network that labels every pixel \
      (Wei et al., CVPR 2017). Runs on the CPU through oneDNN and OpenBLAS.
      """,
    subcommands: [RunCommand.self, Synth.self, DatasetCommand.self, EraseCommand.self, MasksCommand.self, TrainSegCommand.self, PredictCommand.self, EvalCommand.self, ClassifierScoreCommand.self, ReportCommand.self, CRFCommand.self, Bench.self]
  )
}

/// Options every compute-heavy command shares.
struct ComputeOptions: ParsableArguments {
  @Option(help: "Threads for oneDNN and OpenBLAS (one shared pool). Default: all cores.")
  var threads: Int = ComputeThreads.cores

  @Option(help: "Seed for initialisation, data order and dropout.")
  var seed: UInt64 = 0

  func validate() throws {
    guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads).") }
  }

  func apply() {
    ComputeThreads.set(threads)
    lineBufferedOutput()
  }
}

/// Stage logs go to stdout; line buffering makes them appear as they happen when stdout is
/// a pipe or a file (`make demo | tee`, a batch scheduler's log), not only at exit.
func lineBufferedOutput() {
  // Called once at start-up, before any other thread writes.
  setvbuf(stdout, nil, _IOLBF, 0)
}
