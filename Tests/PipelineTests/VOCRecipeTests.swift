import AEPSLFiles
import AEPSLMethod
@testable import AEPSLPipeline
import Foundation
import Testing

/// configs/voc12.json, the paper's configuration for PASCAL VOC 2012 (docs/VOC.md), is read
/// by the same strict resolver as any --config file: a misspelt key would fail here.
@Suite("VOC 2012 recipe")
struct VOCRecipeTests {
  static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../configs/voc12.json").standardized

  @Test func recipeResolvesToThePapersSettings() throws {
    let c = try RunConfiguration.resolve(overrides: Data(contentsOf: Self.file), file: Self.file.path, net: nil, dataset: "/data/VOC2012")
    #expect(c.net == "largefov" && c.erase.net == "largefov" && c.segmentation.net == "largefov")
    #expect(c.erase.initWeights == "imagenet" && c.segmentation.initWeights == "imagenet")
    #expect(c.erase.split == "train_aug")
    #expect(c.erase.schedule.epochs == 5 && c.erase.schedule.minIterations == nil, "erasing steps of exactly 5 epochs")
    #expect(c.erase.loss == .mse && c.erase.delta == 0.2)
    #expect(c.erase.cropSize == 321 && c.segmentation.cropSize == 321)
    #expect(c.erase.batchSize == 10 && c.segmentation.batchSize == 10)
    #expect(c.erase.schedule.learningRate == 0.001 && c.segmentation.schedule.learningRate == 0.001)
    #expect(c.masks.backgroundThreshold == 0.06)
    #expect(c.predict.confidence == 0.1 && c.segmentation.confidenceThreshold == 0.1)
    #expect(c.predict.crf.iterations == 10 && c.predict.crf.bilateralSXY == 121 && c.predict.crf.bilateralSRGB == 5 && c.predict.crf.bilateralWeight == 4)
    #expect(c.predict.crf.gaussianSXY == 3 && c.predict.crf.gaussianWeight == 3)
    #expect(c.segmentation.psl && c.segmentation.pslPlus)
  }

  @Test func aMisspeltKeyInTheRecipeIsAnError() throws {
    var text = try String(contentsOf: Self.file, encoding: .utf8)
    text = text.replacingOccurrences(of: "\"backgroundThreshold\"", with: "\"backgroundTreshold\"")
    #expect(throws: AEPSLError.self) {
      try RunConfiguration.resolve(overrides: Data(text.utf8), file: "voc12.json", net: nil, dataset: nil)
    }
  }
}
