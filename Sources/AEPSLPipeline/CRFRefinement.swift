import AEPSLCRF
import AEPSLImaging
import AEPSLMethod

extension Refinement {
  /// The dense CRF of DESIGN.md 1.4 (DeepLab's parameters unless told otherwise) as the
  /// refinement of segmenter probabilities, for `aepsl run`, `train-seg` and `predict` alike:
  /// one description, so a run directory made by either is recognised by the other.
  public static func denseCRF(_ p: CRFParameters = CRFParameters(), threads: Int = crfDefaultThreads) -> Refinement {
    let description = String(format: "dense CRF: %d iterations, gaussian sxy %g weight %g, bilateral sxy %g srgb %g weight %g",
                             p.iterations, p.gaussianSXY, p.gaussianWeight, p.bilateralSXY, p.bilateralSRGB, p.bilateralWeight)
    return Refinement(refine: { image, probabilities, labels in
      let rgb = image.converted(toChannels: 3)
      let map = try DenseCRF.segment(image: rgb.pixels, width: rgb.width, height: rgb.height,
                                     probabilities: probabilities, labels: labels, parameters: p, threads: threads)
      return map.map { UInt8(clamping: $0) }
    }, description: description)
  }
}
