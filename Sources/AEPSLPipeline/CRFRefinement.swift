import AEPSLCRF
import AEPSLImaging
import AEPSLMethod

extension Refinement {
  /// The dense CRF of DESIGN.md 1.4 (DeepLab's parameters unless told otherwise) as the
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
  /// masks (DESIGN.md 1.3): DeepLab's parameters with the spatial deviations scaled to each
  /// image as for VOC's 500 px (`scaleWithImage`). On VOC-sized images that is DeepLab's CRF
  /// itself; on smaller ones a bilateral sxy of 80 px spans the whole image and pulls labels
  /// along colours across it (in the masks inspected, it cut off more of each object).
  /// Measured with `tiny` on the 128 px synthetic set, PSL+ from round 1's network, val
  /// mIoU with the test-time CRF (DeepLab's, unscaled), seeds 0 / 1 / 2: PSL 74.3 / 75.5 /
  /// 74.1; PSL+ on masks from the unscaled CRF 74.3 / 74.2 / 74.2; on masks from this one
  /// 77.6 / 77.8 / 79.7. On another set of AE masks (steps 1-3, seed 0): 73.5, 71.4, 75.8
  /// (RESULTS.md, "Prohibitive segmentation learning").
  public static var plusMasks: CRFParameters {
    var p = CRFParameters()
    p.scaleWithImage = true
    return p
  }
}
