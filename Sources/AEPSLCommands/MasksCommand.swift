import AEPSLData
import AEPSLDistributed
import AEPSLFiles
import AEPSLMethod
import ArgumentParser
import Foundation

extension BackgroundCue: ExpressibleByArgument {}

struct MasksCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "masks",
    abstract: "Pseudo masks from the mined object regions and a background cue.",
    discussion: """
      Per pixel: class c where only its mined region covers it; the class with the higher CAM where \
      several do; background (0) where the background cue is confident; 255 (ignore) elsewhere. \
      RUN must hold a finished erasing stage. Writes palette PNGs <id>.png to RUN/masks (or --out). \
      --steps 1 gives the CAM-only baseline. \
      Next: aepsl train-seg --run RUN
      """)

  @OptionGroup var runDirectory: RunOption

  @Option(help: "Output directory. Default: RUN/masks.")
  var out: String?

  @Option(help: "Background cue: saliency (built-in minimum-barrier detector, or --saliency-dir) or cam.")
  var background = BackgroundCue.saliency

  @Option(help: "Grayscale saliency PNGs <id>.png from any detector (255 = salient).")
  var saliencyDir: String?

  @Option(help: "Background where the cue is below this (0-1).")
  var backgroundThreshold: Float = MaskConfiguration().backgroundThreshold

  @Option(help: "Label an object only where the cue is at least this (0-1): erased regions spill over their object's edge. A mined pixel below it is left at 255 (background below --background-threshold). 0: every mined pixel (the paper).")
  var objectThreshold: Float = MaskConfiguration().objectThreshold

  @Option(help: "on: each salient region (cue at least --object-threshold) that holds object labels gives its unlabelled pixels their class; where it holds several classes, each pixel the one with the higher CAM. off is the paper's masks. Default: \(MaskConfiguration().fillObjects ? "on" : "off").")
  var fillObjects: Switch = MaskConfiguration().fillObjects ? .on : .off

  @Option(help: "Merge only the first N erasing steps (1 = CAM-only baseline). Default: the steps the stopping rule chose.")
  var steps: Int?

  @OptionGroup var badImages: BadImageOptions
  @OptionGroup var shard: ShardOptions
  @OptionGroup var progress: ProgressOptions

  func validate() throws {
    do { try maskConfiguration.check() } catch let error as AEPSLError { throw ValidationError(error.description) }
    if saliencyDir != nil && background != .saliency { throw ValidationError("--saliency-dir needs --background saliency.") }
  }

  var maskConfiguration: MaskConfiguration {
    var c = MaskConfiguration()
    (c.background, c.saliencyDirectory, c.backgroundThreshold) = (background, saliencyDir, backgroundThreshold)
    (c.steps, c.output, c.onBadImage, c.objectThreshold) = (steps, out, badImages.onBadImage, objectThreshold)
    c.fillObjects = fillObjects.isOn
    return c
  }

  func run() throws {
    let (dir, root) = try runStage { communicator in
      try MaskStage.run(maskConfiguration, run: runDirectory.url, progress: progress.options,
                        sharding: StageSharding(communicator: communicator, shard: shard.value))
    }
    guard root else { return }
    print("Next: aepsl eval --pred \(dir.path) --dataset DATASET --split train, or aepsl train-seg --run \(runDirectory.path)")
  }
}
