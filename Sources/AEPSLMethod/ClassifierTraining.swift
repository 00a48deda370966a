import AEPSLEngine
import Foundation

/// The multi-label classification loss of the erasing classifiers (docs/METHOD.md 1.1).
public enum ClassificationLoss: String, Sendable, Codable, CaseIterable {
  /// Squared error between sigmoid scores and the labels: the paper's choice.
  case mse
  /// Binary cross-entropy with logits.
  case bce

  public func callAsFunction(logits: Tensor, targets: Tensor) -> LossResult {
    switch self {
    case .mse: return Loss.sigmoidSquaredError(logits: logits, targets: targets)
    case .bce: return Loss.binaryCrossEntropy(logits: logits, targets: targets)
    }
  }
}

/// A loss or gradient that is not a finite number: training stops and keeps the last good
/// checkpoint.
public struct NonFiniteLossError: Error, CustomStringConvertible {
  public let stage: String
  public let epoch: Int
  public let iteration: Int
  public let what: String
  /// The state file that still holds the last good epoch, when training keeps one.
  public var checkpoint: String? = nil
  public var description: String {
    "\(stage): the \(what) became \(what == "loss" ? "NaN or infinite" : "non-finite") at epoch \(epoch), iteration \(iteration). "
      + (checkpoint.map { "The last good state is kept in \($0). " } ?? "The last good checkpoint is kept. ")
      + "Lower the learning rate (--lr) or check the input images."
  }
}

/// True when every parameter gradient is finite.
public func gradientsAreFinite(_ parameters: [Parameter]) -> Bool {
  for p in parameters {
    let g = p.grad.data
    var bad = false
    for i in 0..<p.grad.count where !g[i].isFinite { bad = true; break }
    if bad { return false }
  }
  return true
}
