@testable import AEPSLData
import AEPSLEngine
import AEPSLImaging
import Foundation
import Testing
@testable import AEPSLMethod

/// The online mask, the PSL loss, the inference weighting and the score grid, on
/// hand-made tensors whose answers are computed here by hand.
@Suite("Prohibitive segmentation learning")
struct PSLTests {
  // MARK: Online mask

  /// One pixel, three classes: class 1 (label 2) has by far the highest score but the image
  /// carries only class 0, so class 1 must never win.
  @Test func aClassNotInTheImageNeverWins() {
    let scores: [Float] = [0, 1, 9, 0]  // background, class 0, class 1, class 2
    let mask = OnlineMask.labels(scores: scores, classes: 3, pixels: 1, confidences: [1, 1, 1], imageLabels: [0])
    #expect(mask == [1])
    // Without class 0 among the labels only background is left.
    #expect(OnlineMask.labels(scores: scores, classes: 3, pixels: 1, confidences: [1, 1, 1], imageLabels: [2]) == [0])
  }

  /// f_0 = 0 and f_1 = ln 2: p_1 = 2 p_0, so the class wins exactly when v_1 * 2 > 1. The
  /// switch at v = 0.5 shows background is unweighted (p'_0 = p_0) and the class is
  /// weighted by v.
  @Test func confidenceWeightingFlipsAPixelAndBackgroundIsUnweighted() {
    let scores: [Float] = [0, logf(2)]
    func label(_ v: Float) -> UInt8 {
      OnlineMask.labels(scores: scores, classes: 1, pixels: 1, confidences: [v], imageLabels: [0])[0]
    }
    #expect(label(1) == 1)
    #expect(label(0.51) == 1)
    #expect(label(0.49) == 0)
    #expect(label(0.05) == 0)
  }

  /// Two labelled classes, the higher score loses to the higher confidence-weighted
  /// probability.
  @Test func theWeightedProbabilityDecidesBetweenClasses() {
    // p_1 / p_2 = e^1: with v = (0.2, 0.9), p'_1 = 0.2 e p_2 = 0.54 p_2 < 0.9 p_2.
    let scores: [Float] = [-5, 1, 0]
    #expect(OnlineMask.labels(scores: scores, classes: 2, pixels: 1, confidences: [0.2, 0.9], imageLabels: [0, 1]) == [2])
    #expect(OnlineMask.labels(scores: scores, classes: 2, pixels: 1, confidences: [0.9, 0.9], imageLabels: [0, 1]) == [1])
  }

  /// The batch form reads [N, C+1, h, w], uses each image's own labels and confidences,
  /// and puts 255 on padding cells.
  @Test func batchOnlineMaskUsesEachImagesLabelsAndIgnoresPadding() {
    // 2 images, 2 classes, 1x2 cells; class 1 scores highest everywhere.
    let values: [Float] = [0, 0, 1, 1, 3, 3,  0, 0, 1, 1, 3, 3]
    let scores = Tensor(shape: [2, 3, 1, 2], values: values)
    let confidences = Tensor(shape: [2, 2], values: [1, 1, 1, 1])
    let mask = OnlineMask.labels(scores: scores, confidences: confidences, imageLabels: [[0], [0, 1]],
                                 valid: [true, false, true, true])
    #expect(mask == [1, 255, 2, 2])
  }

  // MARK: The PSL loss

