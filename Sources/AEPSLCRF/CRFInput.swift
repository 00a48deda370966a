import AEPSLFiles

/// Class probabilities read from a file, checked before the CRF sees them.
public enum CRFInput {
  /// Checks a [classes, height, width] (or [1, classes, height, width]) array read from
  /// `file` against an image of `width` x `height`; returns the number of classes and the
  /// values, or throws an error naming the file and what to do.
  public static func probabilities(shape: [Int], values: [Float], file: String, width: Int,
                                   height: Int) throws -> (labels: Int, values: [Float]) {
    guard shape.count == 3 || (shape.count == 4 && shape[0] == 1) else {
      throw AEPSLError(file: file, problem: "has shape \(shape); expected [classes, height, width]",
                       fix: "Save it with np.save(f, probs.astype(np.float32)).")
    }
    let dims = Array(shape.suffix(3))
    guard dims[1] == height && dims[2] == width else {
      throw AEPSLError(file: file, problem: "has shape \(shape) but the image is \(width)x\(height); expected [classes, \(height), \(width)]",
                       fix: "Resize the probabilities to the image first.")
    }
    guard dims[0] >= 1 else {
      throw AEPSLError(file: file, problem: "has no classes (shape \(shape))", fix: "Save an array of [classes, height, width] probabilities.")
    }
    guard values.allSatisfy(\.isFinite) else {
      throw AEPSLError(file: file, problem: "holds NaN or infinite values",
                       fix: "Probabilities must be finite numbers in [0, 1].")
    }
    return (dims[0], values)
  }
}
