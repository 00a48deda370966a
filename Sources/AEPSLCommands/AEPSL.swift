import ArgumentParser

/// The `aepsl` command: its subcommands parse options, check them in `validate()` and call
/// into the libraries. The executable's main.swift only runs it, so tests can parse and
/// validate every command in process.
public struct AEPSL: ParsableCommand {
  public static let configuration = CommandConfiguration(
    commandName: "aepsl",
    abstract: "Weakly supervised semantic segmentation: Adversarial Erasing with Prohibitive Segmentation Learning.",
    discussion: """
      From images tagged only with the classes they contain to a network that labels every pixel \
      (Wei et al., CVPR 2017). Runs on the CPU through oneDNN and OpenBLAS.
      """,
    subcommands: [RunCommand.self, SynthCommand.self, DatasetCommand.self, EraseCommand.self, MasksCommand.self,
                  TrainSegCommand.self, PredictCommand.self, EvalCommand.self, ClassifierScoreCommand.self, ReportCommand.self, CRFCommand.self,
                  ExportCommand.self, WeightsCommand.self, BenchCommand.self]
  )

  public init() {}
}
