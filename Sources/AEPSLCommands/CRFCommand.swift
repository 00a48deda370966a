import AEPSLCRF
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import ArgumentParser
import Foundation

/// `aepsl crf`: the dense CRF alone, on one image and its class probabilities.
struct CRFCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "crf",
    abstract: "Refine class probabilities with the fully connected CRF and write the label map.",
    discussion: """
      Reads an RGB image (JPEG or PNG) and class probabilities as a NumPy .npy array of shape \
      [classes, height, width] (float32, float64 or uint8), runs mean-field inference with a \
      Gaussian and a bilateral Potts kernel on permutohedral lattices (Kraehenbuehl and Koltun \
      2011), and writes the most probable class of every pixel as a palette PNG (index = class).
      """)

  @Option(help: "The image (JPEG or PNG); gray images are expanded to RGB.")
  var image: String

  @Option(help: "Class probabilities, .npy of shape [classes, height, width].")
  var probs: String

  @Option(help: "Output label map, palette PNG.")
  var out: String

  @OptionGroup var crf: CRFOptions
  @OptionGroup var threads: CRFThreadOptions

  func validate() throws {
    guard out.lowercased().hasSuffix(".png") else {
      throw ValidationError("--out must name a .png file (a palette PNG of class indices), got \(out).")
    }
  }

  func run() throws {
    let picture = try Image(contentsOf: URL(fileURLWithPath: image), colorMode: .rgb)
    let tensor = try NumPyArray.read(contentsOf: URL(fileURLWithPath: probs))
    let (labels, probabilities) = try CRFInput.probabilities(shape: tensor.shape, values: tensor.values, file: probs,
                                                             width: picture.width, height: picture.height)
    guard labels <= 256 else {
      throw AEPSLError(kind: .unsupported, file: probs, problem: "has \(labels) classes; a palette PNG holds at most 256",
                       fix: "Give at most 256 classes.")
    }
    let start = DispatchTime.now()
    let map = try DenseCRF.segment(image: picture.pixels, width: picture.width, height: picture.height,
                                   probabilities: probabilities, labels: labels, parameters: crf.parameters,
                                   threads: threads.threads)
    let ms = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
    let labelMap = LabelMap(width: picture.width, height: picture.height, labels: map.map { UInt8($0) })
    try labelMap.write(to: URL(fileURLWithPath: out))
    print(String(format: "wrote %@ (%dx%d, %d classes, %d iterations, %.0f ms)", out, picture.width,
                 picture.height, labels, crf.iterations, ms))
  }
}
