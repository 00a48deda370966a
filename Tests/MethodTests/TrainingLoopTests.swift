import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import Foundation
import Testing
@testable import AEPSLMethod

/// The one training loop: its resume format, the words of a stop and of a resume, and the
/// progress rate after a resume.
@Suite("Training loop")
struct TrainingLoopTests {
  static func dataset() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-loop-\(UUID().uuidString)")
    try SyntheticDataset(configuration: .init(seed: 4, trainCount: 8, valCount: 2, size: 40)).write(to: dir, threads: 1)
    return dir
  }

  /// A classifier trained in `TrainingLoop` (the erasing stage's step, 2 batches an epoch),
  /// stopped by its own flag from `stopAfterEpoch` on.
  static func train(_ dataset: URL, state: URL, epochs: Int = 3, stopAfterEpoch: Int? = nil,
                    log: @escaping (String) -> Void = { _ in }) throws -> (Classifier, [Float]) {
    let set = try VOCDataset(root: dataset).classificationSet(split: "train")
    let loader = BatchLoader(source: set.source(), classes: set.classes.count, options: .init(
      batchSize: 4, augmentation: Augmentation(scales: 1...1, crop: 40, randomCrop: true, flip: true), shuffle: true, seed: 2))
    let model = Classifier(spec: BackboneSpec.named("tiny")!, classes: set.classes.count, seed: 1)
    let stop = StopFlag()
    var loop = TrainingLoop(stage: "test", loader: loader, schedule: TrainingSchedule(epochs: epochs, learningRate: 0.01),
                            network: model.backbone, parameters: model.parameters, buffers: model.buffers,
                            trainable: model.parameters, dropoutStream: "dropout by iteration", terms: 1,
                            state: TrainingStateFile(url: state, settings: "s"), progress: .init(quiet: true), log: log)
    loop.stopRequested = { stop.value }
    let curve = try loop.run(step: { batch, _ in
      let loss: ClassificationLoss = .mse
      let result = loss(logits: model.forward(batch.images, training: true), targets: batch.targets)
      return TrainingStep(loss: result.value, terms: [result.value]) { model.backward(result.gradient) }
    }, record: { ($0.mean(0), "") }, afterEpoch: { epoch, _ in
      if let stopAfterEpoch, epoch >= stopAfterEpoch { stop.value = SIGINT }
    })
    return (model, curve)
  }

  final class StopFlag: @unchecked Sendable {
    var value: Int32?
  }

  /// A stop says where it stopped in the words the resume uses, and the resumed run ends
  /// with the weights and losses of an uninterrupted one.
  @Test func aStopAndItsResumeNameTheSameEpochAndEndAsAnUninterruptedRun() throws {
    let dataset = try Self.dataset()
    defer { try? FileManager.default.removeItem(at: dataset) }
    let (reference, referenceCurve) = try Self.train(dataset, state: dataset.appendingPathComponent("reference.safetensors"))
    let state = dataset.appendingPathComponent("state.safetensors")
    let stopped = #expect(throws: InterruptedError.self) { _ = try Self.train(dataset, state: state, stopAfterEpoch: 1) }
    let said = "epoch 2 of 3, 0 of 2 batches done"
    #expect(stopped?.detail.contains("stopped at \(said)") == true, "\(String(describing: stopped))")
    #expect(stopped?.detail.contains(state.path) == true)
    var lines: [String] = []
    let (resumed, curve) = try Self.train(dataset, state: state, log: { lines.append($0) })
    #expect(lines.contains { $0.contains("resuming at \(said)") }, "\(lines)")
    #expect(curve == referenceCurve)
    for (a, b) in zip(resumed.parameters, reference.parameters) {
      let same = a.value.values == b.value.values
      #expect(same, "parameter \(a.name) differs after resuming")
    }
  }

  /// A state saved with other settings is not resumed: training starts over and says so.
  @Test func aStateOfOtherSettingsIsNotResumed() throws {
    let dataset = try Self.dataset()
    defer { try? FileManager.default.removeItem(at: dataset) }
    let state = dataset.appendingPathComponent("state.safetensors")
    _ = try? Self.train(dataset, state: state, stopAfterEpoch: 1)
    var metadata = try SafetensorsFile(contentsOf: state).metadata
    #expect(metadata["kind"] == "training-state" && metadata["epoch"] == "2")
    metadata["settings"] = "other"
    #expect(TrainingPosition.from(metadata, settings: "s", terms: 1, counts: 0) == nil)
    #expect(TrainingPosition.from(try SafetensorsFile(contentsOf: state).metadata, settings: "s", terms: 1, counts: 0)?.epoch == 2)
    #expect(TrainingPosition.from(try SafetensorsFile(contentsOf: state).metadata, settings: "s", terms: 3, counts: 2) == nil,
            "a state of another loop's shape is not resumed")
  }

  /// Sums go to the state as bit patterns: awkward values come back exactly.
  @Test func epochTotalsRoundTripBitForBit() throws {
    let totals = EpochTotals(epoch: 3, sums: [0.1 + 0.2, Double.ulpOfOne, 1e300, -0.0], counts: [7, 9], images: 12,
                             learningRate: Float(0.1).nextUp)
    let back = try JSONDecoder().decode(EpochTotals.self, from: JSONEncoder().encode(totals))
    #expect(back.sums.map(\.bitPattern) == totals.sums.map(\.bitPattern))
    #expect(back.learningRate.bitPattern == totals.learningRate.bitPattern)
    #expect(back == totals)
  }

  /// The first progress line after resuming 1,000,000 images counts only the work done since.
  @Test func theRateAfterAResumeCountsOnlyNewWork() throws {
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-progress-\(UUID().uuidString).jsonl")
    defer { try? FileManager.default.removeItem(at: log) }
    let bar = ProgressReporter("resumed", total: 1_000_100, unit: "images", options: .init(quiet: true, jsonLog: log),
                               resumedAt: 1_000_000)
    usleep(20_000)
    bar.advance(by: 100)
    let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
    let record = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
    let rate = try #require((record["rate"] as? NSNumber)?.doubleValue)
    #expect((record["done"] as? NSNumber)?.intValue == 1_000_100)
    #expect(rate > 0 && rate <= 100 / 0.02, "\(rate) images/s")
  }
}
