import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation
import Testing
@testable import AEPSLData

/// Every regular file under `root`, by relative path.
func fileTree(_ root: URL) throws -> [String: Data] {
  var files: [String: Data] = [:]
  let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey])!
  for case let url as URL in enumerator where try url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true {
    files[String(url.standardizedFileURL.path.dropFirst(root.standardizedFileURL.path.count))] = try Data(contentsOf: url)
  }
  return files
}

@Suite("Synthetic dataset")
struct SyntheticDatasetTests {
  static let scenes: (SyntheticDataset, [SyntheticDataset.Scene]) = {
    let dataset = SyntheticDataset(configuration: .init(seed: 11, trainCount: 240, valCount: 60))
    return (dataset, (0..<dataset.count).map(dataset.scene))
  }()

  @Test("one seed gives byte-identical files; another seed other images")
  func reproducible() throws {
    let a = try temporaryDirectory(), b = try temporaryDirectory(), c = try temporaryDirectory()
    defer { for d in [a, b, c] { try? FileManager.default.removeItem(at: d) } }
    let config = SyntheticDataset.Configuration(seed: 7, trainCount: 10, valCount: 4, size: 64)
    _ = try SyntheticDataset(configuration: config).write(to: a, threads: 2)
    _ = try SyntheticDataset(configuration: config).write(to: b, threads: 1)
    var other = config
    other.seed = 8
    _ = try SyntheticDataset(configuration: other).write(to: c, threads: 2)
    let first = try fileTree(a), second = try fileTree(b), third = try fileTree(c)
    #expect(first.count == 14 * 3 + 3 + 2)  // jpg, xml, png per image; 3 lists; classes.txt, synth.json
    #expect(first.keys.sorted() == second.keys.sorted())
    for (path, data) in first { #expect(second[path] == data, "\(path) differs") }
    #expect(third["/JPEGImages/synth_000001.jpg"] != first["/JPEGImages/synth_000001.jpg"])
    #expect(first["/classes.txt"] == Data("redcap\nbluecap\ngreencap\norangecap\npurplecap\ncyancap\n".utf8))
  }

  @Test("the part is at most a quarter of its object, and about a sixth on average")
  func partBodyRatio() {
    let objects = Self.scenes.1.flatMap(\.objects)
    #expect(objects.count > 400)
    for o in objects {
      #expect(o.partRatio <= 0.25, "\(o)")
      #expect(o.partRatio >= 0.05, "\(o)")
      #expect(o.objectArea >= o.bodyArea && o.objectArea < o.bodyArea + o.partArea, "the part overlaps the body")
    }
    let mean = objects.map(\.partRatio).reduce(0, +) / Double(objects.count)
    #expect(mean > 0.12 && mean < 0.22, "mean part/object ratio \(mean)")
  }

  @Test("classes are balanced; each class prefers its own body shape and texture 60% of the time")
  func classBalance() {
    let (dataset, scenes) = Self.scenes
    var images = [Int](repeating: 0, count: 6)
    for plan in dataset.plans { for c in Set(plan) { images[c] += 1 } }
    #expect(images.max()! - images.min()! <= 1, "images per class \(images)")
    let train = dataset.plans.prefix(240)
    var trainCounts = [Int](repeating: 0, count: 6)
    for plan in train { for c in plan { trainCounts[c] += 1 } }
    #expect(Double(trainCounts.max()!) / Double(trainCounts.min()!) < 1.02, "train \(trainCounts)")

    let objects = scenes.flatMap(\.objects)
    let preferred = objects.filter { $0.body.rawValue == $0.classIndex }.count
    #expect(abs(Double(preferred) / Double(objects.count) - 0.6) < 0.07)
    let ownTexture = objects.filter { $0.texture == $0.classIndex }.count
    #expect(abs(Double(ownTexture) / Double(objects.count) - 0.6) < 0.07)
    // Every body shape serves every class: bodies alone do not decide.
    for c in 0..<6 {
      let shapes = Set(objects.filter { $0.classIndex == c }.map(\.body))
      #expect(shapes.count == 6, "class \(c) uses \(shapes.count) body shapes")
      let textures = Set(objects.filter { $0.classIndex == c }.map(\.texture))
      #expect(textures.count == 6, "class \(c) uses \(textures.count) body textures")
    }
  }

  @Test("scenes: 1 to 3 distinct objects that overlap, each visible, with its part visible")
  func sceneLayout() {
    let (dataset, scenes) = Self.scenes
    var histogram = [0, 0, 0, 0], occluded = 0, multi = 0
    for (scene, plan) in zip(scenes, dataset.plans) {
      #expect((1...3).contains(plan.count) && Set(plan).count == plan.count)
      histogram[plan.count] += 1
      #expect(scene.objects.map(\.classIndex) == plan)
      #expect(scene.annotation.labels == plan.sorted())
      for o in scene.objects {
        #expect(o.visibleArea > 0 && o.box != nil)
        #expect(Double(o.visiblePartArea) >= 0.6 * Double(o.partArea), "part mostly visible")
      }
      if plan.count > 1 {
        multi += 1
        if scene.objects.dropLast().contains(where: { !$0.truncated && $0.visibleArea < $0.objectArea }) { occluded += 1 }
      }
    }
    #expect(histogram[1] > 80 && histogram[2] > 80 && histogram[3] > 30, "\(histogram)")
    #expect(Double(occluded) / Double(multi) > 0.3, "only \(occluded) of \(multi) scenes have an occluded object")
  }

  @Test("masks: class labels on body and part, 0 elsewhere, a 255 band on every object border")
  func masks() {
    let (_, scenes) = Self.scenes
    for scene in scenes.prefix(60) {
      let mask = scene.mask, size = mask.width
      let present = Set(scene.objects.map { UInt8($0.classIndex + 1) })
      let values = Set(mask.labels)
      #expect(values.isSubset(of: present.union([0, 255])))
      #expect(present.isSubset(of: values), "every object shows in the mask")
      #expect(values.contains(255))
      for i in 0..<(size * size) where scene.partMask[i] { #expect(mask.labels[i] != 0) }
      // Object pixels never touch background directly: the band separates them.
      for y in 0..<size {
        for x in 0..<(size - 1) {
          let a = mask.labels[y * size + x], b = mask.labels[y * size + x + 1]
          if a != b { #expect(a == 255 || b == 255, "\(scene.id) (\(x), \(y)): \(a) next to \(b)") }
        }
      }
      // The band is thin: about 2 pixels across the border, never more than 15% of the image.
      let band = mask.labels.filter { $0 == 255 }.count
      let objectPixels = mask.labels.filter { $0 != 0 && $0 != 255 }.count
      #expect(band < objectPixels && Double(band) < 0.15 * Double(size * size))
    }
  }

  @Test("the background is cluttered with edges, and only parts are fully saturated")
  func clutter() {
    let (_, scenes) = Self.scenes
    for scene in scenes.prefix(50) {
      let px = scene.image.pixels, labels = scene.mask.labels, size = scene.mask.width
      var edges = 0, background = 0, saturatedOutsideParts = 0, saturatedParts = 0
      for y in 0..<size {
        for x in 0..<(size - 1) {
          let i = y * size + x
          let r = Int(px[3 * i]), g = Int(px[3 * i + 1]), b = Int(px[3 * i + 2])
          let saturation = max(r, g, b) - min(r, g, b)
          if scene.partMask[i] { if saturation > 150 { saturatedParts += 1 } } else if saturation > 175 { saturatedOutsideParts += 1 }
          guard labels[i] == 0 && labels[i + 1] == 0 else { continue }
          background += 1
          let step = (0..<3).map { abs(Int(px[3 * i + $0]) - Int(px[3 * (i + 1) + $0])) }.max()!
          if step > 30 { edges += 1 }
        }
      }
      // Distractor outlines: sharp steps that smooth shading and sensor noise (sigma 3) never make.
      #expect(Double(edges) > 0.003 * Double(background), "\(scene.id): \(edges) edges in \(background) pixels")
      #expect(saturatedParts > 0)
      #expect(saturatedOutsideParts < 8, "\(scene.id): \(saturatedOutsideParts) saturated pixels outside parts")
    }
  }

  @Test("a written set reads back through the VOC reader with its labels and masks")
  func readsBack() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let synth = SyntheticDataset(configuration: .init(seed: 3, trainCount: 12, valCount: 5, size: 96))
    let summary = try synth.write(to: dir)
    let dataset = try VOCDataset(root: dir)
    #expect(dataset.classes == SyntheticDataset.classes)
    #expect(try dataset.imageIDs(split: "train") == summary.trainIDs)
    #expect(try dataset.imageIDs(split: "val").count == 5)
    #expect(try dataset.imageIDs(split: "trainval").count == 17)
    let set = try dataset.classificationSet(split: "train")
    #expect(set.samples.map(\.labels) == synth.plans.prefix(12).map { $0.sorted() })
    let scene = synth.scene(13)
    #expect(try dataset.groundTruthMask(scene.id) == scene.mask)
    let image = try dataset.image(scene.id)
    #expect(image.width == 96 && image.height == 96)
    let stats = try DatasetStatistics(root: dir, split: "val", checkMasks: true)
    #expect(stats.problems.isEmpty, "\(stats.problems)")
    #expect(stats.listed == 5 && stats.withMasks == 5)
  }
}

@Suite("Dataset statistics")
struct DatasetStatisticsTests {
  @Test("counts per class and labels per image, sizes, and every problem with its file")
  func statistics() throws {
    let fixture = try VOCFixture()
    defer { fixture.remove() }
    let clean = try DatasetStatistics(root: fixture.root, split: "train", checkMasks: true)
    #expect(clean.problems.isEmpty, "\(clean.problems)")
    #expect(clean.listed == 4 && clean.labeled == 3 && clean.unlabeled == ["c"])
    #expect(clean.imagesPerClass == [2, 1, 1] && clean.objectsPerClass == [2, 1, 1])
    #expect(clean.difficultObjects == 1)
    #expect(clean.labelsPerImage == [0: 1, 1: 2, 2: 1])
    #expect(clean.sizes == ["40x30": 2, "36x30": 1, "24x20": 1])
    #expect(clean.withMasks == 4)
    #expect(clean.report.contains("No problems found."))

    try FileManager.default.removeItem(at: fixture.root.appendingPathComponent("JPEGImages/a.jpg"))
    try write(annotationXML([("dog", false), ("unicorn", false)], width: 36, height: 30),
              to: fixture.root.appendingPathComponent("Annotations/b.xml"))
    try write("<annotation><object><name>cat</name></annotation>", to: fixture.root.appendingPathComponent("Annotations/c.xml"))
    try write(annotationXML([("cat", false)], width: 99, height: 20), to: fixture.root.appendingPathComponent("Annotations/d.xml"))
    try write("not a png", to: fixture.root.appendingPathComponent("SegmentationClass/d.png"))
    let broken = try DatasetStatistics(root: fixture.root, split: "train", checkMasks: true)
    let files = broken.problems.map { URL(fileURLWithPath: $0.file).lastPathComponent }
    #expect(files.sorted() == ["a.jpg", "b.xml", "c.xml", "d.png", "d.xml"], "\(broken.problems)")
    #expect(broken.problems.contains { $0.problem.contains("missing image") })
    #expect(broken.problems.contains { $0.problem.contains("unicorn") })
    #expect(broken.problems.contains { $0.problem.contains("closes <object>") })
    #expect(broken.problems.contains { $0.problem.contains("99x20") })
    #expect(broken.report.contains("5 problems"))

    let noList = try DatasetStatistics(root: fixture.root, split: "test")
    #expect(noList.problems.count == 1 && noList.problems[0].file.hasSuffix("Segmentation/test.txt"))
  }

  @Test("a dataset directory that is not there is an error naming it, not a table of zeros")
  func missingDirectory() throws {
    let missing = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-missing-\(UUID().uuidString)")
    let error = #expect(throws: AEPSLError.self) { _ = try DatasetStatistics(root: missing, split: "train") }
    #expect(error?.file == missing.path && error?.kind == .missingFile)
  }
}
