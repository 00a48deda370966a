import AEPSLFiles
import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import AEPSLImaging
@testable import AEPSLMethod
import Foundation
import Testing

@Suite("Erasing: stopping rule and cumulative erasure")
struct StoppingRuleTests {
  /// The steps merged when erasing goes step by step as `EraseStage.run` does, asking
  /// `failure(finalLosses:)` after each.
  static func merged(_ losses: [Float], ratio: Float) -> (steps: [Int], reason: String?) {
    let rule = StoppingRule(ratio: ratio)
    var seen: [Float] = []
    for loss in losses {
      seen.append(loss)
      if let reason = rule.failure(finalLosses: seen) { return (Array(1..<seen.count), reason) }
    }
    return (Array(1...seen.count), nil)
  }

  @Test(arguments: [
    ([0.2, 0.3, 0.39, 0.5] as [Float], [1, 2, 3], "step 4 did not converge"),
    ([0.2, 0.5, 0.3], [1], "step 2 did not converge"),  // a later step that converges again is not reached
    ([0.2, 0.4], [1, 2], nil),  // exactly the ratio still converges
    ([0.2, .nan], [1], "step 2 did not converge"),
    ([0.2], [1], nil),
    ([.nan], [1], nil),  // step 1 is always merged
  ] as [([Float], [Int], String?)])
  func stepsAreMergedUntilTheFirstThatFailsToConverge(losses: [Float], merged: [Int], reason: String?) {
    let got = Self.merged(losses, ratio: 2)
    #expect(got.steps == merged)
    if let reason {
      #expect(got.reason?.hasPrefix(reason) == true, "\(got.reason ?? "nil")")
      #expect(got.reason?.hasSuffix("merged steps 1-\(merged.count)") == true)
    } else {
      #expect(got.reason == nil)
    }
  }

  @Test func aSmallDatasetGetsMoreEpochsToReachTheMinimumIterations() {
    let schedule = TrainingSchedule(epochs: 8, learningRate: 0.1, minIterations: 200)
    #expect(schedule.resolved(batchesPerEpoch: 12).epochs == 17)  // 17 x 12 = 204 >= 200
    #expect(schedule.resolved(batchesPerEpoch: 25).epochs == 8)
    #expect(schedule.resolved(batchesPerEpoch: 400).epochs == 8)
    #expect(TrainingSchedule(epochs: 3, learningRate: 0.1).resolved(batchesPerEpoch: 1).epochs == 3)
  }

  @Test(arguments: [
    // (network, classes, batches per epoch, epochs given exactly, epochs trained)
    ("tiny", 6, 25, false, 8),  // the demo: 200 updates, 6 x 33 = 198 adds nothing
    ("tiny", 12, 19, false, 21),  // 12 x 33 = 396 updates: 21 x 19 = 399
    ("tiny", 20, 25, false, 27),  // 660 updates
    ("tiny", 20, 25, true, 3),  // --epochs 3 means 3
    ("largefov", 20, 25, false, 5),  // no per-class minimum
  ])
  func moreClassesTrainLonger(net: String, classes: Int, batches: Int, exact: Bool, epochs: Int) {
    var c = EraseConfiguration(dataset: "", net: net)
    if exact { (c.schedule.epochs, c.schedule.minIterations) = (3, nil) }
    #expect(c.schedule(classes: classes, batchesPerEpoch: batches).epochs == epochs)
  }

  @Test func tinyClassifiersTrainWithAdamAndBCE() {
    let tiny = EraseConfiguration(dataset: "", net: "tiny")
    #expect(tiny.schedule.optimizer == .adam && tiny.loss == .bce && tiny.schedule.learningRate == 0.001)
    let largefov = EraseConfiguration(dataset: "", net: "largefov")
    #expect(largefov.schedule.optimizer == nil && largefov.loss == .mse)
  }

  @Test func laterRegionsDefaultToTouchingForBothNetworks() {
    #expect(EraseConfiguration(dataset: "", net: "tiny").laterRegions == .touching)
    #expect(EraseConfiguration(dataset: "", net: "largefov").laterRegions == .touching)
  }

