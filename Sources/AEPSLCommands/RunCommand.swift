import AEPSLData
import AEPSLDistributed
import AEPSLEngine
import AEPSLPipeline
import ArgumentParser
import Foundation

extension PipelineStage: ExpressibleByArgument {}

struct RunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "From tagged images to a trained segmenter, its masks and an HTML report, in one command.",
    discussion: """
      Stages: synth (only without --dataset: the embedded synthetic dataset, written to RUN/dataset) -> \
      erase -> masks (AE masks in RUN/masks, the CAM-only baseline in RUN/masks-cam-only) -> train-seg \
      (PSL and PSL+, plus the FULLY SUPERVISED upper bound when the training split has ground truth, \
      see "upperBound") -> predict (the final model on the evaluation split, with the dense CRF, in \
      RUN/predict; each model's in RUN/predictions, and in RUN/predictions-test on the held-out \
      split when the dataset lists ImageSets/Segmentation/test.txt) -> eval (RUN/metrics/*.json, \
      test-*.json on the held-out split) -> report (RUN/report/index.html). Problems the scores \
      alone do not show (a classifier that did not learn, ...) are printed as WARNING lines and \
      kept in RUN/warnings.json.

      A rerun resumes after the last finished stage; deleting a stage's output, or changing its \
      options, redoes that stage and the ones after it. Every option of every stage can be set in \
      the --config JSON file, which is laid over the defaults: e.g. \
      {"erase": {"maxSteps": 3, "schedule": {"epochs": 6}}, "segmentation": {"pslPlus": false}}. \
      The resolved configuration, with every field, is written to RUN/config.json: start from a copy.
      """)

  @Option(help: "Dataset in the PASCAL VOC layout. Default: the embedded synthetic dataset.")
  var dataset: String?

  @OptionGroup var runDirectory: NewRunOption

  @Option(help: "JSON file with options for any stage (laid over the defaults).")
  var config: String?

  @Option(help: "Redo this stage and every later one: \(PipelineStage.allCases.map(\.rawValue).joined(separator: ", ")).")
  var from: PipelineStage?

  @Option(help: "Network for erasing and segmentation: tiny or largefov (overrides the config file).")
  var net: String?

  @OptionGroup var pool: ThreadOptions

  @Option(help: "Seed for every stage (overrides the config file's \"seed\").")
  var seed: UInt64?

  @Option(help: """
    Working resolution of training crops, CAMs and predictions (outputs come back at the image's own size): \
    crop (the longer side becomes the crop size, so a crop shows the whole image its tags describe), \
    own (each image's own size), or a number of pixels for the longer side. Overrides the config file's \
    \"imageSide\"; default: crop.
    """)
  var imageSide: WorkingResolution?

  @OptionGroup var badImages: BadImageOptions
  @OptionGroup var progress: ProgressOptions

  func validate() throws {
    if let net { try Check.network(net) }
  }

  func run() throws {
    pool.apply()
    let overrides: Data?
    if let config {
      do { overrides = try Data(contentsOf: URL(fileURLWithPath: config)) } catch {
        throw ValidationError("Cannot read --config \(config): \(error.localizedDescription)")
      }
    } else {
      overrides = nil
    }
    let resolved = try RunConfiguration.resolve(
      overrides: overrides, file: config ?? "(defaults)",
      commandLine: .init(net: net, dataset: dataset, seed: seed, imageSide: imageSide, onBadImage: badImages.given))
    if let ranks = Distributed.launchedSize(), ranks > 1 {
      throw ValidationError("""
        aepsl run is one process. Under mpirun, run the stages one by one (erase, masks, train-seg, predict), \
        then aepsl eval and aepsl report (README: On a cluster).
        """)
    }
    let pipeline = Pipeline(run: runDirectory.url, config: resolved, progress: progress.options, threads: pool.threads)
    let started = Date()
    let report = try interruptible { try pipeline.execute(from: from) }
    print("")
    print(pipeline.summaryTable())
    print(String(format: "Finished in %.1f minutes. Report: %@", Date().timeIntervalSince(started) / 60, report.path))
  }
}
