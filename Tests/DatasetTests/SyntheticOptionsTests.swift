import AEPSLImaging
import Foundation
import Testing
@testable import AEPSLData

/// The generalization options of `aepsl synth`: sizes and aspects, class counts, object
/// scales, objects per image and the test split.
@Suite("Synthetic dataset options")
struct SyntheticOptionsTests {
  struct Size: CustomTestStringConvertible, Sendable {
    var width: Int, height: Int
    var testDescription: String { "\(width)x\(height)" }
  }

  @Test("images, masks and annotations take the asked size", arguments: [
    Size(width: 128, height: 128), Size(width: 256, height: 256), Size(width: 320, height: 240), Size(width: 500, height: 375),
  ])
  func sizes(_ size: Size) {
    let synth = SyntheticDataset(configuration: .init(seed: 2, trainCount: 3, valCount: 1, width: size.width, height: size.height))
    for index in 0..<synth.count {
      let scene = synth.scene(index)
      #expect(scene.image.width == size.width && scene.image.height == size.height)
      #expect(scene.mask.width == size.width && scene.mask.height == size.height)
      #expect(scene.annotation.width == size.width && scene.annotation.height == size.height)
      for o in scene.objects { #expect(o.visibleArea > 0, "\(scene.id): a hidden object") }
      // Objects keep their share of the image at every size (the demo's: about 4-18%).
      let objectShare = Double(scene.mask.labels.filter { $0 != 0 }.count) / Double(size.width * size.height)
      #expect(objectShare > 0.02 && objectShare < 0.6, "\(scene.id): objects cover \(objectShare)")
    }
  }

  @Test("6, 12 and 20 classes: all drawn, balanced, named apart; beyond 6 colours are shared", arguments: [6, 12, 20])
  func classCounts(_ count: Int) {
    let synth = SyntheticDataset(configuration: .init(seed: 4, trainCount: 20 * count, valCount: 0, size: 48, classCount: count))
    #expect(synth.classes.names.count == count && Set(synth.classes.names).count == count)
    var images = [Int](repeating: 0, count: count)
    for plan in synth.plans { for c in plan { images[c] += 1 } }
    #expect(images.min()! > 0 && images.max()! - images.min()! <= 2, "objects per class \(images)")
    // No two classes look alike: the pair (part colours, pattern) and the body's
    // preferences (shape, texture, hue) each differ.
    let parts = synth.styles.map { "\($0.outer)-\($0.inner)-\($0.pattern)" }
    #expect(Set(parts).count == count)
    let bodies = (0..<count).map { "\(SyntheticDataset.preferredShape($0))-\(SyntheticDataset.preferredTexture($0))-\(SyntheticDataset.bodyHue($0))" }
    #expect(Set(bodies).count == count)
    let colours = Set(synth.styles.map { "\($0.outer)" })
    #expect(colours.count == min(count, 6), "beyond 6 classes, part colours are shared")
  }

  @Test("object scale: objects measured in the masks span the asked share of the image")
  func objectScale() {
    let range: ClosedRange<Float> = 0.05...0.6
    let synth = SyntheticDataset(configuration: .init(seed: 5, trainCount: 40, valCount: 0, width: 96, height: 72,
                                                      objectScale: range, objectsPerImage: 1...1))
    var shares: [Double] = []
    for index in 0..<synth.count {
      let scene = synth.scene(index)
      // One object: its labelled pixels plus half of its border band.
      let labels = scene.mask.labels
      let inside = labels.filter { $0 != 0 && $0 != 255 }.count, band = labels.filter { $0 == 255 }.count
      shares.append((Double(inside) + 0.5 * Double(band)) / Double(labels.count))
    }
    #expect(shares.min()! > 0.6 * Double(range.lowerBound), "smallest object \(shares.min()!)")
    #expect(shares.max()! < 1.25 * Double(range.upperBound), "largest object \(shares.max()!)")
    #expect(shares.min()! < 0.09 && shares.max()! > 0.35, "the range is used: \(shares.min()!)...\(shares.max()!)")
    let geometric = exp(shares.map { log($0) }.reduce(0, +) / Double(shares.count))
    #expect(geometric > 0.1 && geometric < 0.3, "log-uniform: geometric mean \(geometric)")
  }

  @Test("objects per image: 1 to 5 distinct classes, every count drawn")
  func objectsPerImage() {
    let synth = SyntheticDataset(configuration: .init(seed: 6, trainCount: 60, valCount: 0, size: 96, classCount: 12,
                                                      objectsPerImage: 1...5))
    var histogram = [Int](repeating: 0, count: 6)
    for (index, plan) in synth.plans.enumerated() {
      #expect((1...5).contains(plan.count) && Set(plan).count == plan.count)
      histogram[plan.count] += 1
      if index < 15 { #expect(synth.scene(index).annotation.labels == plan.sorted()) }
    }
    #expect(histogram[1...].allSatisfy { $0 >= 5 }, "\(histogram)")
  }

  @Test("test split: disjoint from train and val, and train and val unchanged by it")
  func testSplit() throws {
    let plain = try temporaryDirectory("plain"), withTest = try temporaryDirectory("withTest")
    defer { for d in [plain, withTest] { try? FileManager.default.removeItem(at: d) } }
    let base = SyntheticDataset.Configuration(seed: 7, trainCount: 8, valCount: 3, size: 48)
    var extended = base
    extended.testCount = 4
    _ = try SyntheticDataset(configuration: base).write(to: plain, threads: 2)
    let summary = try SyntheticDataset(configuration: extended).write(to: withTest, threads: 2)
    let dataset = try VOCDataset(root: withTest)
    let train = try dataset.imageIDs(split: "train"), val = try dataset.imageIDs(split: "val")
    let test = try dataset.imageIDs(split: "test")
    #expect(train.count == 8 && val.count == 3 && test.count == 4 && summary.testIDs == test)
    #expect(Set(train).isDisjoint(with: val) && Set(train).isDisjoint(with: test) && Set(val).isDisjoint(with: test))
    let a = try fileTree(plain), b = try fileTree(withTest)
    for id in train + val {
      for file in ["/JPEGImages/\(id).jpg", "/SegmentationClass/\(id).png", "/Annotations/\(id).xml"] {
        #expect(a[file] != nil && a[file] == b[file], "\(file) changed when test images were added")
      }
    }
    #expect(a["/ImageSets/Segmentation/trainval.txt"] == b["/ImageSets/Segmentation/trainval.txt"])
    #expect(a["/ImageSets/Segmentation/test.txt"] == nil)
  }

  @Test("configurations that cannot be drawn say why")
  func problems() {
    #expect(SyntheticDataset.Configuration(classCount: 25).problem?.contains("class count") == true)
    #expect(SyntheticDataset.Configuration(classCount: 3, objectsPerImage: 1...4).problem?.contains("objects per image") == true)
    #expect(SyntheticDataset.Configuration(objectScale: 0.1...0.9).problem?.contains("object scale") == true)
    #expect(SyntheticDataset.Configuration(width: 20).problem?.contains("32 to 4096") == true)
    #expect(SyntheticDataset.Configuration().problem == nil)
  }
}
