import AEPSLData
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import AEPSLMethod
import Foundation

/// aepsl's own outputs on real images, for checking an exported file in another runtime
/// (scripts/check_torch_export.py, Tests/ExportTests/check_onnx.py): per image `<id>`,
/// input_<id>.npy (the normalised batch of one the network sees) and one <output>_<id>.npy
/// per output, all float32.
///
/// The input is prepared as aepsl does: resized to the working resolution (`image_side`) when
/// the network has one; a segmenter's input then padded at the bottom and right with 0 (the
/// mean pixel) to fit its score grid, as `aepsl predict` pads.
public enum ExportReference {
  /// Writes the files for every .jpg, .jpeg and .png in `images` into `output`; returns the ids.
  @discardableResult
  public static func write(_ model: ExportedModel, images: URL, to output: URL) throws -> [String] {
    let files = try FileManager.default.contentsOfDirectory(at: images, includingPropertiesForKeys: nil)
      .filter { ["jpg", "jpeg", "png"].contains($0.pathExtension.lowercased()) }
      .sorted { $0.lastPathComponent < $1.lastPathComponent }
    guard !files.isEmpty else {
      throw AEPSLError(kind: .missingFile, file: images.path, problem: "holds no .jpg, .jpeg or .png image",
                        fix: "Give a directory of images to compute reference outputs on.")
    }
    try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
    var ids: [String] = []
    for file in files {
      let id = file.deletingPathExtension().lastPathComponent
      let x = input(try readRGBImage(file), for: model.network)
      try NumPyArray.write(x, to: output.appendingPathComponent("input_\(id).npy"))
      for (name, value) in model.referenceOutputs(x) {
        try NumPyArray.write(value, to: output.appendingPathComponent("\(name)_\(id).npy"))
      }
      ids.append(id)
    }
    return ids
  }

  /// The normalised [1, 3, H, W] input of `image`.
  static func input(_ image: Image, for network: InferenceNetwork) -> Tensor {
    var rgb = image.converted(toChannels: 3)
    let scale = Augmentation.workingScale(longerSide: network.imageSide, width: rgb.width, height: rgb.height)
    if scale != 1 {
      rgb = rgb.resized(width: max(1, Int((Double(rgb.width) * scale).rounded())),
                        height: max(1, Int((Double(rgb.height) * scale).rounded())))
    }
    let plain = PixelNormalization.imageNet.tensor(rgb)
    guard case .segmenter = network.head else { return plain }
    let grid = network.grid
    let (w, h) = (rgb.width, rgb.height)
    let (pw, ph) = (grid.paddedSide(w), grid.paddedSide(h))
    let x = Tensor(shape: [1, 3, ph, pw])
    for c in 0..<3 {
      for y in 0..<h { (x.data + (c * ph + y) * pw).update(from: plain.data + (c * h + y) * w, count: w) }
    }
    return x
  }
}