  /// Everything by hand: 1 image, 2 classes, 3 cells, image label class 0.
  @Test func pslLossMatchesAHandComputation() {
    let f: [[Double]] = [[0.5, 0.0, 2.0], [1.5, 1.0, -1.0], [2.5, 0.1, 0.0]]  // [label][cell]
    let z: [Double] = [0.3, -0.4]
    let scores = Tensor(shape: [1, 3, 1, 3], values: f.flatMap { $0 }.map(Float.init))
    let logits = Tensor(shape: [1, 2], values: z.map(Float.init))
    let targets = Tensor(shape: [1, 2], values: [1, 0])
    let pseudo: [UInt8] = [1, 255, 0]

    func softmax(_ q: Int) -> [Double] {
      let e = (0..<3).map { exp(f[$0][q]) }
      return e.map { $0 / e.reduce(0, +) }
    }
    let sigma = z.map { 1 / (1 + exp(-$0)) }
    // S': candidates background and class 0 (label 1); label 2 has the top score at cell 0
    // but is not in the image.
    let online: [Int] = (0..<3).map { q in
      let p = softmax(q)
      return sigma[0] * p[1] > p[0] ? 1 : 0
    }
    #expect(online == [1, 1, 0])
    let ceS = -(log(softmax(0)[1]) + log(softmax(2)[0])) / 2
    let ceOnline = -(0..<3).map { log(softmax($0)[online[$0]]) }.reduce(0, +) / 3
    let cls = ((sigma[0] - 1) * (sigma[0] - 1) + sigma[1] * sigma[1]) / 2

    let result = SegmentationLoss(prohibitive: true, classification: .mse)(
      scores: scores, logits: logits, targets: targets, mask: pseudo, imageLabels: [[0]])
    #expect(result.onlineMask == [1, 1, 0])
    #expect(abs(Double(result.terms.segmentation) - ceS) < 1e-5)
    #expect(abs(Double(result.terms.online) - ceOnline) < 1e-5)
    #expect(abs(Double(result.terms.classification) - cls) < 1e-5)
    #expect(abs(Double(result.terms.total) - (ceS + ceOnline + cls)) < 1e-5)

    // dL/df = (p - onehot(S)) / 2 on S's two valid cells + (p - onehot(S')) / 3 on all three.
    let g = result.dScores.values
    for q in 0..<3 {
      let p = softmax(q)
      for k in 0..<3 {
        var expected = (p[k] - (k == online[q] ? 1 : 0)) / 3
        if pseudo[q] != 255 { expected += (p[k] - (Int(pseudo[q]) == k ? 1 : 0)) / 2 }
        #expect(abs(Double(g[k * 3 + q]) - expected) < 1e-5, "dScores[\(k), \(q)]")
      }
    }
    // Caffe's Euclidean loss on sigmoid scores: d/dz = (s - y) s (1 - s), over N = 1.
    let dz = result.dLogits.values
    #expect(abs(Double(dz[0]) - (sigma[0] - 1) * sigma[0] * (1 - sigma[0])) < 1e-6)
    #expect(abs(Double(dz[1]) - sigma[1] * sigma[1] * (1 - sigma[1])) < 1e-6)
  }

  /// --psl off: CE(f, S) alone, no gradient into the classification branch; 255 ignored.
  @Test func deepLabLossIsTheMaskCrossEntropyAlone() {
    let scores = Tensor(shape: [1, 2, 1, 2], values: [0, 1, 1, 0])
    let logits = Tensor(shape: [1, 1], values: [3])
    let result = SegmentationLoss(prohibitive: false)(scores: scores, logits: logits, targets: Tensor(shape: [1, 1], values: [1]),
                                                      mask: [1, 255], imageLabels: [[0]])
    #expect(result.onlineMask == nil)
    #expect(result.terms.classification == 0 && result.terms.online == 0)
    #expect(abs(Double(result.terms.segmentation) - log(1 + exp(-1.0))) < 1e-6)
    #expect(result.dLogits.values == [0])
    // The ignored cell gets no gradient.
    #expect(result.dScores[0, 0, 0, 1] == 0 && result.dScores[0, 1, 0, 1] == 0)
  }

  /// Padding cells are left out of the online term too: with every cell but one padding,
  /// CE(f, S') is that one cell's.
  @Test func paddingIsIgnoredByTheOnlineTerm() {
    let scores = Tensor(shape: [1, 2, 1, 2], values: [0, 5, 1, -5])
    let result = SegmentationLoss(prohibitive: true)(scores: scores, logits: Tensor(shape: [1, 1], values: [5]),
                                                     targets: Tensor(shape: [1, 1], values: [1]), mask: [255, 255],
                                                     imageLabels: [[0]], valid: [true, false])
    #expect(result.onlineMask == [1, 255])
    #expect(result.terms.segmentation == 0)
    #expect(abs(Double(result.terms.online) - log(1 + exp(-1.0))) < 1e-6)
  }

  // MARK: Inference weighting

  @Test func confidencesBelowTheThresholdAreZeroedAndTheOthersKept() {
    #expect(ConfidenceWeighting.weights(confidences: [0.05, 0.1, 0.8], threshold: 0.1) == [1, 0, 0.1, 0.8])
  }

