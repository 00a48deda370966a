import AEPSLEngine
import ArgumentParser

struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Measure throughput (not part of the tests).",
    subcommands: [BenchEngine.self, BenchCRF.self, BenchAllreduce.self])
}
