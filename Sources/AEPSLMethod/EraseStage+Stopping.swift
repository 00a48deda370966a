import Foundation

extension EraseStage {
  /// Why erasing stops after step `t` (its classifier did not converge), or nil to merge it.
  ///
  /// The paper's rule compares the step's final loss with step 1's (`stopRatio`); it cannot
  /// judge when step 1 itself learned little, or learned so well that every later step
  /// exceeds the ratio. With `stopChanceFraction`, the reference is instead the loss of a
  /// classifier that ignores the images (`RunDiagnostics.constantPredictorLoss` of the
  /// training labels): a step that ends above that share of it found no evidence left.
  static func stoppingReason(_ config: EraseConfiguration, finalLosses: [Float], labels: [[Int]], classes: Int) -> String? {
    guard let fraction = config.stopChanceFraction else { return StoppingRule(ratio: config.stopRatio).failure(finalLosses: finalLosses) }
    guard finalLosses.count > 1, let finalLoss = finalLosses.last else { return nil }
    let constant = RunDiagnostics.constantPredictorLoss(
      labelFrequencies: RunDiagnostics.labelFrequencies(labels: labels, classes: classes), loss: config.loss)
    guard !(finalLoss.isFinite && Double(finalLoss) <= Double(fraction) * constant) else { return nil }
    return String(format: "step %d did not converge: final loss %.4f > %.2f x %.4f, the loss of answering each class's "
                    + "frequency; merged steps 1-%d", finalLosses.count, finalLoss, fraction, constant, finalLosses.count - 1)
  }
}
