import AEPSLDistributed
import AEPSLMethod
import ArgumentParser
import Foundation

/// `aepsl predict`: full-image inference with a trained segmenter (docs/METHOD.md 1.4).
struct PredictCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict",
    abstract: "Label every pixel of a split's images (or a directory of images) with a trained segmenter.",
    discussion: """
      Each image is run whole (padded at the bottom and right to fit the network's stride-8 \
      grid, any size works); the score maps are upsampled bilinearly to the image and turned \
      into probabilities p = softmax(f). Class confidences v (the classification branch) \
      below --confidence are set to 0, the others kept: p'_0 = p_0 and p'_c = w_c p_c with \
      w_c = v_c (or 0), renormalised per pixel; background is never weighted. Then the dense \
      CRF on p' (DeepLab's defaults: 10 iterations, Gaussian sxy 3 weight 3, bilateral sxy 80 \
      srgb 13 weight 10), or the argmax with --crf off. A model trained with --psl off has no \
      trained classification branch and is used without weighting.

      The model: --checkpoint FILE, or --model VARIANT from RUN/seg/ (psl-plus, psl, deeplab, \
      full, full-psl); by default psl-plus if it is trained, else psl, else deeplab (the \
      fully supervised upper bound only when asked for). Writes palette PNGs OUT/<id>.png \
      (0 background, 1...C) and with --overlay OUT/overlay/<id>.jpg, then OUT/manifest.json \
      (which lists the images --on-bad-image skip left out; aepsl eval does not score them). \
      Next: aepsl eval --pred OUT --dataset DIR --split val
      """)

  @Option(name: .customLong("run"), help: "Run directory whose RUN/seg/<model> to use.")
  var runDirectory: String?

  @OptionGroup var source: SplitOptions

  @Option(help: "Predict every .jpg/.jpeg/.png in this directory instead of a dataset split.")
  var images: String?

  @Option(help: "Output directory for <id>.png label maps.")
  var out: String

  @Option(help: "Variant under RUN/seg/: psl-plus, psl, deeplab, full or full-psl. Default: psl-plus, else psl, else deeplab.")
  var model: String?

  @Option(help: "A segmenter.safetensors written by train-seg (instead of --run/--model).")
  var checkpoint: String?

  @OptionGroup var confidence: ConfidenceOption

  @Option(help: "Refine with the dense CRF (on) or take the argmax (off).")
  var crf = Switch.on

  @Flag(help: "Also write the labels blended over each image to OUT/overlay/<id>.jpg.")
  var overlay = false

  @OptionGroup var crfOptions: CRFOptions
  @OptionGroup var badImages: BadImageOptions
  @OptionGroup var compute: ComputeOptions
  @OptionGroup var shard: ShardOptions
  @OptionGroup var progress: ProgressOptions

  func validate() throws {
    if (source.dataset == nil) == (images == nil) { throw ValidationError("Give either --dataset DIR (with --split) or --images DIR.") }
    if checkpoint != nil && (runDirectory != nil || model != nil) {
      throw ValidationError("--checkpoint excludes --run and --model.")
    }
    if checkpoint == nil && runDirectory == nil { throw ValidationError("Give --run RUN (and optionally --model), or --checkpoint FILE.") }
  }

  func run() throws {
    compute.apply()
    let file = try checkpoint.map { URL(fileURLWithPath: $0) }
      ?? PredictStage.checkpoint(run: URL(fileURLWithPath: runDirectory!), model: model.map(ModelVariant.init(parsing:)))
    var c = PredictConfiguration(checkpoint: file.path, output: out)
    (c.dataset, c.split, c.images) = (source.dataset, source.split, images)
    c.confidenceThreshold = confidence.confidence
    c.overlay = overlay
    c.onBadImage = badImages.onBadImage
    let refinement = crf.isOn ? crfOptions.refinement(threads: compute.threads) : .argmax
    let (dir, root) = try runStage { communicator in
      try PredictStage.run(c, refinement: refinement, progress: progress.options,
                           sharding: StageSharding(communicator: communicator, shard: shard.value))
    }
    if root, let dataset = source.dataset { print("Next: aepsl eval --pred \(dir.path) --dataset \(dataset) --split \(source.split)") }
  }
}
