import AEPSLData
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation
import Testing
@testable import AEPSLMethod

/// Issue 7: `--on-bad-image skip|fail` in the erasing and mask stages, and the empty split.
@Suite("Bad images in the stages", .serialized)
struct BadImageStageTests {
  static func makeDataset(train: Int = 10) throws -> (root: URL, ids: [String]) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-badimg-\(UUID().uuidString)")
    try SyntheticDataset(configuration: .init(seed: 4, trainCount: train, valCount: 2, size: 40)).write(to: dir, threads: 1)
    let ids = try VOCDataset.readList(dir.appendingPathComponent("ImageSets/Segmentation/train.txt"))
    return (dir, ids)
  }

  static func configuration(_ dataset: URL) -> EraseConfiguration {
    var c = EraseConfiguration(dataset: dataset.path, net: "tiny")
    c.schedule.epochs = 1
    c.schedule.minIterations = nil
    c.batchSize = 4
    c.cropSize = 40
    c.maxSteps = 1
    return c
  }

  static func image(_ root: URL, _ id: String) -> URL { root.appendingPathComponent("JPEGImages/\(id).jpg") }

  /// Truncates one image, makes one 1x1 and deletes one.
  static func damage(_ root: URL, _ ids: [String]) throws {
    let truncated = try Data(contentsOf: image(root, ids[1]))
    try truncated.prefix(truncated.count / 3).write(to: image(root, ids[1]))
    try Image(width: 1, height: 1, channels: 3).jpegData().write(to: image(root, ids[4]))
    try FileManager.default.removeItem(at: image(root, ids[7]))
  }

  @Test func failStopsAtTheFirstBadImageNamingItAndTheOption() throws {
    let (root, ids) = try Self.makeDataset()
    defer { try? FileManager.default.removeItem(at: root) }
    let truncated = try Data(contentsOf: Self.image(root, ids[2]))
    try truncated.prefix(truncated.count / 2).write(to: Self.image(root, ids[2]))
    let run = root.appendingPathComponent("run")
    let error = #expect(throws: AEPSLError.self) {
      try EraseStage.run(Self.configuration(root), run: run, progress: .init(quiet: true), log: { _ in })
    }
    #expect(error?.file == Self.image(root, ids[2]).path)
    #expect(error?.problem.contains("truncated") == true, "\(String(describing: error))")
    #expect(error?.fix?.contains("--on-bad-image skip") == true)
    // Nothing of the check is kept: the mean pixel is not written from a partial pass.
    #expect(!FileManager.default.fileExists(atPath: EraseLayout(run: run).meanPixelFile.path))
  }

  @Test func skipLeavesBadImagesOutCountsAndListsThemAndTheMasksFollow() throws {
    let (root, ids) = try Self.makeDataset()
    defer { try? FileManager.default.removeItem(at: root) }
    try Self.damage(root, ids)
    let run = root.appendingPathComponent("run")
    var config = Self.configuration(root)
    config.onBadImage = .skip
    var lines: [String] = []
    let summary = try EraseStage.run(config, run: run, progress: .init(quiet: true), log: { lines.append($0) })
    #expect(summary.mergedSteps == [1])
    let layout = EraseLayout(run: run)
    let manifest = try #require(try StageManifest.read(from: layout.root))
    #expect(manifest.notes["skipped_bad_images"] == "3")
    let listed = manifest.notes["skipped_images"] ?? ""
    #expect(listed.contains("\(ids[1]) (") && listed.contains("truncated"), "\(listed)")
    #expect(listed.contains("\(ids[4]) (") && listed.contains("8-pixel minimum"), "\(listed)")
    #expect(listed.contains("\(ids[7]) (") && listed.contains("missing image"), "\(listed)")
    #expect(manifest.parameters["onBadImage"] == "skip")
    #expect(Set(EraseStage.skippedImages(run: run).map(\.id)) == [ids[1], ids[4], ids[7]])
    #expect(lines.contains { $0.contains("3 bad images are skipped") })
    for id in ids {
      let bad = [ids[1], ids[4], ids[7]].contains(id)
      #expect(FileManager.default.fileExists(atPath: layout.erased(1, id).path) == !bad, "\(id)")
    }

    // The mask stage, even under the default fail, gives the erase-skipped images no mask.
    var maskConfig = MaskConfiguration()
    maskConfig.background = .cam
    let out = try MaskStage.run(maskConfig, run: run, progress: .init(quiet: true), log: { _ in })
    let masks = try #require(try StageManifest.read(from: out))
    #expect(masks.notes["skipped_bad_images"] == "3")
    #expect(masks.notes["images"] == "\(ids.count - 3)")
    #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("\(ids[1]).png").path))
    #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("\(ids[0]).png").path))
  }

  @Test func anEmptySplitStopsNamingTheList() throws {
    let (root, _) = try Self.makeDataset(train: 2)
    defer { try? FileManager.default.removeItem(at: root) }
    let list = root.appendingPathComponent("ImageSets/Segmentation/empty.txt")
    try Data("\n".utf8).write(to: list)
    var config = Self.configuration(root)
    config.split = "empty"
    let error = #expect(throws: AEPSLError.self) {
      try EraseStage.run(config, run: root.appendingPathComponent("run"), progress: .init(quiet: true), log: { _ in })
    }
    #expect(error?.file == list.path)
    #expect(error?.problem.contains("lists no labelled image") == true)
  }

  @Test func aSplitOfOnlyBadImagesStopsUnderSkipToo() throws {
    let (root, ids) = try Self.makeDataset(train: 2)
    defer { try? FileManager.default.removeItem(at: root) }
    for id in ids { try Data("garbage".utf8).write(to: Self.image(root, id)) }
    var config = Self.configuration(root)
    config.onBadImage = .skip
    let error = #expect(throws: AEPSLError.self) {
      try EraseStage.run(config, run: root.appendingPathComponent("run"), progress: .init(quiet: true), log: { _ in })
    }
    #expect(error?.problem.contains("all 2 are bad") == true, "\(String(describing: error))")
  }
}
