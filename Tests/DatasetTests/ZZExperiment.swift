import AEPSLEngine
import AEPSLImaging
import Foundation
import Testing
@testable import AEPSLData

@Suite("Experiment") struct Experiment {
  @Test func erasing() throws {
    guard ProcessInfo.processInfo.environment["AEPSL_EXPERIMENT"] != nil else { return }
    ComputeThreads.set(2)
    let synth = SyntheticDataset(configuration: .init(seed: 0))
    let scenes = (0..<synth.count).map(synth.scene)
    let mean = PixelNormalization.imageNet.meanPixel
    func erase(_ scene: SyntheticDataset.Scene, mode: Int) -> Image {
      guard mode > 0 else { return scene.image }
      let s = scene.mask.width
      var region = mode == 1 ? scene.partMask : scene.mask.labels.map { $0 != 0 }
      for _ in 0..<2 {
        var grown = region
        for y in 0..<s { for x in 0..<s where region[y*s+x] {
          for (dx,dy) in [(1,0),(-1,0),(0,1),(0,-1)] { let xx=x+dx, yy=y+dy; if xx>=0&&yy>=0&&xx<s&&yy<s { grown[yy*s+xx]=true } } } }
        region = grown
      }
      var px = scene.image.pixels
      for i in 0..<(s*s) where region[i] { px[3*i]=mean[0]; px[3*i+1]=mean[1]; px[3*i+2]=mean[2] }
      return Image(width: s, height: s, channels: 3, pixels: px)
    }
    let epochs = Int(ProcessInfo.processInfo.environment["EPOCHS"] ?? "6")!
    let bce = ProcessInfo.processInfo.environment["BCE"] != nil
    let lr = Float(ProcessInfo.processInfo.environment["LR"] ?? "0.05")!
    for mode in (ProcessInfo.processInfo.environment["MODES"] ?? "0,1,2").split(separator: ",").map({ Int($0)! }) {
      let train = Array(scenes.prefix(800)), val = Array(scenes.suffix(200))
      func source(_ list: [SyntheticDataset.Scene]) -> SampleSource {
        let images = list.map { erase($0, mode: mode) }
        let ids = list.map(\.id), labels = list.map { $0.annotation.labels }
        return SampleSource(ids: ids, labels: labels) { i in
          Sample(id: ids[i], image: images[i], labels: labels[i])
        }
      }
      let loader = BatchLoader(source: source(train), classes: 6, options: .init(batchSize: 32, augmentation: .deepLab(crop: 128, scales: 0.8...1.2), shuffle: true, dropLast: true, seed: 1))
      let model = Classifier(spec: .tiny, classes: 6, seed: 1)
      let sgd = SGD(parameters: model.parameters, learningRate: lr, momentum: 0.9, weightDecay: 1e-4)
      let start = Date()
      var last = 0.0
      for epoch in 0..<epochs {
        let b = loader.epoch(epoch); var total = 0.0, n = 0
        while let batch = try b.next() {
          let logits = model.forward(batch.images, training: true)
          let loss = bce ? Loss.binaryCrossEntropy(logits: logits, targets: batch.targets) : Loss.sigmoidSquaredError(logits: logits, targets: batch.targets)
          model.backward(loss.gradient); sgd.step(); total += Double(loss.value); n += 1
        }
        last = total / Double(n)
        print("mode \(mode) epoch \(epoch) loss \(String(format: "%.4f", last)) \(String(format: "%.0f", Date().timeIntervalSince(start)))s")
      }
      let vl = BatchLoader(source: source(val), classes: 6, options: .init(batchSize: 50))
      let vb = vl.epoch(0); var correct = 0, count = 0, vloss = 0.0, nb = 0
      while let batch = try vb.next() {
        let logits = model.forward(batch.images, training: false)
        vloss += Double(Loss.sigmoidSquaredError(logits: logits, targets: batch.targets).value); nb += 1
        for i in 0..<batch.count { for c in 0..<6 { count += 1; if (logits[i, c] > 0) == (batch.targets[i, c] > 0.5) { correct += 1 } } }
      }
      print("mode \(mode) train loss \(last) val loss \(vloss / Double(nb)) val label accuracy \(Double(correct)/Double(count))")
    }
  }
}
