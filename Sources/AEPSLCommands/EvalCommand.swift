import AEPSLData
import AEPSLMethod
import ArgumentParser
import Foundation

/// `aepsl eval`: scores label maps or a run's CAMs against the ground truth.
struct EvalCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Score label maps (or a run's CAMs) against the ground truth: IoU per class, mIoU, pixel accuracy.",
    discussion: """
      mIoU is the mean over the classes present in truth or prediction; 255 in the ground truth is \
      ignored; a predicted 255 on a labelled pixel counts against coverage. For pseudo masks, \
      precision (labelled pixels that are right) and coverage (ground-truth pixels labelled at all) \
      tell how clean and how complete they are. --dataset needs ground-truth masks (SegmentationClass or \
      SegmentationClassAug). --cams RUN scores the CAMs of an erasing step with a \
      background-threshold sweep.
      """)

  @Option(help: "Directory of predicted palette PNGs <id>.png.")
  var pred: String?

  @OptionGroup var source: SplitOptions

  @Option(help: "Score the CAMs of this run's erasing stage instead.")
  var cams: String?

  @OptionGroup var step: ErasingStepOption
  @OptionGroup var json: JSONOutputOption

  @OptionGroup var progress: ProgressOptions

  func validate() throws {
    if cams == nil && (pred == nil || source.dataset == nil) {
      throw ValidationError("Give --pred DIR and --dataset DIR, or --cams RUN.")
    }
    if cams != nil && pred != nil { throw ValidationError("--cams and --pred exclude each other.") }
  }

  func run() throws {
    let report: EvaluationReport
    if let cams {
      report = try Evaluation.cams(run: URL(fileURLWithPath: cams), step: step.number, progress: progress.options)
    } else {
      let data = try AEPSLData.VOCDataset(root: URL(fileURLWithPath: source.dataset!))
      report = try Evaluation.labelMaps(predictions: URL(fileURLWithPath: pred!), dataset: data, split: source.split,
                                        progress: progress.options)
    }
    print(report.table)
    if let json = json.path { try report.write(to: URL(fileURLWithPath: json)) }
  }
}