  /// One pixel, p = (0.3, 0.5, 0.2): v = (0.4, 0.9) gives 0.3 : 0.2 : 0.18, renormalised;
  /// class 0 (the argmax before) loses to background.
  @Test func weightingRenormalisesAndCanFlipTheArgmax() {
    var p: [Float] = [0.3, 0.5, 0.2]
    #expect(ConfidenceWeighting.argmax(p, labels: 3) == [1])
    ConfidenceWeighting.apply(&p, labels: 3, weights: ConfidenceWeighting.weights(confidences: [0.4, 0.9], threshold: 0.1))
    let sum: Float = 0.3 + 0.2 + 0.18
    #expect(abs(p[0] - 0.3 / sum) < 1e-6 && abs(p[1] - 0.2 / sum) < 1e-6 && abs(p[2] - 0.18 / sum) < 1e-6)
    #expect(ConfidenceWeighting.argmax(p, labels: 3) == [0])
    // A class under the threshold can win nowhere, however likely.
    var q: [Float] = [0.01, 0.99, 0.0]
    ConfidenceWeighting.apply(&q, labels: 3, weights: ConfidenceWeighting.weights(confidences: [0.09, 0.9], threshold: 0.1))
    #expect(abs(q[0] - 1) < 1e-6 && q[1] == 0 && q[2] == 0)
  }

  /// Inference on a whole image of an odd size returns a label per pixel and probabilities
  /// that sum to 1; with weighting off it is the plain argmax of p.
  @Test func fullImageInferenceHandlesAnySize() throws {
    let model = Segmenter(spec: .tiny, classes: 3, seed: 1)
    var pixels = [UInt8](repeating: 0, count: 37 * 50 * 3)
    for i in pixels.indices { pixels[i] = UInt8((i * 7) % 251) }
    let image = Image(width: 50, height: 37, channels: 3, pixels: pixels)
    let inference = SegmentationInference(model: model, threshold: 0.1, weighting: true)
    let out = inference.probabilities(image)
    #expect(out.labels == 4 && out.probabilities.count == 4 * 50 * 37 && out.confidences.count == 3)
    for q in stride(from: 0, to: 50 * 37, by: 97) {
      let s = (0..<4).reduce(Float(0)) { $0 + out.probabilities[$1 * 50 * 37 + q] }
      #expect(abs(s - 1) < 1e-4)
    }
    let map = try inference.labelMap(image, refiner: nil)
    #expect(map.width == 50 && map.height == 37 && map.labels.allSatisfy { $0 <= 3 })
    // A refiner receives the image and the probabilities and decides the labels.
    let refined = try inference.labelMap(image) { rgb, p, labels in
      #expect(rgb.width == 50 && labels == 4 && p.count == 4 * 50 * 37)
      return [UInt8](repeating: 2, count: rgb.width * rgb.height)
    }
    #expect(refined.labels.allSatisfy { $0 == 2 })
  }

  /// At a working resolution the network sees the image resized, and the probabilities
  /// come back at the image's own size, still summing to 1.
  @Test func inferenceAtAWorkingResolutionAnswersAtTheImagesSize() throws {
    let model = Segmenter(spec: .tiny, classes: 2, seed: 3)
    var pixels = [UInt8](repeating: 0, count: 90 * 120 * 3)
    for i in pixels.indices { pixels[i] = UInt8((i * 13) % 241) }
    let image = Image(width: 120, height: 90, channels: 3, pixels: pixels)
    let inference = SegmentationInference(model: model, threshold: 0.1, weighting: true, longerSide: 48)
    let out = inference.probabilities(image)
    #expect(out.probabilities.count == 3 * 120 * 90)
    for q in stride(from: 0, to: 120 * 90, by: 131) {
      let s = (0..<3).reduce(Float(0)) { $0 + out.probabilities[$1 * 120 * 90 + q] }
      #expect(abs(s - 1) < 1e-4)
    }
    // The same as running the resized image and resizing its probabilities back.
    let small = SegmentationInference(model: model, threshold: 0.1, weighting: true)
      .probabilities(image.resized(width: 48, height: 36))
    let back = resizeBilinear(small.probabilities, channels: 3, height: 36, width: 48, toHeight: 90, toWidth: 120, alignCorners: false)
    let same = zip(back, out.probabilities).allSatisfy { abs($0 - $1) < 1e-6 }
    #expect(same)
    let map = try inference.labelMap(image, refiner: nil)
    #expect(map.width == 120 && map.height == 90)
  }

