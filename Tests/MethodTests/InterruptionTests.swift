import AEPSLData
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import AEPSLTestSupport
import Foundation
import Testing
@testable import AEPSLMethod

/// Issue 7: interruption (SIGINT, SIGTERM, SIGKILL) and resume, NaN losses, full and
/// read-only disks.
@Suite("Interruption, resume, non-finite losses, disks", .serialized)
struct InterruptionTests {
  /// The `aepsl` binary built beside this test bundle (swift test builds it).
  static var binary: URL? { builtAEPSLBinary }

  static func makeDataset(train: Int, size: Int = 40) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-interrupt-\(UUID().uuidString)")
    try SyntheticDataset(configuration: .init(seed: 6, trainCount: train, valCount: 2, size: size)).write(to: dir, threads: 1)
    return dir
  }

  /// `aepsl erase` on `dataset` into `run`: one step of 20 short epochs, one thread.
  static func erase(_ dataset: URL, _ run: URL) throws -> Process {
    let p = Process()
    p.executableURL = try #require(binary, "the aepsl binary is not beside the test bundle; build it (swift build)")
    p.arguments = ["erase", "--dataset", dataset.path, "--run", run.path, "--max-steps", "1", "--epochs", "20",
                   "--batch-size", "4", "--crop-size", "48", "--threads", "1", "--seed", "3", "--quiet"]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = Pipe()
    try p.run()
    return p
  }

  static func finish(_ p: Process) -> (status: Int32, stderr: String) {
    let data = (p.standardError as! Pipe).fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
  }

  /// Waits until the training state exists and has reached `epoch`; false if the process
  /// ended first.
  static func waitForState(_ run: URL, epoch: Int, process: Process) -> Bool {
    let state = EraseLayout(run: run).trainingState(1)
    while process.isRunning {
      if let file = try? SafetensorsFile(contentsOf: state), let e = file.metadata["epoch"].flatMap(Int.init), e >= epoch {
        return true
      }
      usleep(2000)
    }
    return false
  }

  @Test func killedAndInterruptedTrainingResumesToTheSameWeightsAsAnUninterruptedRun() throws {
    let dataset = try Self.makeDataset(train: 24, size: 48)
    defer { try? FileManager.default.removeItem(at: dataset) }
    let layout = { (run: URL) in EraseLayout(run: run) }

    // The reference: never interrupted.
    let reference = dataset.appendingPathComponent("run-reference")
    let ref = Self.finish(try Self.erase(dataset, reference))
    #expect(ref.status == 0, "\(ref.stderr)")

    // SIGINT mid-training: the state is saved, exit status 130.
    let run = dataset.appendingPathComponent("run-interrupted")
    let first = try Self.erase(dataset, run)
    #expect(Self.waitForState(run, epoch: 3, process: first), "training ended before it could be interrupted")
    kill(first.processIdentifier, SIGINT)
    let stopped = Self.finish(first)
    #expect(stopped.status == 130, "\(stopped.stderr)")
    #expect(stopped.stderr.contains("interrupted by SIGINT"), "\(stopped.stderr)")
    #expect(stopped.stderr.contains("training-state.safetensors"), "\(stopped.stderr)")
    let saved = try SafetensorsFile(contentsOf: layout(run).trainingState(1)).metadata
    #expect(!FileManager.default.fileExists(atPath: layout(run).checkpoint(1).path))

    // SIGKILL later on: no handler runs; the last epoch's state is what a rerun finds.
    let second = try Self.erase(dataset, run)
    #expect(Self.waitForState(run, epoch: (Int(saved["epoch"] ?? "") ?? 3) + 2, process: second))
    kill(second.processIdentifier, SIGKILL)
    let killed = Self.finish(second)
    #expect(killed.status != 0)
    #expect(!FileManager.default.fileExists(atPath: layout(run).checkpoint(1).path), "killed too late: nothing to resume")

    // The rerun resumes and ends where the uninterrupted run ended, bit for bit.
    let third = Self.finish(try Self.erase(dataset, run))
    #expect(third.status == 0, "\(third.stderr)")
    let a = try Data(contentsOf: layout(reference).checkpoint(1))
    let b = try Data(contentsOf: layout(run).checkpoint(1))
    #expect(a == b, "the resumed classifier differs from the uninterrupted one")
    #expect(try Data(contentsOf: layout(reference).lossCurve(1)) == Data(contentsOf: layout(run).lossCurve(1)))
    #expect(!FileManager.default.fileExists(atPath: layout(run).trainingState(1).path), "the state is removed once trained")
    // Every artefact is whole: the manifest parses and every CAM and region reads.
    #expect(try StageManifest.read(from: layout(run).root) != nil)
    let ids = try VOCDataset.readList(dataset.appendingPathComponent("ImageSets/Segmentation/train.txt"))
    for id in ids {
      _ = try NumPyArray.read(contentsOf: layout(run).cam(1, id))
      _ = try LabelMap(contentsOf: layout(run).erased(1, id))
    }
  }

  @Test func aNaNLossStopsNamingTheStepAndIterationAndKeepsTheLastGoodState() throws {
    let dataset = try Self.makeDataset(train: 8)
    defer { try? FileManager.default.removeItem(at: dataset) }
    let set = try VOCDataset(root: dataset).classificationSet(split: "train")
    let loader = BatchLoader(source: set.source(), classes: set.classes.count, options: .init(
      batchSize: 4, augmentation: Augmentation(scales: 1...1, crop: 40, randomCrop: true, flip: true), shuffle: true, seed: 1))
    let model = Classifier(spec: BackboneSpec.named("tiny")!, classes: set.classes.count, seed: 1)
    let state = TrainingStateFile(url: dataset.appendingPathComponent("state.safetensors"), settings: "test")
    let error = #expect(throws: NonFiniteLossError.self) {
      _ = try trainClassifier(model, loader: loader, schedule: TrainingSchedule(epochs: 3, learningRate: 0.01),
                              loss: .mse, stage: "erase step 2", progress: .init(quiet: true), state: state, afterEpoch: { epoch, _ in
        // After epoch 1 is saved, a weight turns NaN: the first iteration of epoch 2 fails.
        if epoch == 1, let p = model.parameters.last {
          p.value.data[0] = .nan
          p.version += 1
        }
      })
    }
    #expect(error?.epoch == 2 && error?.iteration == loader.batchesPerEpoch)
    let text = error.map { "\($0)" } ?? ""
    #expect(text.contains("erase step 2") && text.contains("epoch 2, iteration \(loader.batchesPerEpoch)"), "\(text)")
    #expect(text.contains(state.url.path), "\(text)")
    let kept = try SafetensorsFile(contentsOf: state.url)
    #expect(kept.metadata["epoch"] == "2", "the state after epoch 1 (epoch 2 next) is kept")
    #expect(kept.tensors.values.allSatisfy { $0.values.allSatisfy(\.isFinite) })
  }

  // MARK: Disks (need root and mount(8); skipped elsewhere)

  static let canMount: Bool = {
    guard getuid() == 0 else { return false }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-mount-probe-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=16k", "tmpfs", dir.path]) == 0 else { return false }
    _ = run("/bin/umount", [dir.path])
    return true
  }()

  @discardableResult
  static func run(_ tool: String, _ arguments: [String]) -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = arguments
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return -1 }
    p.waitUntilExit()
    return p.terminationStatus
  }

  /// Every file under `dir` is whole: no temporary left over, every JSON parses.
  static func expectNothingHalfWritten(_ dir: URL) throws {
    let files = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
    for file in files where !file.hasDirectoryPath {
      #expect(!file.lastPathComponent.hasSuffix(".tmp"), "left behind: \(file.path)")
      if file.pathExtension == "json" { _ = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) }
      if file.pathExtension == "safetensors" { _ = try SafetensorsFile(contentsOf: file) }
    }
  }

  @Test(.enabled(if: canMount, "needs root and mount(8) for a tmpfs"))
  func aFullDiskIsAClearErrorAndNothingIsHalfWritten() throws {
    let dataset = try Self.makeDataset(train: 8)
    defer { try? FileManager.default.removeItem(at: dataset) }
    let run = dataset.appendingPathComponent("full")
    try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
    #expect(Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", run.path]) == 0)
    defer { Self.run("/bin/umount", [run.path]) }
    var config = EraseConfiguration(dataset: dataset.path, net: "tiny")
    config.schedule.epochs = 1
    config.schedule.minIterations = nil
    config.batchSize = 4
    config.cropSize = 40
    config.maxSteps = 1
    let error = #expect(throws: (any Error).self) {
      try EraseStage.run(config, run: run, progress: .init(quiet: true), log: { _ in })
    }
    let text = error.map { "\($0)" } ?? ""
    #expect(text.contains("No space left on device") && text.contains("Free disk space"), "\(text)")
    #expect(text.contains(run.path), "\(text)")
    try Self.expectNothingHalfWritten(run)
  }

  @Test(.enabled(if: canMount, "needs root and mount(8) for a tmpfs"))
  func aReadOnlyOutputDirectoryIsAClearError() throws {
    let dataset = try Self.makeDataset(train: 4)
    defer { try? FileManager.default.removeItem(at: dataset) }
    let run = dataset.appendingPathComponent("readonly")
    try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
    #expect(Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", run.path]) == 0)
    defer { Self.run("/bin/umount", [run.path]) }
    let error = #expect(throws: AEPSLError.self) {
      try EraseStage.run(EraseConfiguration(dataset: dataset.path), run: run, progress: .init(quiet: true), log: { _ in })
    }
    #expect(error?.file == run.appendingPathComponent("erase").path)
    #expect(error?.problem.contains("Read-only file system") == true, "\(String(describing: error))")
    #expect(error?.fix?.contains("writable") == true)
  }
}

