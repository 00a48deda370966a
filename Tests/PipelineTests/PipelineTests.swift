import AEPSLFiles
import AEPSLCRF
import AEPSLData
import AEPSLImaging
import AEPSLMethod
@testable import AEPSLPipeline
import Foundation
import Testing

@Suite("Run configuration")
struct RunConfigurationTests {
  @Test func aConfigFileChangesOnlyWhatItNames() throws {
    let json = #"{"erase": {"maxSteps": 3, "schedule": {"epochs": 2}}, "seed": 7}"#
    let c = try RunConfiguration.resolve(overrides: Data(json.utf8), file: "c.json", net: nil, dataset: nil)
    #expect(c.erase.maxSteps == 3 && c.erase.schedule.epochs == 2)
    let defaults = RunConfiguration()
    #expect(c.erase.schedule.learningRate == defaults.erase.schedule.learningRate)
    #expect(c.erase.delta == defaults.erase.delta)
    #expect(c.erase.seed == 7 && c.segmentation.seed == 7, "the top-level seed reaches every stage")
    #expect(c.segmentation == { var s = defaults.segmentation; s.seed = 7; return s }())
  }

  @Test func theBadImagePolicyReachesEveryStageUnlessASectionSetsItsOwn() throws {
    let json = #"{"onBadImage": "skip", "masks": {"onBadImage": "fail"}}"#
    let c = try RunConfiguration.resolve(overrides: Data(json.utf8), file: "c.json", net: nil, dataset: nil)
    #expect(c.onBadImage == .skip && c.erase.onBadImage == .skip && c.segmentation.onBadImage == .skip)
    #expect(c.masks.onBadImage == .fail)
  }

  /// The command line wins over the config file, `fail` included (it is also the default).
  @Test(arguments: [BadImagePolicy.fail, .skip])
  func theCommandLinesBadImagePolicyOverridesTheConfigFile(policy: BadImagePolicy) throws {
    let other = policy == .fail ? "skip" : "fail"
    let json = #"{"onBadImage": "\#(other)", "masks": {"onBadImage": "\#(other)"}}"#
    let c = try RunConfiguration.resolve(overrides: Data(json.utf8), file: "c.json", commandLine: .init(onBadImage: policy))
    #expect([c.onBadImage, c.erase.onBadImage, c.masks.onBadImage, c.segmentation.onBadImage] == Array(repeating: policy, count: 4))
    let unset = try RunConfiguration.resolve(overrides: Data(json.utf8), file: "c.json", commandLine: .init())
    #expect(unset.erase.onBadImage != policy, "without the option the file's policy stays")
  }

  @Test func theCommandLinesSeedAndSideReachEverySectionAndTheDatasetIsAbsolute() throws {
    let json = #"{"seed": 3, "erase": {"seed": 4}, "imageSide": 100}"#
    let c = try RunConfiguration.resolve(overrides: Data(json.utf8), file: "c.json",
                                         commandLine: .init(dataset: "data/../voc", seed: 9, imageSide: .side(64)))
    #expect([c.seed, c.erase.seed, c.segmentation.seed] == [9, 9, 9])
    #expect([c.imageSide, c.erase.imageSide, c.segmentation.imageSide] == [.side(64), .side(64), .side(64)])
    #expect(c.dataset == FileManager.default.currentDirectoryPath + "/voc")
  }

  /// `aepsl run --threads N` reaches both dense CRFs.
  @Test func thePipelinesThreadsReachTheCRF() throws {
    let c = try RunConfiguration.resolve(overrides: nil, file: "-", net: nil, dataset: nil)
    let pipeline = Pipeline(run: URL(fileURLWithPath: "/nonexistent"), config: c, threads: 1)
    #expect(pipeline.refinement.threads == 1 && pipeline.plusRefinement.threads == 1)
    #expect(Pipeline(run: URL(fileURLWithPath: "/nonexistent"), config: c, threads: 3).refinement.threads == 3)
  }

