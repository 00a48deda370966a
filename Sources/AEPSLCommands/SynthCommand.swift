import AEPSLData
import ArgumentParser
import Foundation

/// `aepsl synth`: the embedded demo dataset, generated in the VOC layout.
struct SynthCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "synth",
    abstract: "Write a procedurally generated dataset in the PASCAL VOC layout.",
    discussion: """
      Every object is a body from a pool shared by all classes (shapes, textures and muted \
      colours, each with a weak class bias) plus a small part (a two-tone disc, at most about \
      22% of the object) that alone names the class, so a classifier's activation map covers \
      the part and adversarial erasing has to find the body. 1 to 3 \
      objects per image, overlapping, on clutter that belongs to no class; masks with a 255 \
      band on object borders. The same seed gives byte-identical files. Writes JPEGImages/, \
      Annotations/, SegmentationClass/, ImageSets/Segmentation/{train,val,test,trainval}.txt, \
      classes.txt and synth.json.

      Generalization options move the data away from the demo: --width/--height (any \
      aspect), --classes (up to 24: beyond 6, classes share part colours and differ in the \
      part's pattern and body), --object-scale (each object's share of the image's area) \
      and --objects (objects per image). Without them, train and val are the demo's, byte \
      for byte; test images are numbered after them and change none of them.
      """)

  @Argument(help: "Output directory (created if needed).")
  var out: String

  @Option(help: "Seed: the same seed gives the same files.")
  var seed: UInt64 = 0

  @Option(help: "Training images.")
  var train: Int = 800

  @Option(help: "Validation images.")
  var val: Int = 200

  @Option(help: "Test images (numbered after val: adding them changes no train or val image).")
  var test: Int = 200

  @Option(help: "Image side in pixels (all geometry scales with it).")
  var size: Int = 128

  @Option(help: "Image width in pixels (default: --size); lengths scale with the shorter side.")
  var width: Int?

  @Option(help: "Image height in pixels (default: --size).")
  var height: Int?

  @Option(help: "Foreground classes, 1 to \(SyntheticDataset.maxClasses) (default: the demo's 6).")
  var classes: Int?

  @Option(help: "Each object's area as a fraction of the image's, MIN-MAX, drawn log-uniformly, e.g. 0.05-0.6 (default: the demo's radii, about 0.04-0.18).")
  var objectScale: String?

  @Option(help: "Objects per image, MIN-MAX, uniformly, e.g. 1-5 (default: the demo's 1-3, weighted 0.4, 0.4, 0.2).")
  var objects: String?

  @Option(help: "JPEG quality (1-100).")
  var jpegQuality: Int = 90

  @Option(help: "Threads used to render and encode.")
  var threads: Int = ProcessInfo.processInfo.activeProcessorCount

  @Flag(help: "Replace an existing synthetic dataset in OUT (made with other settings).")
  var overwrite = false

  func validate() throws {
    guard train >= 0, val >= 0, test >= 0, train + val + test >= 1 else {
      throw ValidationError("--train, --val and --test must not be negative, and together at least 1.")
    }
    guard (32...2048).contains(size) else { throw ValidationError("--size must be 32 to 2048, got \(size).") }
    if let problem = try configuration().problem { throw ValidationError("The options ask for a dataset that cannot be drawn: \(problem).") }
    guard (1...100).contains(jpegQuality) else { throw ValidationError("--jpeg-quality must be 1 to 100, got \(jpegQuality).") }
    try Check.atLeast(1, threads, "--threads")
  }

  func run() throws {
    let directory = URL(fileURLWithPath: out).standardizedFileURL
    let dataset = SyntheticDataset(configuration: try configuration())
    if try dataset.prepare(directory: directory, overwrite: overwrite) == .alreadyWritten {
      print("\(directory.path) already holds this synthetic dataset (synth.json matches); nothing to do.")
      printNext(directory)
      return
    }

    let start = Date()
    let total = dataset.count
    let summary = try dataset.write(to: directory, threads: threads) { done in
      if done % 200 == 0 || done == total {
        print("  \(done)/\(total) images")
      }
    }
    let seconds = Date().timeIntervalSince(start)
    let c = dataset.configuration
    print(String(format: "Wrote %d train, %d val and %d test images (%dx%d, %d classes) to %@ in %.1f s.",
                 summary.trainIDs.count, summary.valIDs.count, summary.testIDs.count, c.imageWidth, c.imageHeight,
                 c.classTotal, directory.path, seconds))
    let counts = dataset.styles.map { "\($0.name) \(summary.classCounts[$0.name] ?? 0)" }
    print("Objects per class: " + counts.joined(separator: ", "))
    printNext(directory)
  }

  /// The generator's configuration from the options (ranges parsed here).
  func configuration() throws -> SyntheticDataset.Configuration {
    let scale = try objectScale.map { text -> ClosedRange<Float> in
      let (a, b) = try Self.range(text, option: "--object-scale", example: "0.05-0.6") { Float($0) }
      return a...b
    }
    let count = try objects.map { text -> ClosedRange<Int> in
      let (a, b) = try Self.range(text, option: "--objects", example: "1-5") { Int($0) }
      return a...b
    }
    return .init(seed: seed, trainCount: train, valCount: val, size: size, jpegQuality: jpegQuality, testCount: test,
                 width: width, height: height, classCount: classes, objectScale: scale, objectsPerImage: count)
  }

  /// "MIN-MAX" (or a single value) with MIN <= MAX.
  static func range<T: Comparable>(_ text: String, option: String, example: String, parse: (String) -> T?) throws -> (T, T) {
    let parts = text.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
    guard (1...2).contains(parts.count), let a = parse(parts[0]), let b = parse(parts.last!), a <= b else {
      throw ValidationError("\(option) takes MIN-MAX with MIN <= MAX, e.g. \(example); got '\(text)'.")
    }
    return (a, b)
  }

  private func printNext(_ directory: URL) {
    print("Next: aepsl dataset stats \(directory.path)")
  }
}
