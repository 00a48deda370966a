import AEPSLExport
import AEPSLMethod
import ArgumentParser
import Foundation

/// `aepsl export`: a trained network for onnxruntime or PyTorch.
struct ExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Write a trained segmenter (or an erasing step's classifier) as ONNX or as a PyTorch state dict.",
    discussion: """
      The network as it runs at inference: batch norm folded into the convolutions, dropout \
      left out, float32. --onnx FILE writes an ONNX model (opset 17, any batch, height and \
      width) whose input `image` [N, 3, H, W] is normalised as its metadata says \
      (normalization_mean, normalization_std, on the 0-255 scale, RGB). A segmenter gives \
      `scores` (background + classes, on the stride-8 grid), `upsampled_scores` (the same, \
      bilinear to H x W as aepsl predict does) and `confidences` (the classification \
      branch's sigmoid); a classifier (--step N) gives `cams` and `confidences`. The metadata \
      also holds class_names, the padding that fits the grid, and the confidence threshold.

      --pytorch FILE writes the same weights as a safetensors state dict with plain names \
      (backbone.<layer>.weight, score.*, classifier.*) for scripts/aepsl_torch.py.

      The segmenter: --model VARIANT from RUN/seg/ (default: psl-plus if trained, else psl, \
      else deeplab, as aepsl predict picks), or --checkpoint FILE.
      """)

  @Option(name: .customLong("run"), help: "Run directory whose segmenter (or erasing step) to export.")
  var runDirectory: String?

  @Option(help: "Variant under RUN/seg/: psl-plus, psl, deeplab, full or full-psl. Default: psl-plus, else psl, else deeplab.")
  var model: String?

  @Option(help: "Export the classifier of this erasing step (RUN/erase/step-N/classifier.safetensors) instead of a segmenter.")
  var step: Int?

  @Option(help: "A segmenter.safetensors written by train-seg (instead of --run/--model).")
  var checkpoint: String?

  @Option(help: "Write the ONNX model here.")
  var onnx: String?

  @Option(help: "Write the PyTorch state dict (safetensors) here.")
  var pytorch: String?

  @Option(help: "The confidence threshold recorded in the metadata (aepsl predict's --confidence).")
  var confidence: Float = 0.1

  // For the export checks (scripts/check_torch_export.py): aepsl's own outputs on these
  // images, as .npy files (ExportReference).
  @Option(help: .hidden)
  var referenceImages: String?

  @Option(help: .hidden)
  var referenceOut: String?

  func validate() throws {
    if onnx == nil && pytorch == nil && referenceOut == nil { throw ValidationError("Give --onnx FILE, --pytorch FILE or both.") }
    if (referenceImages == nil) != (referenceOut == nil) { throw ValidationError("--reference-images and --reference-out go together.") }
    if checkpoint != nil && (runDirectory != nil || model != nil || step != nil) {
      throw ValidationError("--checkpoint excludes --run, --model and --step.")
    }
    if checkpoint == nil && runDirectory == nil { throw ValidationError("Give --run RUN (with --model or --step), or --checkpoint FILE.") }
    if step != nil && model != nil { throw ValidationError("--step (a classifier) and --model (a segmenter) exclude each other.") }
    if let step, step < 1 { throw ValidationError("--step counts from 1, got \(step).") }
    guard confidence >= 0 && confidence <= 1 else { throw ValidationError("--confidence must be in [0, 1], got \(confidence).") }
  }

  func run() throws {
    let loaded: ExportedModel
    if let checkpoint {
      loaded = try ExportSource.segmenter(checkpoint: URL(fileURLWithPath: checkpoint), confidenceThreshold: confidence)
    } else if let step {
      loaded = try ExportSource.classifier(run: URL(fileURLWithPath: runDirectory!), step: step)
    } else {
      loaded = try ExportSource.segmenter(run: URL(fileURLWithPath: runDirectory!), model: model.map(ModelVariant.init(parsing:)),
                                         confidenceThreshold: confidence)
    }
    let network = loaded.network
    if let onnx {
      try ONNXExport.write(network, to: URL(fileURLWithPath: onnx))
      print("export: wrote \(onnx) (ONNX, \(network.net), \(network.classNames.count) classes)")
    }
    if let pytorch {
      try TorchExport.write(network, to: URL(fileURLWithPath: pytorch))
      print("export: wrote \(pytorch) (PyTorch state dict; load it with scripts/aepsl_torch.py)")
    }
    if let referenceImages, let referenceOut {
      let ids = try ExportReference.write(loaded, images: URL(fileURLWithPath: referenceImages), to: URL(fileURLWithPath: referenceOut))
      print("export: wrote aepsl's outputs on \(ids.count) images to \(referenceOut)")
    }
  }
}
