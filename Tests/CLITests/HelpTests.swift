import ArgumentParser
import Foundation
import Testing
@testable import AEPSLCommands

/// Every command's --help, read as a new user reads it: each option says its default, either
/// the one ArgumentParser prints ("(default: ...)") or in words ("Default: ..."), unless it is
/// required or listed below as meaning "off" when absent.
@Suite("--help text")
struct HelpTests {
  /// Every command that runs, by the words that lead to it.
  static let paths = ["run", "synth", "dataset stats", "dataset bench-loader", "erase", "masks", "train-seg", "predict",
                      "eval", "report", "crf", "export", "bench engine", "bench crf", "bench allreduce"]

  static func command(_ path: String) -> ParsableCommand.Type? {
    switch path {
    case "run": RunCommand.self
    case "synth": SynthCommand.self
    case "dataset stats": DatasetStatsCommand.self
    case "dataset bench-loader": BenchLoaderCommand.self
    case "erase": EraseCommand.self
    case "masks": MasksCommand.self
    case "train-seg": TrainSegCommand.self
    case "predict": PredictCommand.self
    case "eval": EvalCommand.self
    case "report": ReportCommand.self
    case "crf": CRFCommand.self
    case "export": ExportCommand.self
    case "bench engine": BenchEngineCommand.self
    case "bench crf": BenchCRFCommand.self
    case "bench allreduce": BenchAllreduceCommand.self
    default: nil
    }
  }

  /// Options that have no default because leaving them out switches something off or
  /// leaves a choice to the configuration (a file to write, a shard, an override).
  static let offWhenAbsent: Set<String> = [
    "run --config", "run --from", "run --net", "run --seed", "run --log-json",
    "erase --init", "erase --stop-ratio", "erase --log-json",
    "masks --saliency-dir", "masks --shard", "masks --log-json",
    "train-seg --init", "train-seg --log-json",
    "predict --run", "predict --dataset", "predict --images", "predict --checkpoint", "predict --shard", "predict --log-json",
    "eval --pred", "eval --dataset", "eval --cams", "eval --json", "eval --log-json",
    "export --run", "export --step", "export --checkpoint", "export --onnx", "export --pytorch",
    "bench engine --json", "bench crf --image", "bench crf --probs", "bench crf --json",
    "bench allreduce --json",
  ]

  /// One option's entry in a help text: its name, whether it takes a value, and its text.
  struct Entry {
    let name: String
    let takesValue: Bool
    let text: String
  }

  /// The entries under OPTIONS: (and ARGUMENTS:) of a help text, with wrapped lines joined.
  static func entries(_ help: String) -> [Entry] {
    var entries: [Entry] = []
    var current: (name: String, takesValue: Bool, lines: [String])?
    func close() {
      if let c = current { entries.append(Entry(name: c.name, takesValue: c.takesValue, text: c.lines.joined(separator: " "))) }
      current = nil
    }
    for line in help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      if line.hasPrefix("  -"), let name = trimmed.split(separator: " ").first(where: { $0.hasPrefix("--") }) {
        close()
        let header = trimmed.components(separatedBy: "  ").first ?? trimmed
        current = (String(name.split(separator: ",")[0]), header.contains("<"), [trimmed])
      } else if !line.hasPrefix(" ") {
        close()
      } else if current != nil {
        current!.lines.append(trimmed)
      }
    }
    close()
    return entries
  }

  static func usage(_ help: String) -> String {
    let lines = help.split(separator: "\n").map(String.init)
    guard let start = lines.firstIndex(where: { $0.hasPrefix("USAGE:") }) else { return "" }
    return lines[start...].prefix { !$0.isEmpty && ($0.hasPrefix("USAGE:") || $0.hasPrefix(" ")) }.joined(separator: " ")
  }

  @Test(arguments: paths)
  func everyOptionStatesItsDefault(_ path: String) throws {
    let type = try #require(Self.command(path))
    let help = AEPSL.helpMessage(for: type, columns: 100)
    let usage = Self.usage(help)
    let entries = Self.entries(help).filter { $0.takesValue && $0.name != "--help" }
    #expect(!entries.isEmpty, "no options found in:\n\(help)")
    for entry in entries {
      let required = usage.range(of: "(^|[^\\[])\(entry.name) <", options: .regularExpression) != nil
      let stated = entry.text.range(of: "default", options: .caseInsensitive) != nil
      #expect(required || stated || Self.offWhenAbsent.contains("\(path) \(entry.name)"),
              "aepsl \(path) \(entry.name) states no default: \(entry.text)")
    }
  }

  /// Defaults that a reader looks for first, as --help prints them.
  @Test(arguments: [
    ("synth", "--train", "(default: 800)"),
    ("erase", "--epochs", "Default: 8 for tiny"),
    ("erase", "--batch-size", "Default: 32 for tiny, 4 for largefov"),
    ("erase", "--net", "(default: tiny)"),
    ("train-seg", "--epochs", "Default: 12 for tiny"),
    ("train-seg", "--batch-size", "Default: 16 for tiny, 4 for largefov"),
    ("train-seg", "--lr", "Default: 0.05 for tiny, 0.001 for largefov"),
    ("train-seg", "--confidence", "(default: 0.1)"),
    ("predict", "--crf", "default: on)"),
    ("predict", "--split", "(default: val)"),
    ("masks", "--background", "default: saliency)"),
    ("crf", "--threads", "Default: all cores"),
    ("bench engine", "--max-load", "(default: 5.0)"),
    ("bench allreduce", "--latency", "(default: 50.0)"),
  ])
  func aDefaultIsVisible(_ path: String, _ option: String, _ text: String) throws {
    let type = try #require(Self.command(path))
    let entry = Self.entries(AEPSL.helpMessage(for: type, columns: 100)).first { $0.name == option }
    #expect(entry?.text.contains(text) == true, "aepsl \(path) \(option): \(entry?.text ?? "not in --help")")
  }

  @Test func everyCommandIsListed() {
    for path in Self.paths { #expect(Self.command(path) != nil, "\(path)") }
  }

  /// The root lists every command, and the hidden options stay hidden.
  @Test func theRootListsEveryCommand() {
    let help = AEPSL.helpMessage(columns: 100)
    for name in ["run", "synth", "dataset", "erase", "masks", "train-seg", "predict", "eval", "report", "crf", "export", "bench"] {
      #expect(help.contains("  \(name) "), "\(name) missing from:\n\(help)")
    }
    let engine = AEPSL.helpMessage(for: BenchEngineCommand.self, columns: 100)
    #expect(!engine.contains("--child"))
    #expect(!AEPSL.helpMessage(for: DatasetStatsCommand.self, columns: 100).contains("--strict"))
  }
}
