import AEPSLData
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation
import Testing
@testable import AEPSLMethod

/// Thread-safe collector of log lines and refiner calls.
final class Recorder: @unchecked Sendable {
  private let lock = NSLock()
  private var _lines: [String] = []
  private var _calls = 0
  var lines: [String] { lock.withLock { _lines } }
  var calls: Int { lock.withLock { _calls } }
  func log(_ line: String) { lock.withLock { _lines.append(line) } }
  func called() { lock.withLock { _calls += 1 } }
}

/// train-seg and predict end to end on a small generated dataset (release build: seconds).
@Suite("Segmentation and prediction stages", .serialized)
struct SegmentationStageTests {
  struct Fixture {
    let root: URL
    let dataset: URL
    let masks: URL
    let run: URL
  }

  /// 16 training and 4 validation scenes of 64x64. The test's stand-in for `aepsl masks`:
  /// the ground-truth masks with their 255 borders, copied to a masks directory.
  static func fixture(_ name: String = #function) throws -> Fixture {
    let root = FileManager.default.temporaryDirectory
      .appendingPathComponent("aepsl-seg-tests-\(name.filter(\.isLetter))-\(UUID().uuidString)", isDirectory: true)
    let dataset = root.appendingPathComponent("synth")
    let synth = SyntheticDataset(configuration: .init(seed: 3, trainCount: 16, valCount: 4, size: 64))
    let summary = try synth.write(to: dataset, threads: 2)
    let masks = root.appendingPathComponent("masks")
    try FileManager.default.createDirectory(at: masks, withIntermediateDirectories: true)
    for id in summary.trainIDs {
      try FileManager.default.copyItem(at: dataset.appendingPathComponent("SegmentationClass/\(id).png"),
                                       to: masks.appendingPathComponent("\(id).png"))
    }
    return Fixture(root: root, dataset: dataset, masks: masks, run: root.appendingPathComponent("run"))
  }

  /// 8 epochs of 4 batches: enough for the mask cross-entropy to fall clearly.
  static func configuration(_ f: Fixture, epochs: Int = 8) -> SegmentationConfiguration {
    var c = SegmentationConfiguration(net: "tiny")
    c.dataset = f.dataset.path
    c.split = "train"
    c.masks = f.masks.path
    c.schedule.epochs = epochs
    c.schedule.minIterations = nil
    c.schedule.learningRate = 0.05
    c.batchSize = 4
    c.cropSize = 64
    return c
  }

  static func modified(_ url: URL) throws -> Date {
    try FileManager.default.attributesOfItem(atPath: url.path)[.modificationDate] as! Date
  }