  /// CAMs at a working resolution are those of the image scaled to it, at the image's size.
  @Test func camsAtAWorkingResolutionEqualThoseOfTheScaledImage() {
    let model = Classifier(spec: .tiny, classes: 3, seed: 2)
    let x = Tensor(shape: [1, 3, 64, 96])
    for i in 0..<x.count { x.data[i] = Float((i * 37) % 101) / 50 - 1 }
    let working = CAMExtractor(longerSide: 48).maps(classifier: model, image: x, classes: [0, 2])
    let scaled = CAMExtractor(scales: [0.5]).maps(classifier: model, image: x, classes: [0, 2])
    #expect(working.count == 2 && working[0].count == 64 * 96)
    let same = working == scaled
    #expect(same)
  }

  // MARK: Geometry

  @Test func scoreGridsOfTheTwoNetworks() {
    let tiny = ScoreGrid(spec: .tiny), large = ScoreGrid(spec: .largeFOV)
    #expect(tiny == ScoreGrid(stride: 8, alignCorners: false))
    #expect(large == ScoreGrid(stride: 8, alignCorners: true))
    #expect(tiny.paddedSide(128) == 128 && tiny.paddedSide(100) == 104)
    #expect(large.paddedSide(321) == 321 && large.paddedSide(300) == 305 && large.paddedSide(322) == 329)
    // DeepLab: 321 -> 41 cells, cell i on pixel 8i. Tiny: 128 -> 16, cell i covers 8i..8i+7.
    #expect((0..<41).map { large.sourcePixel(cell: $0, cells: 41, pixels: 321) } == (0..<41).map { 8 * $0 })
    #expect((0..<16).map { tiny.sourcePixel(cell: $0, cells: 16, pixels: 128) } == (0..<16).map { 8 * $0 + 4 })
  }

  /// The padded sizes really give the cell counts the grid assumes.
  @Test func paddedSidesFitTheNetworks() {
    let tiny = Segmenter(spec: .tiny, classes: 2, seed: 0)
    let (s, _) = tiny.forward(Tensor(shape: [1, 3, 104, 48]), training: false)
    #expect(s.shape == [1, 3, 13, 6])
    let large = Segmenter(spec: .largeFOV, classes: 2, seed: 0)
    let (l, _) = large.forward(Tensor(shape: [1, 3, 33, 41]), training: false)
    #expect(l.shape == [1, 3, 5, 6])
  }

  @Test func labelsAreDownsampledByPickingNeverBlending() {
    // A 4x4 map of 16 distinct labels sampled to 2x2 on the half-pixel grid of stride 2.
    let grid = ScoreGrid(stride: 2, alignCorners: false)
    let labels = (0..<16).map(UInt8.init)
    #expect(grid.downsample(labels, count: 1, height: 4, width: 4, toHeight: 2, toWidth: 2) == [5, 7, 13, 15])
  }

  @Test func placementMaskMarksPaddingAndFollowsTheFlip() {
    // A 3-pixel-wide scaled image in a 4x2 crop, mirrored: the padding column ends up on the left.
    let p = Augmentation.Placement(scaledWidth: 3, scaledHeight: 1, width: 4, height: 2, top: 0, left: 0, flipped: true)
    #expect(p.imageMask == [false, true, true, true, false, false, false, false])
  }

  @Test func plusMasksKeepOnlyTheImagesLabels() {
    let map = LabelMap(width: 5, height: 1, labels: [0, 1, 2, 3, 255])
    let (kept, changed) = SegmentationStage.restrict(map, to: [0, 2])  // labels 1 and 3
    #expect(kept.labels == [0, 1, 255, 3, 255])
    #expect(changed == 1)
  }

  @Test func plusMasksIgnoreWhereTheCRFChangedTheNetworksLabel() {
    let refined: [UInt8] = [0, 1, 2, 0, 3, 255]
    let argmax: [UInt8] = [0, 2, 2, 1, 3, 0]
    let (kept, changed) = SegmentationStage.ignoreChanged(refined, from: argmax)
    #expect(kept == [0, 255, 2, 255, 3, 255])
    #expect(changed == 3)
    // Where they agree everywhere nothing changes.
    let same = SegmentationStage.ignoreChanged(argmax, from: argmax)
    #expect(same.0 == argmax && same.1 == 0)
  }
}
