import AEPSLReport
import ArgumentParser
import Foundation

struct ReportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Write RUN/report/index.html: one page with every stage's results, opened from disk.",
    discussion: """
      The page needs no server and no network: plots are inline SVG and images are PNG files in \
      RUN/report/img/, so copy the report directory as a whole. Sections, each shown once its stage \
      has written its files ("Not run yet" otherwise): the header (dataset, classes, configuration, \
      version); sample training images with each erasing step's CAMs and erased region, the pseudo \
      mask and the ground truth; the loss curves of the erasing steps (which were merged) and of \
      segmentation training (RUN/seg/<variant>/loss.csv); predictions on validation images \
      (RUN/predict); the per-class IoU table; the confusion matrix of the final predictions; the \
      time of each stage (from the manifests).
      The IoU table reads RUN/metrics/<name>.json as `aepsl eval --json` writes it: cam (CAM only: \
      step-1 pseudo masks, or `aepsl eval --cams RUN`), ae-masks (RUN/masks on the training split), deeplab, psl, psl-plus, \
      and full (the fully supervised upper bound); a missing file is a row of dashes. The confusion \
      matrix comes from metrics/predict.json (RUN/predict evaluated), else from the metrics of the \
      variant RUN/predict was made with, else psl-plus, psl or deeplab.
      """)

  @OptionGroup var runDirectory: RunOption
  @OptionGroup var dataset: RunDatasetOption

  @Option(help: "Training images shown step by step, and validation images shown with their predictions.")
  var samples = 6

  @Option(help: "Images are scaled down to at most this many pixels on their longer side.")
  var imageSize = 256

  func validate() throws {
    guard samples >= 0 else { throw ValidationError("--samples must be 0 or more, got \(samples).") }
    try Check.atLeast(16, imageSize, "--image-size")
  }

  func run() throws {
    let index = try RunReport.write(run: runDirectory.url,
                                    options: ReportOptions(dataset: dataset.path, samples: samples, maxImageSide: imageSize))
    print("Open \(index.absoluteString) in a browser.")
  }
}
