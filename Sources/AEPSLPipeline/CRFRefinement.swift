import AEPSLCRF
import AEPSLImaging
import AEPSLMethod

extension Refinement {
  /// The dense CRF of docs/METHOD.md 1.4 (DeepLab's parameters unless told otherwise) as the
  /// refinement of segmenter probabilities, for `aepsl run`, `train-seg` and `predict` alike:
  /// one description, so a run directory made by either is recognised by the other.
  public static func denseCRF(_ p: CRFParameters = CRFParameters(), threads: Int = crfDefaultThreads) -> Refinement {
    var description = String(format: "dense CRF: %d iterations, gaussian sxy %g weight %g, bilateral sxy %g srgb %g weight %g",
                             p.iterations, p.gaussianSXY, p.gaussianWeight, p.bilateralSXY, p.bilateralSRGB, p.bilateralWeight)
    // Said only when on, so that runs made before the option existed are still recognised.
    if p.scaleWithImage { description += String(format: ", sxy scaled by the longer side / %g", p.referenceSide) }
    return Refinement(refine: { image, probabilities, labels in
      let rgb = image.converted(toChannels: 3)
      let map = try DenseCRF.segment(image: rgb.pixels, width: rgb.width, height: rgb.height,
                                     probabilities: probabilities, labels: labels, parameters: p, threads: threads)
      return map.map { UInt8(clamping: $0) }
    }, description: description, threads: threads)
  }
}

extension CRFParameters {
  /// The dense CRF that refines the first round's predictions of the training set into PSL+
  /// masks (docs/METHOD.md 1.3): DeepLab's parameters with the spatial deviations scaled to each
  /// image as for VOC's 500 px (`scaleWithImage`). On VOC-sized images that is DeepLab's CRF
  /// itself; on smaller ones a bilateral sxy of 80 px spans the whole image and pulls labels
  /// along colours across it, cutting off parts of each object, and PSL+ then learns those
  /// cuts. With the deviations scaled, PSL+ gains over PSL on every seed measured (RESULTS.md,
  /// "Prohibitive segmentation learning").
  public static var plusMasks: CRFParameters {
    var p = CRFParameters()
    p.scaleWithImage = true
    return p
  }
}
