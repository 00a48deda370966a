import AEPSLCRF
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import ArgumentParser
import Foundation

/// The dense CRF's parameters as command-line options, DeepLab's defaults (DESIGN.md 1.4).
struct CRFOptions: ParsableArguments {
  @Option(name: .customLong("crf-iterations"), help: "Mean-field iterations.")
  var iterations: Int = CRFParameters().iterations

  @Option(help: "Standard deviation of the Gaussian (smoothness) kernel, in pixels.")
  var gaussianSxy: Float = CRFParameters().gaussianSXY

  @Option(help: "Potts weight of the Gaussian kernel (0 leaves the kernel out).")
  var gaussianWeight: Float = CRFParameters().gaussianWeight

  @Option(help: "Spatial standard deviation of the bilateral (appearance) kernel, in pixels.")
  var bilateralSxy: Float = CRFParameters().bilateralSXY

  @Option(help: "Colour standard deviation of the bilateral kernel, in RGB levels.")
  var bilateralSrgb: Float = CRFParameters().bilateralSRGB

  @Option(help: "Potts weight of the bilateral kernel (0 leaves the kernel out).")
  var bilateralWeight: Float = CRFParameters().bilateralWeight

  @Option(help: "Probabilities are clamped to at least this before the unary -ln p.")
  var probabilityFloor: Float = CRFParameters().probabilityFloor

  @Option(help: "Gaussian kernel filter: lattice (permutohedral, as densecrf) or separable (exact blur).")
  var gaussianFilter: SpatialFilter = CRFParameters().gaussianFilter

  @Option(help: "Half-width of the separable blur, in standard deviations.")
  var truncation: Float = CRFParameters().truncation

  @Option(help: "Kernel normalisation: symmetric, before, after or none (densecrf's).")
  var normalization: KernelNormalization = CRFParameters().normalization

  @Option(name: .customLong("crf-scale-with-image"), help: """
    on: the sxy values are for an image whose longer side is --crf-reference-side and are scaled \
    to each image (sxy x longer side / reference side); off: they are pixels. Default: on for \
    the PSL+ masks (train-seg), off at test time (predict) and in crf.
    """)
  var scaleWithImage: Switch?

  @Option(name: .customLong("crf-reference-side"), help: "The longer image side, in pixels, the sxy values are given for with --crf-scale-with-image on (PASCAL VOC's 500, on which DeepLab chose them).")
  var referenceSide: Float = CRFParameters().referenceSide

  /// The parameters, with `base`'s scaling unless --crf-scale-with-image is given.
  func parameters(base: CRFParameters) -> CRFParameters {
    var p = parameters
    p.scaleWithImage = scaleWithImage?.isOn ?? base.scaleWithImage
    return p
  }

  var parameters: CRFParameters {
    var p = CRFParameters()
    p.iterations = iterations
    p.gaussianSXY = gaussianSxy
    p.gaussianWeight = gaussianWeight
    p.bilateralSXY = bilateralSxy
    p.bilateralSRGB = bilateralSrgb
    p.bilateralWeight = bilateralWeight
    p.probabilityFloor = probabilityFloor
    p.gaussianFilter = gaussianFilter
    p.truncation = truncation
    p.normalization = normalization
    p.scaleWithImage = scaleWithImage?.isOn ?? CRFParameters().scaleWithImage
    p.referenceSide = referenceSide
    return p
  }

  func validate() throws {
    do { try parameters.validate() } catch let error as CRFError { throw ValidationError(error.description) }
  }
}

extension SpatialFilter: ExpressibleByArgument {}
extension KernelNormalization: ExpressibleByArgument {}

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

  @Option(help: "Threads for the CRF. Default: all cores.")
  var threads: Int = ProcessInfo.processInfo.activeProcessorCount

  func validate() throws {
    guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads).") }
    guard out.lowercased().hasSuffix(".png") else {
      throw ValidationError("--out must name a .png file (a palette PNG of class indices), got \(out).")
    }
  }

  func run() throws {
    let picture = try Image(contentsOf: URL(fileURLWithPath: image), colorMode: .rgb)
    let tensor = try NumPyArray.read(contentsOf: URL(fileURLWithPath: probs))
    let (labels, probabilities) = try CRFInput.probabilities(tensor, file: probs, width: picture.width,
                                                             height: picture.height)
    guard labels <= 256 else {
      throw AEPSLError(kind: .unsupported, file: probs, problem: "has \(labels) classes; a palette PNG holds at most 256",
                       fix: "Give at most 256 classes.")
    }
    let start = DispatchTime.now()
    let map = try DenseCRF.segment(image: picture.pixels, width: picture.width, height: picture.height,
                                   probabilities: probabilities, labels: labels, parameters: crf.parameters,
                                   threads: threads)
    let ms = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
    let labelMap = LabelMap(width: picture.width, height: picture.height, labels: map.map { UInt8($0) })
    try labelMap.write(to: URL(fileURLWithPath: out))
    print(String(format: "wrote %@ (%dx%d, %d classes, %d iterations, %.0f ms)", out, picture.width,
                 picture.height, labels, crf.iterations, ms))
  }
}

enum CRFInput {
  /// Checks a [classes, height, width] array against the image; returns classes and values.
  static func probabilities(_ tensor: Tensor, file: String, width: Int, height: Int) throws -> (Int, [Float]) {
    let shape = tensor.shape
    guard shape.count == 3 || (shape.count == 4 && shape[0] == 1) else {
      throw AEPSLError(file: file, problem: "has shape \(shape); expected [classes, height, width]",
                       fix: "Save it with np.save(f, probs.astype(np.float32)).")
    }
    let dims = Array(shape.suffix(3))
    guard dims[1] == height && dims[2] == width else {
      throw AEPSLError(file: file, problem: "has shape \(shape) but the image is \(width)x\(height); expected [classes, \(height), \(width)]",
                       fix: "Resize the probabilities to the image first.")
    }
    guard dims[0] >= 1 else {
      throw AEPSLError(file: file, problem: "has no classes (shape \(shape))", fix: "Save an array of [classes, height, width] probabilities.")
    }
    let values = tensor.values
    guard values.allSatisfy(\.isFinite) else {
      throw AEPSLError(file: file, problem: "holds NaN or infinite values",
                       fix: "Probabilities must be finite numbers in [0, 1].")
    }
    return (dims[0], values)
  }
}
