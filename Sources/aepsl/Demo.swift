import AEPSLEngine
import ArgumentParser
import Foundation

/// Until the pipeline exists: trains the `tiny` classifier on generated scenes and prints its
/// falling loss.
struct Demo: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train the tiny network on generated scenes and print the falling loss.")

  @OptionGroup var compute: ComputeOptions

  @Option(help: "Training iterations.")
  var iterations: Int = 60

  @Option(help: "Images per batch.")
  var batchSize: Int = 16

  @Option(help: "Image side in pixels.")
  var size: Int = 64

  @Option(help: "Network: \(BackboneSpec.names.joined(separator: ", ")).")
  var net: String = "tiny"

  func validate() throws {
    guard BackboneSpec.named(net) != nil else {
      throw ValidationError("Unknown network '\(net)'; choose one of \(BackboneSpec.names.joined(separator: ", ")).")
    }
  }

  func run() throws {
    compute.apply()
    let classes = 4
    let model = Classifier(spec: BackboneSpec.named(net)!, classes: classes, seed: compute.seed)
    let sgd = SGD(parameters: model.parameters, learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4)
    var rng = SeededGenerator(seed: compute.seed).split("demo data")
    let start = Date()
    for it in 1...iterations {
      let (x, y) = ShapesScene.batch(count: batchSize, size: size, classes: classes, rng: &rng)
      let logits = model.forward(x, training: true)
      let loss = Loss.sigmoidSquaredError(logits: logits, targets: y)
      model.backward(loss.gradient)
      sgd.step()
      if it == 1 || it % 10 == 0 || it == iterations {
        let rate = Double(it * batchSize) / Date().timeIntervalSince(start)
        print(String(format: "iteration %4d/%d  loss %.4f  %.1f images/s", it, iterations, loss.value, rate))
      }
    }
  }
}

/// Scenes of coloured squares on noise: class c present means a square of colour c somewhere.
enum ShapesScene {
  static let colors: [(Float, Float, Float)] = [(1, -1, -1), (-1, 1, -1), (-1, -1, 1), (1, 1, -1)]

  static func batch(count: Int, size: Int, classes: Int, rng: inout SeededGenerator) -> (Tensor, Tensor) {
    let x = Tensor(shape: [count, 3, size, size])
    let y = Tensor(shape: [count, classes])
    let plane = size * size
    for n in 0..<count {
      for i in 0..<(3 * plane) { x.data[n * 3 * plane + i] = 0.3 * rng.nextNormal() }
      for c in 0..<classes where rng.nextUniform() < 0.5 {
        y[n, c] = 1
        let side = size / 4 + Int(rng.nextUniform() * Float(size / 4))
        let top = Int(rng.nextUniform() * Float(size - side)), left = Int(rng.nextUniform() * Float(size - side))
        let col = colors[c % colors.count]
        for r in top..<(top + side) {
          for q in left..<(left + side) {
            x[n, 0, r, q] = col.0; x[n, 1, r, q] = col.1; x[n, 2, r, q] = col.2
          }
        }
      }
    }
    return (x, y)
  }
}
