extension DenseCRF {
  /// The CRF DeepLab runs after its network (docs/METHOD.md section 1.4): U = -ln(max(p, floor))
  /// from `probabilities` [labels][height][width], a Gaussian and a bilateral Potts term on
  /// `image` (RGB bytes, [height][width][3]). A term whose weight is 0 is left out. With
  /// `parameters.scaleWithImage` the spatial deviations are scaled to this image first
  /// (`CRFParameters.forImage`).
  public convenience init(image: [UInt8], width: Int, height: Int, probabilities: [Float], labels: Int,
                          parameters given: CRFParameters = CRFParameters(), threads: Int = crfDefaultThreads,
                          vectorCode: CRFVectorCode = .best) throws {
    try given.validate()
    let parameters = given.forImage(width: width, height: height)
    try self.init(width: width, height: height, labels: labels, threads: threads, vectorCode: vectorCode)
    try setUnary(probabilities: probabilities, floor: parameters.probabilityFloor)
    if parameters.gaussianWeight > 0 {
      try addPairwiseGaussian(sxy: parameters.gaussianSXY, compatibility: .potts(weight: parameters.gaussianWeight),
                              normalization: parameters.normalization, filter: parameters.gaussianFilter,
                              truncation: parameters.truncation)
    }
    if parameters.bilateralWeight > 0 {
      try addPairwiseBilateral(sxy: parameters.bilateralSXY, srgb: parameters.bilateralSRGB, image: image,
                               compatibility: .potts(weight: parameters.bilateralWeight),
                               normalization: parameters.normalization)
    }
  }

  /// Runs the DeepLab CRF and returns the label of every pixel, [height][width].
  public static func segment(image: [UInt8], width: Int, height: Int, probabilities: [Float], labels: Int,
                             parameters: CRFParameters = CRFParameters(),
                             threads: Int = crfDefaultThreads) throws -> [Int32] {
    let crf = try DenseCRF(image: image, width: width, height: height, probabilities: probabilities,
                           labels: labels, parameters: parameters, threads: threads)
    return crf.labelMap(iterations: parameters.iterations)
  }
}
