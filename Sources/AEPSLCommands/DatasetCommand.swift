import AEPSLData
import AEPSLEngine
import ArgumentParser
import Foundation

/// `aepsl dataset`: look at a dataset without training anything, and time the loader.
struct DatasetCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "dataset",
    abstract: "Inspect a VOC-layout dataset and measure the batch loader.",
    subcommands: [DatasetStatsCommand.self, BenchLoaderCommand.self])
}

struct DatasetStatsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "stats",
    abstract: "Images per class, labels per image, image sizes, and every problem found.",
    discussion: """
      Reads the list, the annotations and the image headers; trains nothing. Exits with status 1 \
      when it finds a problem (each is listed with its file), so that a script can stop before a \
      long run.
      """)

  @OptionGroup var list: DatasetListArguments

  @Flag(help: "Also decode every mask and check its size and labels.")
  var checkMasks = false

  /// Kept so that scripts written when problems did not fail the command still parse;
  /// the command now always exits with status 1 when it finds a problem.
  @Flag(help: .hidden)
  var strict = false

  func run() throws {
    let stats = try DatasetStatistics(root: URL(fileURLWithPath: list.dir), split: list.split, checkMasks: checkMasks)
    print(stats.report)
    guard stats.problems.isEmpty else {
      let count = stats.problems.count
      FileHandle.standardError.write(Data("aepsl: \(count) problem\(count == 1 ? "" : "s") found in \(list.dir) (listed above).\n".utf8))
      throw ExitCode(1)
    }
  }
}

struct BenchLoaderCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench-loader",
    abstract: "Images per second the batch loader delivers, alone and beside a training step.",
    discussion: """
      First the loader alone (the consumer takes batches and does nothing), then, with \
      --train-net, the same loader feeding training steps of that network: the step's \
      images/s and the share of its time spent waiting for data. Augmentation is DeepLab's \
      (scale 0.5-1.5, pad, random crop, flip) at --crop.
      """)

  @OptionGroup var list: DatasetListArguments

  @Option(help: "Images per batch.")
  var batchSize: Int = 32

  @Option(help: "Crop side (128 for tiny, 321 for largefov).")
  var crop: Int = 128

  @Option(help: "Loader worker threads.")
  var workers: Int = 2

  @Option(help: "Batches to time for the loader alone.")
  var batches: Int = 40

  @Option(help: "Also feed training steps of this network (tiny, largefov; none to skip).")
  var trainNet: String = "none"

  @Option(help: "Training steps to time with --train-net.")
  var steps: Int = 10

  @OptionGroup var compute: ComputeOptions

  func validate() throws {
    guard batchSize >= 1, crop >= 8, workers >= 1, batches >= 1, steps >= 1 else {
      throw ValidationError("--batch-size, --workers, --batches and --steps must be at least 1, --crop at least 8.")
    }
    guard trainNet == "none" || BackboneSpec.named(trainNet) != nil else {
      throw ValidationError("Unknown network '\(trainNet)'; choose none or one of \(BackboneSpec.names.joined(separator: ", ")).")
    }
  }

  func run() throws {
    compute.apply()
    let dataset = try VOCDataset(root: URL(fileURLWithPath: list.dir))
    let set = try dataset.classificationSet(split: list.split)
    let options = BatchLoader.Options(batchSize: batchSize, augmentation: .deepLab(crop: crop), shuffle: true,
                                      dropLast: true, seed: compute.seed, workers: workers)
    let loader = BatchLoader(source: set.source(), classes: set.classes.count, options: options)
    guard loader.batchesPerEpoch >= 1 else {
      throw ValidationError("The split has \(set.count) labelled images, fewer than one batch of \(batchSize).")
    }
    print("Dataset \(dataset.root.path), split \(list.split): \(set.count) images; batch \(batchSize), crop \(crop), \(workers) workers")

    // The loader alone.
    var images = 0, epoch = 0
    let start = Date()
    var firstBatch: Double?
    while images < batches * batchSize {
      let stream = loader.epoch(epoch)
      while images < batches * batchSize, let batch = try stream.next() {
        if firstBatch == nil { firstBatch = Date().timeIntervalSince(start) }
        images += batch.count
      }
      epoch += 1
    }
    let seconds = Date().timeIntervalSince(start)
    print(String(format: "loader alone: %.1f images/s (%d images in %.2f s; first batch after %.0f ms)",
                 Double(images) / seconds, images, seconds, (firstBatch ?? 0) * 1000))

    guard trainNet != "none", let spec = BackboneSpec.named(trainNet) else { return }
    let model = Classifier(spec: spec, classes: set.classes.count, seed: compute.seed)
    let sgd = SGD(parameters: model.parameters, learningRate: 0.01)
    func step(_ batch: Batch) {
      let logits = model.forward(batch.images, training: true)
      let loss = Loss.sigmoidSquaredError(logits: logits, targets: batch.targets)
      model.backward(loss.gradient)
      sgd.step()
    }
    // Warm up (primitive creation), then time steps fed by the loader.
    var stream = loader.epoch(1000)
    if let batch = try stream.next() { step(batch) }
    stream = loader.epoch(1001)
    var stepped = 0, fed = 0
    let trainStart = Date()
    var computeSeconds = 0.0
    while stepped < steps {
      guard let batch = try stream.next() else {
        stream = loader.epoch(1002 + stepped)
        continue
      }
      let t = Date()
      step(batch)
      computeSeconds += Date().timeIntervalSince(t)
      stepped += 1
      fed += batch.count
    }
    let total = Date().timeIntervalSince(trainStart)
    print(String(format: "%@ training fed by the loader: %.1f images/s; waiting for data %.1f%% of the time (%.2f of %.2f s)",
                 trainNet, Double(fed) / total, 100 * (total - computeSeconds) / total, total - computeSeconds, total))
  }
}
