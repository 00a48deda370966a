import AEPSLCRF
import AEPSLImaging
import AEPSLMethod

extension Refinement {
  /// The dense CRF of DESIGN.md 1.4 (DeepLab's parameters unless told otherwise) as the
  /// refinement of segmenter probabilities: for `aepsl run`, PSL+ masks and predictions.
  public static func denseCRF(_ parameters: CRFParameters = CRFParameters()) -> Refinement {
    Refinement(refine: { image, probabilities, labels in
      let rgb = image.converted(toChannels: 3)
      let map = try DenseCRF.segment(image: rgb.pixels, width: rgb.width, height: rgb.height,
                                     probabilities: probabilities, labels: labels, parameters: parameters)
      return map.map { UInt8(clamping: $0) }
    }, description: "dense CRF, \(parameters.iterations) iterations")
  }
}