  static func pngs(_ dir: URL) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".png") }.sorted()
  }

  /// An argmax "refiner" that counts its calls, standing in for the dense CRF.
  static func countingRefinement(_ recorder: Recorder) -> Refinement {
    Refinement(refine: { _, p, labels in
      recorder.called()
      return ConfidenceWeighting.argmax(p, labels: labels)
    }, description: "test argmax")
  }

  @Test(arguments: [
    // (network, classes, epochs given exactly, updates at least)
    ("tiny", 6, false, 1800),  // the demo: 6 x 300 adds nothing
    ("tiny", 12, false, 3600),
    ("tiny", 20, false, 6000),
    ("tiny", 20, true, nil),  // --epochs means exactly that many
    ("largefov", 20, false, nil),  // no minimum: 20 epochs
  ] as [(String, Int, Bool, Int?)])
  func moreClassesTrainEverySegmenterLonger(net: String, classes: Int, exact: Bool, updates: Int?) {
    var c = SegmentationConfiguration(net: net)
    if exact { (c.schedule.epochs, c.schedule.minIterations) = (3, nil) }
    let schedule = c.schedule(classes: classes)
    #expect(schedule.minIterations == updates)
    // 800 images in batches of 16: 36 epochs for 6 classes, 120 for 20.
    if let updates { #expect(schedule.resolved(batchesPerEpoch: 50).epochs == updates / 50) }
  }

  @Test func pslThenPSLPlusThenPredictAndRerunsDoNothing() throws {
    let f = try Self.fixture()
    defer { try? FileManager.default.removeItem(at: f.root) }
    var config = Self.configuration(f)
    config.pslPlus = true
    config.plusLearningRate = 0.02
    config.plusEpochs = 10
    config.plusUncertain = .crfChanged
    let first = Recorder()
    let rounds = try SegmentationStage.run(config, run: f.run, refinement: Self.countingRefinement(first),
                                           progress: .init(quiet: true), log: first.log)
    #expect(rounds.map(\.variant) == [.psl, .pslPlus])
    let layout = SegmentationLayout(run: f.run)

    for variant: ModelVariant in [.psl, .pslPlus] {
      #expect(FileManager.default.fileExists(atPath: layout.checkpoint(variant).path))
      #expect(!FileManager.default.fileExists(atPath: layout.trainingState(variant).path), "the resume state is removed when done")
      let manifest = try #require(try StageManifest.read(from: layout.directory(variant)))
      #expect(manifest.parameters["psl"] == "on" && manifest.parameters["supervision"] == "weak")
      let csv = try String(contentsOf: layout.lossCurve(variant), encoding: .utf8).split(separator: "\n")
      #expect(csv.first == "epoch,total,classification,segmentation,online,online_agreement,learning_rate")
      let curve = try SegmentationStage.readLossCurve(layout.lossCurve(variant))
      #expect(curve.map(\.epoch) == Array(1...(variant == .pslPlus ? 10 : 8)))
      for row in curve {
        #expect(row.terms.total.isFinite && row.terms.classification > 0 && row.terms.segmentation >= 0 && row.terms.online >= 0)
        #expect(abs(row.terms.total - (row.terms.classification + row.terms.segmentation + row.terms.online)) < 1e-5)
        #expect((0...1).contains(row.onlineAgreement ?? -1))
      }
      // The network learns the masks: the mask cross-entropy falls.
      #expect(curve.last!.terms.segmentation < 0.8 * curve.first!.terms.segmentation,
              "\(variant): \(curve.map(\.csvRow))")
      let info = try SegmenterInfo(checkpoint: layout.checkpoint(variant))
      #expect(info.net == "tiny" && info.classNames == SyntheticDataset.classes.names && info.classificationTrained)
    }
    let round2 = try #require(try StageManifest.read(from: layout.directory(.pslPlus)))
    #expect(round2.parameters["masks"] == layout.plusMasks.standardizedFileURL.path || round2.parameters["masks"] == layout.plusMasks.path)
    // From scratch, PSL+ starts from round 1's network.
    #expect(round2.parameters["plus_init"] == "first-round" && first.lines.contains { $0.contains("psl-plus starts from") })
    // Its own learning rate, epochs and uncertain-pixel rule are recorded; round 1 keeps its rate.
    #expect(round2.parameters["lr"] == "0.02" && round2.parameters["uncertain"] == "crf-changed")
    #expect(round2.parameters["epochs"] == "10" && round2.parameters["min_iterations"] == "none")
    #expect(try StageManifest.read(from: layout.directory(.psl))?.parameters["lr"] == "0.05")
    let plusMasks = try #require(try StageManifest.read(from: layout.plusMasks))
    #expect(plusMasks.parameters["uncertain"] == "crf-changed")
    // The test's refiner is the argmax itself: it changes no pixel, so none is ignored.
    #expect(plusMasks.notes["changed_fraction"] == "0.0")

    // PSL+ masks: one per training image, made through the refiner, holding only labels
    // the image has (or background, or 255).
    let dataset = try VOCDataset(root: f.dataset)
    let set = try dataset.classificationSet(split: "train")
    #expect(try Self.pngs(layout.plusMasks).count == set.count)
    #expect(first.calls == set.count)
    for sample in set.samples {
      let mask = try LabelMap(contentsOf: layout.plusMasks.appendingPathComponent("\(sample.id).png"))
      let allowed = Set([0, 255] + sample.labels.map { $0 + 1 })
      #expect(mask.labels.allSatisfy { allowed.contains(Int($0)) }, "\(sample.id)")
      #expect(mask.width == 64 && mask.height == 64)
    }

    // A rerun finds everything done: nothing is trained, predicted or rewritten.
    let stamps = try ([.psl, .pslPlus] as [ModelVariant]).map { try Self.modified(layout.directory($0).appendingPathComponent("manifest.json")) }
    let second = Recorder()
    let again = try SegmentationStage.run(config, run: f.run, refinement: Self.countingRefinement(second),
                                          progress: .init(quiet: true), log: second.log)
    #expect(second.calls == 0)
    #expect(again.map { $0.curve.count } == [8, 10])
    #expect(second.lines.filter { $0.contains("already") }.count == 3, "\(second.lines)")
    #expect(try ([.psl, .pslPlus] as [ModelVariant]).map { try Self.modified(layout.directory($0).appendingPathComponent("manifest.json")) } == stamps)

    // Asking for round 1 alone afterwards reuses it too (PSL+ settings are not round 1's).
    config.pslPlus = false
    let third = Recorder()
    _ = try SegmentationStage.run(config, run: f.run, progress: .init(quiet: true), log: third.log)
    #expect(third.lines.contains { $0.contains("psl already done") })

    // Other settings on a finished variant are refused, naming the change.
    config.schedule.epochs = 9
    config.schedule.minIterations = nil
    #expect(throws: AEPSLError.self) {
      try SegmentationStage.run(config, run: f.run, progress: .init(quiet: true), log: { _ in })
    }

    // predict: the default model is psl-plus.
    let checkpoint = try PredictStage.checkpoint(run: f.run, model: nil)
    #expect(checkpoint == layout.checkpoint(.pslPlus))
    let out = f.root.appendingPathComponent("pred")
    var predict = PredictConfiguration(checkpoint: checkpoint.path, output: out.path)
    predict.dataset = f.dataset.path
    predict.split = "val"
    predict.overlay = true
    let p1 = Recorder()
    try PredictStage.run(predict, refinement: Self.countingRefinement(p1), progress: .init(quiet: true), log: p1.log)
    let ids = try dataset.imageIDs(split: "val")
    #expect(try Self.pngs(out) == ids.map { "\($0).png" })
    #expect(p1.calls == ids.count)
    for id in ids {
      let map = try LabelMap(contentsOf: out.appendingPathComponent("\(id).png"))
      #expect(map.width == 64 && map.height == 64 && map.labels.allSatisfy { $0 <= 6 })
      #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("overlay/\(id).jpg").path))
    }
    let predicted = try Self.modified(out.appendingPathComponent("manifest.json"))
    let p2 = Recorder()
    try PredictStage.run(predict, refinement: Self.countingRefinement(p2), progress: .init(quiet: true), log: p2.log)
    #expect(p2.calls == 0 && p2.lines.contains { $0.contains("already done") })
    #expect(try Self.modified(out.appendingPathComponent("manifest.json")) == predicted)

    // Label maps this model already made are read, not computed again: only overlays are new.
    var overlays = predict
    overlays.output = f.root.appendingPathComponent("pred-overlays").path
    overlays.sameLabelsIn = out.path
    try LabelMap(width: 64, height: 64, labels: [UInt8](repeating: 0, count: 64 * 64)).write(to: out.appendingPathComponent("\(ids[0]).png"))
    let p3 = Recorder()
    try PredictStage.run(overlays, refinement: Self.countingRefinement(p3), progress: .init(quiet: true), log: p3.log)
    #expect(p3.calls == 0)
    for id in ids {
      #expect(try Data(contentsOf: URL(fileURLWithPath: overlays.output).appendingPathComponent("\(id).png"))
                == Data(contentsOf: out.appendingPathComponent("\(id).png")))
      #expect(FileManager.default.fileExists(atPath: URL(fileURLWithPath: overlays.output).appendingPathComponent("overlay/\(id).jpg").path))
    }

    // A directory of images of any size.
    let images = f.root.appendingPathComponent("images")
    try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
    let odd = try dataset.image(ids[0]).resized(width: 45, height: 70)
    try odd.write(to: images.appendingPathComponent("odd.png"))
    var loose = PredictConfiguration(checkpoint: layout.checkpoint(.psl).path, output: f.root.appendingPathComponent("pred-images").path)
    loose.images = images.path
    try PredictStage.run(loose, progress: .init(quiet: true), log: { _ in })
    let map = try LabelMap(contentsOf: f.root.appendingPathComponent("pred-images/odd.png"))
    #expect(map.width == 45 && map.height == 70)

    // Round 1 retrained: the PSL+ masks made from the old network are not silently reused.
    config.schedule.epochs = 8
    config.schedule.minIterations = nil
    config.pslPlus = true
    try FileManager.default.removeItem(at: layout.directory(.psl))
    do {
      try SegmentationStage.run(config, run: f.run, progress: .init(quiet: true), log: { _ in })
      Issue.record("stale PSL+ masks were reused")
    } catch let error as AEPSLError {
      #expect(error.file == layout.plusMasks.path && error.problem.contains("checkpoint_trained"), "\(error)")
    }
  }

  @Test func fullSupervisionIsMarkedAsTheUpperBoundAndNeverTheDefaultModel() throws {
    let f = try Self.fixture()
    defer { try? FileManager.default.removeItem(at: f.root) }
    var config = SegmentationConfiguration(net: "tiny", supervision: .full)
    config.dataset = f.dataset.path
    config.split = "train"
    config.schedule.epochs = 1
    config.schedule.minIterations = nil
    config.batchSize = 8
    config.cropSize = 64
    #expect(config.psl == false && config.firstVariant == .full)
    let recorder = Recorder()
    let rounds = try SegmentationStage.run(config, run: f.run, progress: .init(quiet: true), log: recorder.log)
    #expect(rounds.map(\.variant) == [.full])
    #expect(recorder.lines.contains { $0.contains("FULLY SUPERVISED upper bound") })
    let layout = SegmentationLayout(run: f.run)
    let manifest = try #require(try StageManifest.read(from: layout.directory(.full)))
    #expect(manifest.parameters["supervision"] == "full" && manifest.parameters["psl"] == "off")
    #expect(manifest.notes["fully_supervised_upper_bound"] != nil)
    let info = try SegmenterInfo(checkpoint: layout.checkpoint(.full))
    #expect(!info.classificationTrained, "plain DeepLab: the classification branch is not trained")
    let curve = try SegmentationStage.readLossCurve(layout.lossCurve(.full))
    #expect(curve.count == 1 && curve[0].terms.classification == 0 && curve[0].terms.online == 0 && curve[0].onlineAgreement == nil)
    // The upper bound is used only when asked for by name.
    #expect(throws: AEPSLError.self) { try PredictStage.checkpoint(run: f.run, model: nil) }
    #expect(try PredictStage.checkpoint(run: f.run, model: .full) == layout.checkpoint(.full))
  }

  /// Training killed during epoch 3 resumes from the state saved after epoch 2 and ends
  /// exactly where an uninterrupted run ends.
  @Test func anInterruptedTrainingResumesFromItsLastEpoch() throws {
    let f = try Self.fixture()
    defer { try? FileManager.default.removeItem(at: f.root) }
    let dataset = try VOCDataset(root: f.dataset)
    let set = try dataset.classificationSet(split: "train")
    let source = try SegmentationStage.trainingSource(set: set, dataset: dataset, masks: .directory(f.masks))
    var schedule = TrainingSchedule(epochs: 3, learningRate: 0.05)
    schedule.weightDecay = 1e-4
    func loader(_ s: SampleSource) -> BatchLoader {
      BatchLoader(source: s, classes: 6, options: .init(batchSize: 4, augmentation: .deepLab(crop: 64, scales: 0.75...1.25),
                                                        shuffle: true, dropLast: true, labelMaps: true, seed: 5))
    }
    func train(_ s: SampleSource, state: URL, log: @escaping (String) -> Void = { _ in }) throws -> (Segmenter, [SegmentationEpoch]) {
      let model = Segmenter(spec: .tiny, classes: 6, seed: 0)
      let curve = try SegmentationStage.trainSegmenter(model, trainable: model.parameters, loader: loader(s), schedule: schedule,
                                                       loss: SegmentationLoss(prohibitive: true), stage: "test", state: state,
                                                       fingerprint: "a", progress: .init(quiet: true), log: log)
      return (model, curve)
    }
    let (reference, referenceCurve) = try train(source, state: f.root.appendingPathComponent("reference.safetensors"))

    // Epochs 1 and 2 load 16 samples each; the first load of epoch 3 fails.
    let loads = Recorder()
    let failing = source.mapSamples { _, sample in
      loads.called()
      if loads.calls > 32 { throw AEPSLError(file: "test", problem: "interrupted", fix: "none") }
      return sample
    }
    let state = f.root.appendingPathComponent("state.safetensors")
    #expect(throws: AEPSLError.self) { _ = try train(failing, state: state) }
    let recorder = Recorder()
    let (resumed, curve) = try train(source, state: state, log: recorder.log)
    #expect(recorder.lines.contains { $0.contains("resuming at epoch 3 of 3, 0 of 4 batches done") }, "\(recorder.lines)")
    #expect(curve == referenceCurve)
    // Compared as Bools: a failing #expect on arrays this long spends minutes diffing them.
    for (a, b) in zip(resumed.parameters, reference.parameters) {
      let same = a.value.values == b.value.values
      #expect(same, "parameter \(a.name) differs after resuming")
    }
    for (a, b) in zip(resumed.buffers, reference.buffers) {
      let same = a.value.values == b.value.values
      #expect(same, "buffer \(a.name) differs after resuming")
    }
  }

  @Test func missingMasksAreReportedBeforeTraining() throws {
    let f = try Self.fixture()
    defer { try? FileManager.default.removeItem(at: f.root) }
    let victim = try Self.pngs(f.masks)[3]
    try FileManager.default.removeItem(at: f.masks.appendingPathComponent(victim))
    do {
      try SegmentationStage.run(Self.configuration(f), run: f.run, progress: .init(quiet: true), log: { _ in })
      Issue.record("training started without every mask")
    } catch let error as AEPSLError {
      #expect(error.file?.hasSuffix(victim) == true && error.problem.contains("1 of 16"))
    }
  }

  /// A truncated training image, a missing mask and a mask of the wrong size: `fail` stops
  /// before training naming the first, `skip` trains on the rest and lists all three.
  @Test func badTrainingImagesAndMasksFailOrAreSkippedAndListed() throws {
    let f = try Self.fixture()
    defer { try? FileManager.default.removeItem(at: f.root) }
    let ids = try Self.pngs(f.masks).map { String($0.dropLast(4)) }
    let image = f.dataset.appendingPathComponent("JPEGImages/\(ids[2]).jpg")
    let bytes = try Data(contentsOf: image)
    try bytes.prefix(bytes.count / 3).write(to: image)
    try FileManager.default.removeItem(at: f.masks.appendingPathComponent("\(ids[5]).png"))
    try LabelMap(width: 10, height: 12, labels: [UInt8](repeating: 0, count: 120))
      .write(to: f.masks.appendingPathComponent("\(ids[9]).png"))

    var config = Self.configuration(f, epochs: 1)
    let missing = #expect(throws: AEPSLError.self) {
      try SegmentationStage.run(config, run: f.run, progress: .init(quiet: true), log: { _ in })
    }
    #expect(missing?.file?.hasSuffix("\(ids[5]).png") == true && missing?.fix?.contains("--on-bad-image skip") == true,
            "\(String(describing: missing))")
    // With every mask present, the first bad file in list order is named.
    try FileManager.default.copyItem(at: f.dataset.appendingPathComponent("SegmentationClass/\(ids[5]).png"),
                                     to: f.masks.appendingPathComponent("\(ids[5]).png"))
    let truncated = #expect(throws: AEPSLError.self) {
      try SegmentationStage.run(config, run: f.run, progress: .init(quiet: true), log: { _ in })
    }
    #expect(truncated?.file == image.path && truncated?.fix?.contains("--on-bad-image skip") == true, "\(String(describing: truncated))")
    #expect(!FileManager.default.fileExists(atPath: SegmentationLayout(run: f.run).checkpoint(.psl).path))
    try FileManager.default.removeItem(at: f.masks.appendingPathComponent("\(ids[5]).png"))

    config.onBadImage = .skip
    let recorder = Recorder()
    let rounds = try SegmentationStage.run(config, run: f.run, progress: .init(quiet: true), log: recorder.log)
    #expect(rounds.count == 1)
    let manifest = try #require(try StageManifest.read(from: rounds[0].directory))
    #expect(manifest.skippedIDs == [ids[2], ids[5], ids[9]])
    #expect(manifest.notes["images"] == "13")
    let listed = manifest.notes["skipped_images"] ?? ""
    #expect(listed.contains("truncated") && listed.contains("no pseudo mask") && listed.contains("is 10x12 but its image is 64x64"),
            "\(listed)")
    #expect(recorder.lines.contains { $0.contains("3 bad images or masks skipped") })
  }

  /// predict under `skip` leaves a corrupt image out and lists it; eval scores the others.
  @Test func predictSkipsABadImageAndEvaluationLeavesItOut() throws {
    let f = try Self.fixture()
    defer { try? FileManager.default.removeItem(at: f.root) }
    try SegmentationStage.run(Self.configuration(f, epochs: 1), run: f.run, progress: .init(quiet: true), log: { _ in })
    let dataset = try VOCDataset(root: f.dataset)
    let val = try dataset.imageIDs(split: "val")
    try Data("not a JPEG".utf8).write(to: dataset.imageURL(val[1]))
    var predict = PredictConfiguration(checkpoint: SegmentationLayout(run: f.run).checkpoint(.psl).path,
                                       output: f.root.appendingPathComponent("pred").path)
    predict.dataset = f.dataset.path
    let failed = #expect(throws: AEPSLError.self) {
      try PredictStage.run(predict, progress: .init(quiet: true), log: { _ in })
    }
    #expect(failed?.file == dataset.imageURL(val[1]).path && failed?.fix?.contains("--on-bad-image skip") == true)
    predict.onBadImage = .skip
    let out = try PredictStage.run(predict, progress: .init(quiet: true), log: { _ in })
    #expect(try Self.pngs(out) == val.filter { $0 != val[1] }.map { "\($0).png" }.sorted())
    let manifest = try #require(try StageManifest.read(from: out))
    #expect(manifest.skippedIDs == [val[1]] && manifest.notes["images"] == "\(val.count - 1)")
    let report = try Evaluation.labelMaps(predictions: out, dataset: dataset, split: "val", progress: .init(quiet: true))
    #expect(report.images == val.count - 1)
  }

  /// A working resolution reaches the checkpoint, and prediction answers at the image's size.
  @Test func theWorkingResolutionIsRecordedAndPredictionReturnsToTheImageSize() throws {
    let f = try Self.fixture()
    defer { try? FileManager.default.removeItem(at: f.root) }
    var config = Self.configuration(f, epochs: 1)
    config.imageSide = .side(32)
    config.cropSize = 32
    try SegmentationStage.run(config, run: f.run, progress: .init(quiet: true), log: { _ in })
    let checkpoint = SegmentationLayout(run: f.run).checkpoint(.psl)
    #expect(try SegmenterInfo(checkpoint: checkpoint).imageSide == 32)
    var predict = PredictConfiguration(checkpoint: checkpoint.path, output: f.root.appendingPathComponent("pred").path)
    predict.dataset = f.dataset.path
    let out = try PredictStage.run(predict, progress: .init(quiet: true), log: { _ in })
    let first = try #require(try Self.pngs(out).first)
    let map = try LabelMap(contentsOf: out.appendingPathComponent(first))
    #expect(map.width == 64 && map.height == 64)
  }

  /// A smoke test of the real network: VGG-16 LargeFOV from random weights, PSL and PSL+ for
  /// one epoch on 48-pixel crops, then prediction at the images' size.
  @Test func largefovTrainsPSLAndPSLPlusAndPredicts() throws {
    let f = try Self.fixture()
    defer { try? FileManager.default.removeItem(at: f.root) }
    var config = SegmentationConfiguration(net: "largefov")
    config.dataset = f.dataset.path
    config.split = "train"
    config.masks = f.masks.path
    config.schedule.epochs = 1
    config.schedule.minIterations = nil
    config.batchSize = 4
    config.cropSize = 48
    config.pslPlus = true
    let rounds = try SegmentationStage.run(config, run: f.run, progress: .init(quiet: true), log: { _ in })
    #expect(rounds.map(\.variant) == [.psl, .pslPlus])
    #expect(rounds.allSatisfy { $0.curve.count == 1 && $0.curve[0].terms.total.isFinite })
    var predict = PredictConfiguration(checkpoint: rounds[1].checkpoint.path, output: f.root.appendingPathComponent("pred").path)
    predict.dataset = f.dataset.path
    let out = try PredictStage.run(predict, progress: .init(quiet: true), log: { _ in })
    let maps = try Self.pngs(out)
    #expect(maps.count == 4)
    let map = try LabelMap(contentsOf: out.appendingPathComponent(maps[0]))
    #expect(map.width == 64 && map.height == 64 && map.labels.allSatisfy { $0 <= 6 })
  }
}
