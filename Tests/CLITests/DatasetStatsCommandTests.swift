import AEPSLData
import AEPSLFiles
import ArgumentParser
import Foundation
import Testing
@testable import AEPSLCommands

/// `aepsl dataset stats` fails when it finds a problem, so that a script can stop before a
/// long run, and names a dataset directory that is not there instead of printing zeros.
@Suite("aepsl dataset stats", .serialized)
struct DatasetStatsCommandTests {
  static func run(_ arguments: [String]) throws {
    var command = try AEPSL.parseAsRoot(arguments)
    try command.run()
  }

  @Test func aDirectoryThatIsNotThereIsNamed() throws {
    let missing = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-no-such-dataset-\(UUID().uuidString)")
    let error = #expect(throws: AEPSLError.self) { try Self.run(["dataset", "stats", missing.path]) }
    #expect(error?.file == missing.path && error?.kind == .missingFile, "\(String(describing: error))")
    #expect(error?.description.contains("aepsl synth") == true, "\(String(describing: error))")
  }

  @Test func aProblemFailsTheCommandAndACleanDatasetPasses() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-stats-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let summary = try SyntheticDataset(configuration: .init(seed: 1, trainCount: 4, valCount: 2, size: 32))
      .write(to: root, threads: 1)
    try Self.run(["dataset", "stats", root.path, "--split", "train", "--check-masks"])

    try FileManager.default.removeItem(at: root.appendingPathComponent("JPEGImages/\(summary.trainIDs[1]).jpg"))
    #expect(throws: ExitCode.failure) { try Self.run(["dataset", "stats", root.path, "--split", "train"]) }
    // --strict, from when problems did not fail the command, still parses and still fails.
    #expect(throws: ExitCode.failure) { try Self.run(["dataset", "stats", root.path, "--split", "train", "--strict"]) }
    // The other split has no problem.
    try Self.run(["dataset", "stats", root.path, "--split", "val"])
  }
}