  /// A wrong --dataset fails before anything is created, naming the path and the fix.
  @Test func aWrongDatasetFailsBeforeTheRunDirectoryIsCreated() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-wrong-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let run = root.appendingPathComponent("run")
    let wrong = root.appendingPathComponent("no-such-dataset").path
    let c = try RunConfiguration.resolve(overrides: nil, file: "-", commandLine: .init(dataset: wrong))
    var lines: [String] = []
    let error = #expect(throws: AEPSLError.self) {
      try Pipeline(run: run, config: c, progress: .init(quiet: true), log: { lines.append($0) }).execute()
    }
    #expect(error?.file == wrong)
    #expect(error?.fix?.contains("--dataset") == true, "\(String(describing: error))")
    #expect(!FileManager.default.fileExists(atPath: run.path), "nothing is created")
    #expect(!lines.contains { $0.contains("already done") }, "\(lines)")
  }

  @Test func aSectionThatNamesItsEpochsGetsExactlyThatMany() throws {
    let json = #"{"erase": {"schedule": {"epochs": 2}}, "segmentation": {"schedule": {"epochs": 3, "minIterations": 50}}}"#
    let c = try RunConfiguration.resolve(overrides: Data(json.utf8), file: "c.json", net: nil, dataset: nil)
    #expect(c.erase.schedule.epochs == 2 && c.erase.schedule.minIterations == nil)
    #expect(c.segmentation.schedule.epochs == 3 && c.segmentation.schedule.minIterations == 50)
    let defaults = try RunConfiguration.resolve(overrides: nil, file: "-", net: nil, dataset: nil)
    #expect(defaults.erase.schedule.minIterations == 200 && defaults.segmentation.schedule.minIterations == 1800)
  }

  @Test func theNetworkPicksEverySectionsDefaults() throws {
    let c = try RunConfiguration.resolve(overrides: nil, file: "-", net: "largefov", dataset: "/data/voc")
    #expect(c.erase.cropSize == 321 && c.segmentation.cropSize == 321)
    #expect(c.erase.net == "largefov" && c.segmentation.net == "largefov")
    #expect(c.dataset == "/data/voc")
  }

  @Test(arguments: [
    (#"{"erase": {"maxStep": 3}}"#, "unknown option 'erase.maxStep'"),
    (#"{"eras": {}}"#, "unknown option 'eras'"),
    (#"{"erase": {"maxSteps": "three"}}"#, "wrong type"),
    (#"[1, 2]"#, "is not a JSON object"),
    (#"{"masks": {"objectThreshold": 1.5}}"#, "masks.objectThreshold (--object-threshold) is 1.5, outside [0, 1]"),
    (#"{"masks": {"fillObjects": true, "objectThreshold": 0}}"#, "needs an object threshold above 0"),
  ])
  func badConfigFilesAreNamedAndExplained(json: String, message: String) {
    #expect {
      _ = try RunConfiguration.resolve(overrides: Data(json.utf8), file: "bad.json", net: nil, dataset: nil)
    } throws: { error in
      let text = "\(error)"
      return text.contains("bad.json") && text.contains(message)
    }
  }

  @Test func thePSLPlusMasksCRFScalesWithTheImageAndTheTestTimeCRFIsDeepLabs() throws {
    let c = try RunConfiguration.resolve(overrides: nil, file: "-", net: nil, dataset: nil)
    #expect(c.plusCRF.scaleWithImage && c.plusCRF.referenceSide == 500)
    #expect(!c.predict.crf.scaleWithImage && c.predict.crf == CRFParameters())
    #expect(c.plusCRF == { var p = CRFParameters(); p.scaleWithImage = true; return p }(), "otherwise DeepLab's")
    #expect(c.predict.finalModel == .pslPlus)
    #expect(Refinement.denseCRF(c.plusCRF).description.hasSuffix("sxy scaled by the longer side / 500"))
    // The test-time description is the one runs made before the option have.
    #expect(Refinement.denseCRF(c.predict.crf).description
            == "dense CRF: 10 iterations, gaussian sxy 3 weight 3, bilateral sxy 80 srgb 13 weight 10")
    let off = try RunConfiguration.resolve(overrides: Data(#"{"plusCRF": {"scaleWithImage": false}}"#.utf8), file: "c.json",
                                           net: nil, dataset: nil)
    #expect(off.plusCRF == CRFParameters())
  }

  /// A run made before the test split: its config.json has no predict.testSplit and the
  /// generator without test images. On a given dataset that redoes predict (and what
  /// follows) only; on the embedded one, whose files gain test images, everything.
  @Test(arguments: [("/data/voc", PipelineStage.predict), (nil, PipelineStage.synth)])
  func aRunMadeBeforeTheTestSplitRedoesWhatItMust(dataset: String?, redo: PipelineStage) throws {
    let run = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-old-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: run) }
    try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
    let now = try RunConfiguration.resolve(overrides: nil, file: "-", commandLine: .init(dataset: dataset))
    var old = now
    old.synth.testCount = nil
    old.predict.testSplit = nil
    try old.encoded().write(to: run.appendingPathComponent("config.json"))
    #expect(!(String(data: try old.encoded(), encoding: .utf8) ?? "").contains("testSplit"), "as older versions wrote it")
    #expect(try Pipeline(run: run, config: now, log: { _ in }).changedStage() == redo)
  }

  /// A run made before the object threshold existed: its config.json has no
  /// masks.objectThreshold (nor fillObjects), which reads as 0 (and off: what made its masks), so the default redoes the
  /// masks and what follows and keeps the erasing; a config that sets 0 keeps everything.
  @Test func aRunMadeBeforeTheObjectThresholdRedoesItsMasks() throws {
    let run = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-old-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: run) }
    try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
    let now = try RunConfiguration.resolve(overrides: nil, file: "-", commandLine: .init(dataset: "/data/voc"))
    #expect(now.masks.objectThreshold == 0.3)
    var old = try #require(try JSONSerialization.jsonObject(with: now.encoded()) as? [String: Any])
    var masks = try #require(old["masks"] as? [String: Any])
    masks["objectThreshold"] = nil
    masks["fillObjects"] = nil
    old["masks"] = masks
    try JSONSerialization.data(withJSONObject: old).write(to: run.appendingPathComponent("config.json"))
    #expect(try Pipeline(run: run, config: now, log: { _ in }).changedStage() == .masks)
    let off = try RunConfiguration.resolve(overrides: Data(#"{"masks": {"objectThreshold": 0}}"#.utf8), file: "-",
                                           commandLine: .init(dataset: "/data/voc"))
    #expect(try Pipeline(run: run, config: off, log: { _ in }).changedStage() == nil)
  }

  @Test func resolvedConfigurationRoundTrips() throws {
    let c = try RunConfiguration.resolve(overrides: nil, file: "-", net: nil, dataset: nil)
    let again = try RunConfiguration.resolve(overrides: c.encoded(), file: "config.json", net: nil, dataset: nil)
    #expect(again == c)
  }
}

/// `aepsl run` on a very small synthetic dataset: every artefact, the report, a rerun that
/// does nothing, and a deleted stage that is redone with the stages after it only.
@Suite("aepsl run end to end", .serialized)
struct PipelineEndToEndTests {
  static let config = #"""
    {"synth": {"trainCount": 16, "valCount": 6, "testCount": 4, "size": 48},
     "erase": {"maxSteps": 2, "stopRatio": 100, "stopChanceFraction": null, "batchSize": 8, "cropSize": 48, "schedule": {"epochs": 1}},
     "segmentation": {"batchSize": 8, "cropSize": 48, "schedule": {"epochs": 1}},
     "reportSamples": 2}
    """#

  @Test func runWritesEverythingResumesAndRedoesOnlyWhatIsMissing() throws {
    let run = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-run-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: run) }
    let config = try RunConfiguration.resolve(overrides: Data(Self.config.utf8), file: "test", net: nil, dataset: nil)
    var lines: [String] = []
    func pipeline() -> Pipeline {
      Pipeline(run: run, config: config, progress: .init(quiet: true), log: { lines.append($0) })
    }
    let report = try pipeline().execute()

    // Every artefact.
    let fm = FileManager.default
    func exists(_ path: String) -> Bool { fm.fileExists(atPath: run.appendingPathComponent(path).path) }
    let dataset = try VOCDataset(root: run.appendingPathComponent("dataset"))
    let train = try dataset.classificationSet(split: "train").samples.map(\.id)
    let val = try dataset.imageIDs(split: "val")
    #expect(exists("config.json"))
    for path in ["erase/manifest.json", "erase/step-1/classifier.safetensors", "erase/step-1/loss.csv",
                 "masks/manifest.json", "masks-cam-only/manifest.json",
                 "seg/psl/segmenter.safetensors", "seg/psl-plus/segmenter.safetensors", "seg/full/segmenter.safetensors",
                 "predict/manifest.json", "metrics/cam.json", "metrics/ae-masks.json", "metrics/predict.json",
                 "metrics/psl.json", "metrics/psl-plus.json", "metrics/full.json", "report/index.html"] {
      #expect(exists(path), "missing \(path)")
    }
    for id in train {
      #expect(exists("erase/step-1/cams/\(id).npy") && exists("masks/\(id).png"), "training image \(id)")
    }
    for id in val {
      let prediction = try LabelMap(contentsOf: run.appendingPathComponent("predict/\(id).png"))
      let image = try dataset.image(id)
      #expect(prediction.width == image.width && prediction.height == image.height)
      let valid = prediction.labels.allSatisfy { Int($0) <= dataset.classes.count }
      #expect(valid, "prediction \(id) holds labels beyond the classes")
      // The final model's label maps are its scored predictions, read rather than made twice.
      #expect(try Data(contentsOf: run.appendingPathComponent("predict/\(id).png"))
                == Data(contentsOf: run.appendingPathComponent("predictions/psl-plus/\(id).png")))
    }
    let metrics = try JSONDecoder().decode(EvaluationReport.self, from: Data(contentsOf: run.appendingPathComponent("metrics/predict.json")))
    #expect(metrics.split == "val" && metrics.images == val.count)
    // The held-out split: every scored model predicted and scored on it.
    let test = try dataset.imageIDs(split: "test")
    #expect(test.count == 4)
    for variant in ["psl", "psl-plus", "full"] {
      #expect(exists("predictions-test/\(variant)/manifest.json"), "\(variant) on test")
      for id in test { #expect(exists("predictions-test/\(variant)/\(id).png")) }
      let scored = try JSONDecoder().decode(EvaluationReport.self,
                                            from: Data(contentsOf: run.appendingPathComponent("metrics/test-\(variant).json")))
      #expect(scored.split == "test" && scored.images == test.count, "\(variant)")
    }
    let summary = Pipeline(run: run, config: config, log: { _ in }).summaryTable()
    let header = try #require(summary.split(separator: "\n").first)
    #expect(header.hasSuffix("train     val    test"), "\(summary)")
    #expect(summary.contains("weak / full supervision: ") && summary.contains("% on test ("), "\(summary)")

    // The report: every section, and every image it references exists.
    let html = try String(contentsOf: report, encoding: .utf8)
    for needle in ["<table", "<svg", "FULLY SUPERVISED".lowercased(), "metrics/test-psl-plus.json", "on test (held out)"] {
      #expect(html.lowercased().contains(needle), "report lacks \(needle)")
    }
    let sources = html.components(separatedBy: "src=\"").dropFirst().compactMap { $0.split(separator: "\"").first.map(String.init) }
    #expect(!sources.isEmpty)
    for src in sources where !src.hasPrefix("data:") {
      let missing = !fm.fileExists(atPath: report.deletingLastPathComponent().appendingPathComponent(src).path)
      #expect(!missing, "report image \(src) missing")
    }

    // A second invocation finds everything done.
    lines.removeAll()
    try pipeline().execute()
    let ran = lines.filter { $0.hasPrefix("run: ") && $0.hasSuffix(" ...") }
    #expect(ran.isEmpty, "a finished run redid \(ran)")

    // Deleting the masks redoes masks and every later stage, and nothing before.
    let eraseManifest = run.appendingPathComponent("erase/manifest.json")
    let eraseDate = try fm.attributesOfItem(atPath: eraseManifest.path)[.modificationDate] as? Date
    try fm.removeItem(at: run.appendingPathComponent("masks"))
    lines.removeAll()
    try pipeline().execute()
    let redone = lines.filter { $0.hasPrefix("run: ") && $0.hasSuffix(" ...") }
    #expect(redone == ["run: masks ...", "run: train-seg ...", "run: predict ...", "run: eval ...", "run: report ..."])
    #expect(try fm.attributesOfItem(atPath: eraseManifest.path)[.modificationDate] as? Date == eraseDate)
    #expect(exists("masks/manifest.json") && exists("report/index.html"))
  }

  /// `--on-bad-image skip` through the whole run: a corrupt training image and a corrupt
  /// validation image are left out of every stage and listed, and the scores leave them out.
  @Test func skippedBadImagesGoThroughEveryStage() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-run-bad-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let data = root.appendingPathComponent("data")
    try SyntheticDataset(configuration: .init(seed: 5, trainCount: 16, valCount: 6, size: 48)).write(to: data, threads: 2)
    let dataset = try VOCDataset(root: data)
    let badTrain = try dataset.imageIDs(split: "train")[3], badVal = try dataset.imageIDs(split: "val")[2]
    for id in [badTrain, badVal] {
      let bytes = try Data(contentsOf: dataset.imageURL(id))
      try bytes.prefix(bytes.count / 4).write(to: dataset.imageURL(id))
    }
    let overrides = try JSONSerialization.jsonObject(with: Data(Self.config.utf8)) as! [String: Any]
    let json = try JSONSerialization.data(withJSONObject: overrides.merging(["onBadImage": "skip"]) { $1 })
    let config = try RunConfiguration.resolve(overrides: json, file: "test", net: nil, dataset: data.path)
    let run = root.appendingPathComponent("run")
    try Pipeline(run: run, config: config, progress: .init(quiet: true), log: { _ in }).execute()

    for stage in ["erase", "masks", "seg/psl"] {
      let manifest = try #require(try StageManifest.read(from: run.appendingPathComponent(stage)), "\(stage)")
      #expect(manifest.skippedIDs == [badTrain], "\(stage)")
    }
    #expect(try StageManifest.read(from: run.appendingPathComponent("predict"))?.skippedIDs == [badVal])
    let metrics = try JSONDecoder().decode(EvaluationReport.self, from: Data(contentsOf: run.appendingPathComponent("metrics/predict.json")))
    #expect(metrics.images == 5)
    let masks = try JSONDecoder().decode(EvaluationReport.self, from: Data(contentsOf: run.appendingPathComponent("metrics/ae-masks.json")))
    #expect(masks.images == (try dataset.classificationSet(split: "train").count) - 1)
  }

  /// Tagged images alone, the method's purpose: no ground-truth mask anywhere. The run
  /// completes without the upper bound and without scores, and says so.
  @Test func aDatasetWithoutGroundTruthMasksStillCompletes() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-run-nogt-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let data = root.appendingPathComponent("data")
    try SyntheticDataset(configuration: .init(seed: 8, trainCount: 16, valCount: 4, size: 48)).write(to: data, threads: 2)
    try FileManager.default.removeItem(at: data.appendingPathComponent("SegmentationClass"))
    let config = try RunConfiguration.resolve(overrides: Data(Self.config.utf8), file: "test", net: nil, dataset: data.path)
    let run = root.appendingPathComponent("run")
    var lines: [String] = []
    let pipeline = Pipeline(run: run, config: config, progress: .init(quiet: true), log: { lines.append($0) })
    let report = try pipeline.execute()

    let fm = FileManager.default
    #expect(fm.fileExists(atPath: report.path))
    #expect(fm.fileExists(atPath: run.appendingPathComponent("seg/psl-plus/segmenter.safetensors").path))
    #expect(!fm.fileExists(atPath: run.appendingPathComponent("seg/full").path))
    #expect(lines.contains { $0.contains("upper bound is left out") })
    let val = try VOCDataset(root: data).imageIDs(split: "val")
    for id in val { #expect(fm.fileExists(atPath: run.appendingPathComponent("predict/\(id).png").path)) }
    let metrics = try fm.contentsOfDirectory(atPath: run.appendingPathComponent("metrics").path)
    #expect(metrics == ["manifest.json"])
    let notes = try #require(try StageManifest.read(from: run.appendingPathComponent("metrics"))).notes["not_scored"] ?? ""
    #expect(notes.contains("ae-masks: no image of split 'train' has a ground-truth mask"), "\(notes)")
    #expect(pipeline.summaryTable().contains("nothing scored"))
    #expect(lines.contains { $0.contains("lists no held-out split 'test'") }, "\(lines)")
    // The report says the rows cannot be scored, and offers no command that cannot work.
    let html = try String(contentsOf: report, encoding: .utf8)
    let iou = try #require(html.components(separatedBy: "<section id=\"iou\">").last?.components(separatedBy: "</section>").first)
    #expect(iou.contains("cannot be scored") && !iou.contains("Not run yet") && !iou.contains("How to fill"), "\(iou)")
    // Done means done: a rerun does nothing.
    lines.removeAll()
    try pipeline.execute()
    #expect(!lines.contains { $0.hasSuffix(" ...") }, "\(lines)")
  }
}
