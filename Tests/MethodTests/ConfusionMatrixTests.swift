import AEPSLMethod
import Testing

@Suite("Confusion matrix and mIoU")
struct ConfusionMatrixTests {
  /// 3 classes; by hand:
  ///   truth     0 0 1 1 1 2 255 2
  ///   predicted 0 1 1 1 0 2   1 255
  /// counts: (0,0)=1 (0,1)=1 (1,1)=2 (1,0)=1 (2,2)=1; truth 2 has one unlabelled prediction.
  static func example() -> ConfusionMatrix {
    var m = ConfusionMatrix(classes: 3)
    m.add(truth: [0, 0, 1, 1, 1, 2, 255, 2], predicted: [0, 1, 1, 1, 0, 2, 1, 255])
    return m
  }

  @Test func countsMatchTheHandComputedMatrix() {
    let m = Self.example()
    #expect(m.counts == [1, 1, 0,
                         1, 2, 0,
                         0, 0, 1])
    #expect(m.unlabelled == [0, 0, 1])
  }

  @Test func iouPerClassAndMean() {
    let m = Self.example()
    // class 0: tp 1, truth 2, predicted 2 -> 1 / 3
    // class 1: tp 2, truth 3, predicted 3 -> 2 / 4
    // class 2: tp 1, truth 2 (one left unlabelled), predicted 1 -> 1 / 2
    let iou = m.intersectionOverUnion()
    #expect(iou[0]! == 1.0 / 3)
    #expect(iou[1]! == 0.5)
    #expect(iou[2]! == 0.5)
    #expect(abs(m.meanIoU() - (1.0 / 3 + 0.5 + 0.5) / 3) < 1e-12)
    #expect(m.pixelAccuracy() == 4.0 / 7)
  }

  @Test func absentClassesDoNotCountInTheMean() {
    var m = ConfusionMatrix(classes: 4)
    m.add(truth: [0, 0, 1, 1], predicted: [0, 0, 1, 1])
    #expect(m.intersectionOverUnion()[2] == nil)
    #expect(m.intersectionOverUnion()[3] == nil)
    #expect(m.meanIoU() == 1)
  }

  @Test func precisionAndCoverageOfAPseudoMask() {
    let m = Self.example()
    // labelled by the mask: 6 pixels, 4 right; labelled in truth: 7 pixels, 6 labelled by the mask.
    #expect(m.precision() == 4.0 / 6)
    #expect(m.coverage() == 6.0 / 7)
  }

  @Test func mergeAddsCounts() {
    var a = Self.example()
    a.merge(Self.example())
    #expect(a.counts == Self.example().counts.map { $0 * 2 })
    #expect(a.unlabelled == [0, 0, 2])
  }
}

@Suite("Erasing rules and pseudo masks")
struct ErasingTests {
  @Test func maxRatioKeepsPixelsNearThePeak() {
    let cam: [Float] = [0, 0.5, 0.79, 0.8, 0.9, 1.0]
    #expect(ErasingRule.maxRatio.region(cam: cam, delta: 0.2) == [false, false, false, true, true, true])
  }

  @Test func maxRatioIsRelativeToTheMaximum() {
    let cam: [Float] = [0.1, 0.4, 0.5]
    #expect(ErasingRule.maxRatio.region(cam: cam, delta: 0.2) == [false, true, true])
  }

  @Test func topFractionKeepsTheRequestedShare() {
    let cam: [Float] = (0..<10).map { Float($0) / 10 }
    let r = ErasingRule.topFraction.region(cam: cam, delta: 0.3)
    #expect(r.filter { $0 }.count == 3)
    #expect(r[7] && r[8] && r[9])
  }

  @Test(arguments: ErasingRule.allCases)
  func zeroCAMErasesNothing(rule: ErasingRule) {
    #expect(rule.region(cam: [0, 0, 0], delta: 0.5) == [false, false, false])
  }

  @Test func conflictsGoToTheStrongerCAMAndRegionsBeatBackground() {
    var mined = MinedRegions(width: 4, height: 1)
    mined.regions[1] = [true, true, false, false]
    mined.regions[3] = [false, true, true, false]
    mined.strength[1] = [0.9, 0.4, 0, 0]
    mined.strength[3] = [0, 0.7, 0.8, 0]
    let mask = PseudoMask.build(mined, isBackground: [true, true, true, false])
    #expect(mask == [1, 3, 3, 255])
  }

  @Test func anObjectLabelNeedsTheObjectCue() {
    var mined = MinedRegions(width: 4, height: 1)
    mined.regions[2] = [true, true, true, false]
    mined.strength[2] = [0.9, 0.8, 0.7, 0]
    // The region's edge pixels fail the object cue: one is background, one is left unlabelled.
    let mask = PseudoMask.build(mined, isBackground: [true, false, false, true], mayBeObject: [false, true, false, false])
    #expect(mask == [0, 2, 255, 0])
    #expect(PseudoMask.build(mined, isBackground: [true, false, false, true]) == [2, 2, 2, 0])
  }

  @Test func aSalientRegionTakesTheClassOfItsObjectLabels() {
    // 5x2: salient columns 0-1 (class 1 labelled at one pixel) and 3-4 (classes 2 and 3);
    // column 2 is not salient and keeps its labels.
    let salient = [true, true, false, true, true,
                   true, true, false, true, true]
    let mask: [UInt8] = [1, 255, 255, 2, 255,
                         255, 0, 255, 255, 3]
    let strength: [Int: [Float]] = [2: [0, 0, 0, 0.9, 0.8, 0, 0, 0, 0.2, 0.1], 3: [0, 0, 0, 0.1, 0.2, 0, 0, 0, 0.7, 0.9]]
    #expect(PseudoMask.filled(mask, salient: salient, width: 5, strength: strength)
            == [1, 1, 255, 2, 2,
                1, 0, 255, 3, 3])
    // A salient region without object labels stays as it was.
    #expect(PseudoMask.filled([255, 0, 255], salient: [true, true, true], width: 3, strength: [:]) == [255, 0, 255])
  }

  @Test func backgroundCueFillsUncoveredPixels() {
    let mined = MinedRegions(width: 3, height: 1)
    #expect(PseudoMask.build(mined, isBackground: [true, false, true]) == [0, 255, 0])
  }
}