  @Test func tinyAveragesCAMsOverScalesAndFlips() {
    let tiny = EraseConfiguration(dataset: "", net: "tiny")
    #expect(tiny.camScales == [0.5, 1, 1.5, 2] && tiny.camFlip)
    let largefov = EraseConfiguration(dataset: "", net: "largefov")
    #expect(largefov.camScales == [1] && !largefov.camFlip)
  }

  @Test func nonFiniteLossNeverConverges() {
    let rule = StoppingRule(ratio: 100)
    #expect(!rule.converged(finalLoss: .nan, firstStepLoss: 0.2))
    #expect(!rule.converged(finalLoss: .infinity, firstStepLoss: 0.2))
    #expect(rule.converged(finalLoss: 0.3, firstStepLoss: 0.2))
  }

  @Test func erasedPixelsStayErasedAndEveryClassAddsItsRegion() {
    // 1x6 image; step t-1 erased pixel 0. Class A peaks at pixel 2, class B at pixel 5.
    let previous: [UInt8] = [1, 0, 0, 0, 0, 0]
    let a: [Float] = [0, 0.1, 1.0, 0.85, 0.2, 0]
    let b: [Float] = [0, 0, 0, 0.1, 0.5, 2.0]
    var two = StepRegions(labels: 2, width: 6, height: 1, rule: .maxRatio, delta: 0.2, later: .all)
    let erased = EraseStage.cumulativeErasure(previous: previous, regions: two.add(cams: [a, b]), pixels: 6)
    #expect(erased == [1, 0, 1, 1, 0, 1])
    var one = StepRegions(labels: 1, width: 6, height: 1, rule: .maxRatio, delta: 0.2, later: .all)
    let fresh = EraseStage.cumulativeErasure(previous: nil, regions: one.add(cams: [a]), pixels: 6)
    #expect(fresh == [0, 0, 1, 1, 0, 0])
  }

  @Test func touchingKeepsOnlyTheLaterPartsThatAdjoinTheClasssEarlierRegions() {
    // A 5x3 image, one label. Step 1 mines the top-left corner. Step 2's CAM has two peaks:
    // one diagonally next to step 1's region (kept), one in the far corner (dropped).
    let w = 5
    func cam(_ hot: [(Int, Int)]) -> [Float] {
      var c = [Float](repeating: 0, count: w * 3)
      for (x, y) in hot { c[y * w + x] = 1 }
      return c
    }
    var touching = StepRegions(labels: 1, width: w, height: 3, rule: .maxRatio, delta: 0.2, later: .touching)
    var all = StepRegions(labels: 1, width: w, height: 3, rule: .maxRatio, delta: 0.2, later: .all)
    let step1 = cam([(0, 0)]), step2 = cam([(1, 1), (2, 1), (4, 2)])
    #expect(touching.add(cams: [step1]) == all.add(cams: [step1]))
    let kept = touching.add(cams: [step2])[0]
    #expect(kept == cam([(1, 1), (2, 1)]).map { $0 > 0 })
    #expect(all.add(cams: [step2])[0] == step2.map { $0 > 0 })
    #expect(touching.mined[0] == cam([(0, 0), (1, 1), (2, 1)]).map { $0 > 0 })
  }

  @Test func touchingReachesOneCAMCellAcrossAGap() {
    // 7x1: step 1 mines pixel 0; step 2's parts lie 3 and 6 pixels away. A reach of 3 keeps
    // the first only.
    var regions = StepRegions(labels: 1, width: 7, height: 1, rule: .maxRatio, delta: 0.2, later: .touching, reach: 3)
    _ = regions.add(cams: [[1, 0, 0, 0, 0, 0, 0]])
    #expect(regions.add(cams: [[0, 0, 0, 1, 0, 0, 1]]) == [[false, false, false, true, false, false, false]])
    #expect(StepRegions.dilated([false, false, true, false, false, false], by: 2, width: 6) == [true, true, true, true, true, false])
    // One cell of tiny's CAM (stride 8): 8 px at the working resolution, 20 px on a 320-px
    // image worked at 128.
    let tiny = EraseConfiguration(dataset: "", net: "tiny")
    #expect(BackboneSpec.tiny.outputStride == 8 && BackboneSpec.largeFOV.outputStride == 8)
    #expect(tiny.stepRegions(labels: 1, width: 128, height: 128).reach == 8)
    #expect(tiny.stepRegions(labels: 1, width: 320, height: 240).reach == 20)
  }

