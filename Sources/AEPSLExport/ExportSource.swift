import AEPSLData
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import AEPSLMethod
import Foundation

/// A network loaded for export: its inference description, and aepsl's own forward pass,
/// which gives the reference outputs an exported file is checked against.
public struct ExportedModel {
  public let network: InferenceNetwork
  /// aepsl's outputs for a normalised batch [N, 3, H, W], named as the ONNX graph's outputs.
  public let referenceOutputs: (Tensor) -> [(name: String, value: Tensor)]
}

/// Finds and loads the network to export: a run's segmenter (as `aepsl predict` picks it), a
/// segmenter checkpoint, or the classifier of an erasing step.
public enum ExportSource {
  /// The segmenter in `checkpoint` (a segmenter.safetensors written by `aepsl train-seg`).
  /// `confidenceThreshold` is recorded in the metadata: confidences below it should be set
  /// to 0 before weighting, as `aepsl predict --confidence` does.
  public static func segmenter(checkpoint: URL, confidenceThreshold: Float = 0.1) throws -> ExportedModel {
    try requireFile(checkpoint, fix: "Give a segmenter.safetensors written by `aepsl train-seg`.")
    let info = try SegmenterInfo(checkpoint: checkpoint)
    let model = try info.load(from: checkpoint)
    let grid = ScoreGrid(spec: model.spec)
    return ExportedModel(network: try InferenceNetwork(segmenter: model, info: info, confidenceThreshold: confidenceThreshold)) { x in
      let (out, logits) = model.forward(x, training: false)
      let scores = out.nchw()
      return [("scores", scores), ("upsampled_scores", upsampled(scores, toHeight: x.shape[2], width: x.shape[3], alignCorners: grid.alignCorners)),
              ("confidences", OnlineMask.confidences(logits: logits))]
    }
  }

  /// The segmenter `model` of `run`, or by default the one `aepsl predict` would use.
  public static func segmenter(run: URL, model: ModelVariant?, confidenceThreshold: Float = 0.1) throws -> ExportedModel {
    try requireRun(run)
    return try segmenter(checkpoint: PredictStage.checkpoint(run: run, model: model), confidenceThreshold: confidenceThreshold)
  }

  /// The classifier of erasing step `step` of `run`; its network, class names and working
  /// resolution come from the erasing configuration and the dataset it names.
  public static func classifier(run: URL, step: Int) throws -> ExportedModel {
    try requireRun(run)
    let layout = EraseLayout(run: run)
    let file = layout.checkpoint(step)
    try requireFile(file, fix: "Give a step whose classifier finished training (the step-N directories of "
                      + "\(layout.root.path)), or run `aepsl erase --run \(run.path)` first.")
    guard let erase = try EraseStage.configuration(run: run) else {
      throw AEPSLError(kind: .missingFile, file: layout.configurationFile.path,
                        problem: "is missing, so the classifier's network and classes are unknown (an older aepsl made this run)",
                        fix: "Delete \(layout.root.path) and run `aepsl erase --run \(run.path)` again.")
    }
    guard let spec = BackboneSpec.named(erase.net) else {
      throw AEPSLError(file: layout.configurationFile.path, problem: "names the network '\(erase.net)', which this version does not know",
                        fix: "Use a run made with one of: \(BackboneSpec.names.joined(separator: ", ")).")
    }
    let classes = try VOCDataset(root: URL(fileURLWithPath: erase.dataset)).classes.names
    let model = Classifier(spec: spec, classes: classes.count, seed: 0)
    try Checkpoint.load(from: file, into: model.parameters, buffers: model.buffers)
    return ExportedModel(network: try InferenceNetwork(classifier: model, classNames: classes, step: step, imageSide: erase.workingSide)) { x in
      let logits = model.forward(x, training: false)
      return [("cams", model.classActivationMaps(features: model.lastFeatures!)), ("confidences", OnlineMask.confidences(logits: logits))]
    }
  }

  /// Score maps [N, K, h, w] upsampled bilinearly to [N, K, height, width], sample by sample,
  /// as `SegmentationInference` upsamples them.
  static func upsampled(_ scores: Tensor, toHeight height: Int, width: Int, alignCorners: Bool) -> Tensor {
    let (n, k, h, w) = (scores.shape[0], scores.shape[1], scores.shape[2], scores.shape[3])
    let values = rowMajor(scores)
    var out: [Float] = []
    out.reserveCapacity(n * k * height * width)
    for s in 0..<n {
      out += resizeBilinear(Array(values[(s * k * h * w)..<((s + 1) * k * h * w)]), channels: k, height: h, width: w,
                            toHeight: height, toWidth: width, alignCorners: alignCorners)
    }
    return Tensor(shape: [n, k, height, width], values: out)
  }

  private static func requireRun(_ run: URL) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: run.path, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw AEPSLError(kind: .missingFile, file: run.path, problem: "is not a run directory (it does not exist)",
                        fix: "Give the --run directory that `aepsl run` or `aepsl erase` wrote.")
    }
  }

  private static func requireFile(_ url: URL, fix: String) throws {
    guard FileManager.default.fileExists(atPath: url.path) else {
      throw AEPSLError(kind: .missingFile, file: url.path, problem: "does not exist", fix: fix)
    }
  }
}
