import AEPSLData
import AEPSLMethod
import ArgumentParser
import Foundation

/// `aepsl classifier-score`: how well an erasing step's classifier names the classes of a
/// split's images (accuracy and mean average precision), beside what answering "absent"
/// everywhere reaches.
struct ClassifierScoreCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "classifier-score",
    abstract: "Score an erasing step's classifier on a split: mean average precision and label accuracy.",
    discussion: """
      A loss curve that falls says little on its own: a classifier that answers each class's \
      frequency and ignores the image reaches a loss well below its first epoch's. This scores \
      RUN/erase/step-N/classifier.safetensors on whole images of --split (resized to the \
      working resolution --image-side, as its CAMs saw them) and prints the mean average \
      precision, the share of right class decisions at 0.5 against the share reached by \
      answering "absent" everywhere, and the share of images with every decision right.
      """)

  @OptionGroup var runDirectory: RunOption
  @OptionGroup var dataset: DatasetOption

  @Option(help: "Split to score on (ImageSets/Segmentation/<split>.txt).")
  var split = "val"

  @OptionGroup var step: ErasingStepOption

  @Option(help: "Network of the classifier: tiny or largefov.")
  var net = "tiny"

  @Option(help: "Working resolution: crop, own or pixels of the longer side (default: the run's erase setting).")
  var imageSide: WorkingResolution?

  @Flag(help: "Print one JSON object instead of text.")
  var json = false

  @OptionGroup var compute: ComputeOptions

  func run() throws {
    compute.apply()
    let checkpoint = runDirectory.url.appendingPathComponent("erase/step-\(step.number)/classifier.safetensors")
    let score = try ClassifierScore.evaluate(checkpoint: checkpoint, net: net,
                                             dataset: try VOCDataset(root: dataset.url), split: split,
                                             longerSide: try workingSide())
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      print(String(decoding: try encoder.encode(score), as: UTF8.self))
    } else {
      print(String(format: "step %d on %@ (%d images): mAP %.2f, label accuracy %.2f%% (all absent: %.2f%%), exact match %.2f%%",
                   step.number, split, score.images, 100 * score.meanAveragePrecision, 100 * score.labelAccuracy,
                   100 * score.absentAccuracy, 100 * score.exactMatch))
    }
  }

  /// The longer side the classifier saw: --image-side over the run's erasing configuration
  /// (crop sizes from it, or the network's default when the run has none).
  func workingSide() throws -> Int? {
    let erase = try EraseStage.configuration(run: runDirectory.url) ?? EraseConfiguration(dataset: dataset.path, net: net)
    return (imageSide ?? erase.imageSide).longerSide(crop: erase.cropSize)
  }
}