  @Test func touchingKeepsAClasssFirstRegionWholeEvenAfterAnEmptyStep() {
    // A class whose step-1 CAM is all zero mined nothing: its first region is kept whole.
    var regions = StepRegions(labels: 2, width: 4, height: 1, rule: .maxRatio, delta: 0.2, later: .touching)
    _ = regions.add(cams: [[1, 0, 0, 0], [0, 0, 0, 0]])
    let second = regions.add(cams: [[0, 0, 0, 1], [0, 0, 0, 1]])
    #expect(second == [[false, false, false, false], [false, false, false, true]])
  }

  @Test func erasingFillsTheRegionWithTheMeanPixel() throws {
    let image = Image(width: 2, height: 1, channels: 3, pixels: [10, 20, 30, 40, 50, 60])
    let region = LabelMap(width: 2, height: 1, labels: [0, 1])
    let out = EraseStage.erase(image, where: region, with: [7, 8, 9])
    #expect(out.pixels == [10, 20, 30, 7, 8, 9])
  }
}

/// The erase and masks stages on a handful of generated images: every artefact, the formats,
/// resuming, and masks that only use the image's labels.
@Suite("Erase and masks stages end to end", .serialized)
struct EraseStageEndToEndTests {
  static func makeDataset() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-erase-\(UUID().uuidString)")
    try SyntheticDataset(configuration: .init(seed: 3, trainCount: 12, valCount: 2, size: 48)).write(to: dir, threads: 1)
    return dir
  }

  static func configuration(_ dataset: URL) -> EraseConfiguration {
    var c = EraseConfiguration(dataset: dataset.path, net: "tiny")
    c.schedule.epochs = 1
    c.schedule.minIterations = nil
    c.batchSize = 4
    c.cropSize = 48
    c.maxSteps = 2
    (c.stopRatio, c.stopChanceFraction) = (100, nil)  // both steps merge: the test is about the artefacts
    return c
  }

  @Test func eraseWritesEveryArtefactResumesAndFeedsTheMasks() throws {
    let dataset = try Self.makeDataset()
    let run = dataset.appendingPathComponent("run")
    defer { try? FileManager.default.removeItem(at: dataset) }
    let config = Self.configuration(dataset)
    let quiet = ProgressReporter.Options(quiet: true)
    var lines: [String] = []
    let summary = try EraseStage.run(config, run: run, progress: quiet, log: { lines.append($0) })
    #expect(summary.mergedSteps == [1, 2])
    #expect(summary.finalLosses.count == 2 && summary.finalLosses.allSatisfy(\.isFinite))

    let voc = try VOCDataset(root: dataset)
    let set = try voc.classificationSet(split: "train")
    let layout = EraseLayout(run: run)
    for t in 1...2 {
      #expect(FileManager.default.fileExists(atPath: layout.checkpoint(t).path))
      let curve = try String(contentsOf: layout.lossCurve(t), encoding: .utf8).split(separator: "\n")
      #expect(curve.first == "epoch,loss" && curve.count == 2)
      let notes = try #require(try StageManifest.read(from: layout.step(t))).notes
      let erased = try #require(notes["erased_fraction"].flatMap(Double.init))
      #expect(erased > 0 && erased < 1, "step \(t) records the share of pixels erased: \(notes)")
    }
    var imagesWithErasure = 0
    for sample in set.samples {
      let image = try voc.image(sample.id)
      let cams = try NumPyArray.read(contentsOf: layout.cam(1, sample.id))
      #expect(cams.shape == [sample.labels.count, image.height, image.width])
      let values = cams.values
      let normalised = values.allSatisfy { $0 >= 0 && $0 <= 1 }
      #expect(normalised, "CAMs of \(sample.id) are normalised to [0, 1]")
      let one = try LabelMap(contentsOf: layout.erased(1, sample.id)).labels
      let two = try LabelMap(contentsOf: layout.erased(2, sample.id)).labels
      if one.contains(1) { imagesWithErasure += 1 }
      let kept = zip(one, two).allSatisfy { $0 == 0 || $1 != 0 }
      #expect(kept, "erased pixels of \(sample.id) stay erased")
    }
    // After one epoch a class's CAM can still be all zero everywhere (no region to erase).
    #expect(imagesWithErasure > 0)

    // A finished stage is not redone; deleting step 2's manifest redoes only the CAMs of step 2.
    lines.removeAll()
    _ = try EraseStage.run(config, run: run, progress: quiet, log: { lines.append($0) })
    #expect(lines.contains { $0.contains("already done") })
    try FileManager.default.removeItem(at: layout.root.appendingPathComponent(StageManifest.fileName))
    try FileManager.default.removeItem(at: layout.step(2).appendingPathComponent(StageManifest.fileName))
    try FileManager.default.removeItem(at: layout.erased(2, set.samples[0].id))
    lines.removeAll()
    let again = try EraseStage.run(config, run: run, progress: quiet, log: { lines.append($0) })
    #expect(again.mergedSteps == [1, 2])
    #expect(lines.contains("erase: step 1 already done (final loss \(summary.finalLosses[0]))"))
    #expect(lines.contains("erase: step 2 classifier already trained"))
    #expect(FileManager.default.fileExists(atPath: layout.erased(2, set.samples[0].id).path))

    // A rerun with other erasing settings is refused, naming each change; the bad-image
    // policy alone is no change. The configuration records the dataset's absolute path.
    #expect(try EraseStage.configuration(run: run)?.dataset == dataset.standardizedFileURL.path)
    let changes: [(inout EraseConfiguration) -> Void] = [{ $0.delta = 0.3 }, { $0.stopRatio = 1.1 }, { $0.rule = .topFraction },
                                                          { $0.camScales = [1, 0.5] },
                                                          { $0.laterRegions = $0.laterRegions == .all ? .touching : .all }]
    for change in changes {
      var other = config
      change(&other)
      let error = #expect(throws: AEPSLError.self) { try EraseStage.run(other, run: run, progress: quiet, log: { _ in }) }
      #expect(error?.problem.contains("other settings") == true && error?.fix?.contains("Delete \(layout.root.path)") == true,
              "\(String(describing: error))")
    }
    var policy = config
    policy.onBadImage = .skip
    _ = try EraseStage.run(policy, run: run, progress: quiet, log: { _ in })

    // Masks: one palette PNG per image, only {0} ∪ labels ∪ {255}; --steps 1 is the CAM-only
    // baseline and covers no more object pixels than the merged masks.
    var maskConfig = MaskConfiguration()
    maskConfig.background = .cam
    maskConfig.backgroundThreshold = 0.05
    maskConfig.objectThreshold = 0  // every mined pixel (the paper), so the threshold's effect can be seen below
    let masks = try MaskStage.run(maskConfig, run: run, progress: quiet, log: { _ in })
    maskConfig.steps = 1
    maskConfig.output = run.appendingPathComponent("masks-cam-only").path
    let camOnly = try MaskStage.run(maskConfig, run: run, progress: quiet, log: { _ in })
    var objectPixels = (merged: 0, camOnly: 0)
    for sample in set.samples {
      let mask = try LabelMap(contentsOf: masks.appendingPathComponent("\(sample.id).png"))
      let allowed = Set([0, 255] + sample.labels.map { UInt8($0 + 1) })
      let used = Set(mask.labels)
      #expect(used.isSubset(of: allowed), "\(sample.id) uses labels \(used.subtracting(allowed)) it does not have")
      // What the masks stage mines is what the erasing stage erased (the same `StepRegions`).
      let erased = try LabelMap(contentsOf: layout.erased(2, sample.id)).labels
      #expect(zip(mask.labels, erased).allSatisfy { $0 == 0 || $0 == 255 || $1 == 1 }, "\(sample.id): mined but not erased")
      let base = try LabelMap(contentsOf: camOnly.appendingPathComponent("\(sample.id).png"))
      objectPixels.merged += mask.labels.filter { $0 != 0 && $0 != 255 }.count
      objectPixels.camOnly += base.labels.filter { $0 != 0 && $0 != 255 }.count
    }
    #expect(objectPixels.merged >= objectPixels.camOnly && objectPixels.camOnly > 0)
    var rerun: [String] = []
    maskConfig.steps = nil
    maskConfig.output = nil
    _ = try MaskStage.run(maskConfig, run: run, progress: quiet, log: { rerun.append($0) })
    #expect(rerun.first?.contains("already done") == true)

    // An erasing stage made again (here: its manifest rewritten a minute later) makes the
    // masks again, with the same mask settings.
    var redone = try #require(try StageManifest.read(from: layout.root))
    redone.finishedAt = redone.finishedAt.addingTimeInterval(60)
    try redone.write(to: layout.root)
    var remade: [String] = []
    _ = try MaskStage.run(maskConfig, run: run, progress: quiet, log: { remade.append($0) })
    #expect(remade.first?.contains("erasing stage") == true && !remade.contains { $0.contains("already done") }, "\(remade)")
    #expect(try StageManifest.read(from: masks)?.parameters["erase_made"] == StageManifest.madeAt(layout.root))

    // An object threshold is a setting of its own (absent from masks made with it off): the
    // masks are made again, and the later steps' parts outside step 1's strong CAM lose their labels.
    #expect(try StageManifest.read(from: masks)?.parameters["object_threshold"] == nil)
    maskConfig.objectThreshold = 0.5
    var thresholded: [String] = []
    _ = try MaskStage.run(maskConfig, run: run, progress: quiet, log: { thresholded.append($0) })
    #expect(!thresholded.contains { $0.contains("already done") }, "\(thresholded)")
    #expect(try StageManifest.read(from: masks)?.parameters["object_threshold"] == "0.5")
    var fewer = 0
    for sample in set.samples {
      fewer += try LabelMap(contentsOf: masks.appendingPathComponent("\(sample.id).png")).labels.filter { $0 != 0 && $0 != 255 }.count
    }
    #expect(fewer < objectPixels.merged)

    // Filling salient regions is a setting of its own too, and labels more object pixels.
    maskConfig.fillObjects = true
    _ = try MaskStage.run(maskConfig, run: run, progress: quiet, log: { _ in })
    #expect(try StageManifest.read(from: masks)?.parameters["fill_objects"] == "on")
    var filled = 0
    for sample in set.samples {
      filled += try LabelMap(contentsOf: masks.appendingPathComponent("\(sample.id).png")).labels.filter { $0 != 0 && $0 != 255 }.count
    }
    #expect(filled > fewer)
    maskConfig.objectThreshold = 0
    #expect(throws: AEPSLError.self) { try MaskStage.run(maskConfig, run: run, progress: quiet, log: { _ in }) }
  }

  /// A classifier whose CAMs are zero everywhere (its linear weights zero) erases nothing:
  /// the step counts it, a finished step says so when resumed, erasing ends there with the
  /// step merged, and the run warns.
  @Test func aStepThatErasesNothingEndsErasingAndWarns() throws {
    let dataset = try Self.makeDataset()
    defer { try? FileManager.default.removeItem(at: dataset) }
    let config = Self.configuration(dataset)
    let voc = try VOCDataset(root: dataset)
    let set = try voc.classificationSet(split: "train")
    let layout = EraseLayout(run: dataset.appendingPathComponent("run"))
    try FileManager.default.createDirectory(at: layout.step(1).appendingPathComponent("cams"), withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: layout.step(1).appendingPathComponent("erased"), withIntermediateDirectories: true)
    let model = Classifier(spec: try #require(config.spec), classes: voc.classes.count, seed: 0)
    let quiet = ProgressReporter.Options(quiet: true)

    let someErased = try EraseStage.mineRegions(config, model: model, set: set, source: set.source(), step: 1,
                                                layout: layout, progress: quiet)
    #expect(someErased.pixels == Double(set.count * 48 * 48))
    #expect(someErased.erased > 0 && someErased.newlyErased == someErased.erased)
    // Resumed: the images done are read back and counted the same.
    let resumed = try EraseStage.mineRegions(config, model: model, set: set, source: set.source(), step: 1,
                                             layout: layout, progress: quiet)
    #expect(resumed.erased == someErased.erased && resumed.newlyErased == someErased.newlyErased)

    try FileManager.default.removeItem(at: layout.step(1))
    try FileManager.default.createDirectory(at: layout.step(1).appendingPathComponent("cams"), withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: layout.step(1).appendingPathComponent("erased"), withIntermediateDirectories: true)
    model.classifier.weight.value.fill(0)
    let nothing = try EraseStage.mineRegions(config, model: model, set: set, source: set.source(), step: 1,
                                             layout: layout, progress: quiet)
    #expect(nothing.pixels == someErased.pixels && nothing.erased == 0 && nothing.newlyErased == 0)

    // A finished step that erased nothing ends erasing, merged, when the run resumes.
    try StageManifest(stage: "erase-step", parameters: ["step": "1"], inputs: [], startedAt: Date(),
                      notes: ["final_loss": "0.5", "converged": "true", "erased_fraction": "0",
                              "newly_erased_fraction": "0"]).write(to: layout.step(1))
    var losses: [Float] = []
    let stop = try EraseStage.step(1, config: config, spec: try #require(config.spec), dataset: voc, set: set, mean: [0, 0, 0],
                                   finalLosses: &losses, layout: layout, progress: quiet, log: { _ in },
                                   communicator: SingleProcess())
    #expect(stop?.mergesStep == true && stop?.reason.contains("step 1 erased nothing new") == true, "\(String(describing: stop))")
    #expect(losses == [0.5])

    // A later step counts only what it adds to the regions before it.
    var later = EraseStage.ErasedArea()
    later.add(previous: [1, 0, 0, 0], erased: [1, 1, 0, 0])
    later.add(previous: [0, 1, 1, 0], erased: [0, 1, 1, 0])
    #expect(later.pixels == 8 && later.erased == 4 && later.newlyErased == 1)

    let warning = try #require(RunDiagnostics.erasedNothing(step: 2, newlyErasedFraction: 0, erasedFraction: 0.12))
    #expect(warning.kind == .stepErasedNothing && warning.what.contains("step 2 erased nothing new") && warning.what.contains("12.0%"))
    #expect(RunDiagnostics.erasedNothing(step: 2, newlyErasedFraction: 0.001, erasedFraction: 0.12) == nil)
  }

  @Test func largefovRunsTheSameStage() throws {
    // A smoke test: VGG-16 LargeFOV from random weights, one epoch on 48x48 images.
    let dataset = try Self.makeDataset()
    defer { try? FileManager.default.removeItem(at: dataset) }
    var config = EraseConfiguration(dataset: dataset.path, net: "largefov")
    config.schedule.epochs = 1
    config.schedule.minIterations = nil
    config.batchSize = 4
    config.cropSize = 48
    config.maxSteps = 2
    (config.stopRatio, config.stopChanceFraction) = (100, nil)
    let run = dataset.appendingPathComponent("run-largefov")
    let summary = try EraseStage.run(config, run: run, progress: .init(quiet: true), log: { _ in })
    #expect(summary.finalLosses.count == 2 && summary.finalLosses.allSatisfy(\.isFinite))
    let id = try VOCDataset(root: dataset).classificationSet(split: "train").samples[0].id
    #expect(FileManager.default.fileExists(atPath: EraseLayout(run: run).erased(2, id).path))
  }
}
