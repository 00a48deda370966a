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
      Annotations/, SegmentationClass/, ImageSets/Segmentation/{train,val,trainval}.txt, \
      classes.txt and synth.json.
      """)

  @Argument(help: "Output directory (created if needed).")
  var out: String

  @Option(help: "Seed: the same seed gives the same files.")
  var seed: UInt64 = 0

  @Option(help: "Training images.")
  var train: Int = 800

  @Option(help: "Validation images.")
  var val: Int = 200

  @Option(help: "Image side in pixels (all geometry scales with it).")
  var size: Int = 128

  @Option(help: "JPEG quality (1-100).")
  var jpegQuality: Int = 90

  @Option(help: "Threads used to render and encode.")
  var threads: Int = ProcessInfo.processInfo.activeProcessorCount

  @Flag(help: "Replace an existing synthetic dataset in OUT (made with other settings).")
  var overwrite = false

  func validate() throws {
    guard train >= 0, val >= 0, train + val >= 1 else {
      throw ValidationError("--train and --val must not be negative, and together at least 1.")
    }
    guard (32...2048).contains(size) else { throw ValidationError("--size must be 32 to 2048, got \(size).") }
    guard (1...100).contains(jpegQuality) else { throw ValidationError("--jpeg-quality must be 1 to 100, got \(jpegQuality).") }
    guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads).") }
  }

  func run() throws {
    let directory = URL(fileURLWithPath: out).standardizedFileURL
    let dataset = SyntheticDataset(configuration: .init(seed: seed, trainCount: train, valCount: val, size: size,
                                                        jpegQuality: jpegQuality))
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
    print(String(format: "Wrote %d train and %d val images (%dx%d, %d classes) to %@ in %.1f s.",
                 summary.trainIDs.count, summary.valIDs.count, size, size, SyntheticDataset.styles.count,
                 directory.path, seconds))
    let counts = SyntheticDataset.styles.map { "\($0.name) \(summary.classCounts[$0.name] ?? 0)" }
    print("Objects per class: " + counts.joined(separator: ", "))
    printNext(directory)
  }

  private func printNext(_ directory: URL) {
    print("Next: aepsl dataset stats \(directory.path)")
  }
}
