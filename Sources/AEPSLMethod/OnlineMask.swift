import AEPSLEngine
import Foundation

/// The online mask of prohibitive segmentation learning (docs/METHOD.md 1.3), computed without
/// gradient from the segmenter's own outputs:
///
///     p = softmax(f) per pixel;  p'_0 = p_0,  p'_c = v_c p_c  (v = sigmoid of the
///     classification branch);  S'(u) = argmax over {0} ∪ labels(image) of p'(u)
///
/// A class the image does not carry can never win, however high its score ("prohibitive").
/// Ties go to the earlier candidate: background first, then classes in ascending order.
public enum OnlineMask {
  /// One image. `scores` holds `classes + 1` planes of `pixels` logits, channel-major
  /// (background first); `confidences` the `classes` values v_c in [0, 1]; `imageLabels`
  /// the image's 0-based foreground classes. Returns labels 0 (background) or c + 1.
  public static func labels(scores: [Float], classes: Int, pixels: Int, confidences: [Float],
                            imageLabels: [Int]) -> [UInt8] {
    precondition(scores.count == (classes + 1) * pixels, "OnlineMask: \(scores.count) scores for \(classes + 1) planes of \(pixels)")
    precondition(confidences.count == classes, "OnlineMask: \(confidences.count) confidences for \(classes) classes")
    return scores.withUnsafeBufferPointer { s in
      labels(scores: s.baseAddress!, classes: classes, pixels: pixels, confidences: confidences, imageLabels: imageLabels)
    }
  }

  static func labels(scores s: UnsafePointer<Float>, classes: Int, pixels: Int, confidences: [Float],
                     imageLabels: [Int]) -> [UInt8] {
    let candidates = [0] + imageLabels.filter { $0 >= 0 && $0 < classes }.sorted().map { $0 + 1 }
    // The weight of each candidate plane: background unweighted, class c by v_c.
    let weights = candidates.map { $0 == 0 ? Float(1) : confidences[$0 - 1] }
    var out = [UInt8](repeating: 0, count: pixels)
    for q in 0..<pixels {
      // softmax(f)_k = exp(f_k - m) / Z with one Z for every k, so comparing
      // w_k exp(f_k - m) over the candidates compares w_k p_k. m is the maximum over all
      // planes, the same shift the full softmax uses.
      var m = -Float.infinity
      for k in 0...classes { m = max(m, s[k * pixels + q]) }
      var best = -Float.infinity, label = 0
      for (k, w) in zip(candidates, weights) {
        let value = w * expf(s[k * pixels + q] - m)
        if value > best { best = value; label = k }
      }
      out[q] = UInt8(label)
    }
    return out
  }

  /// A batch. `scores` [N, classes + 1, h, w] logits; `confidences` [N, classes] in [0, 1];
  /// `valid` (N * h * w), when given, marks cells that show the image: the others (crop
  /// padding) get 255, because the mask there would supervise nothing real.
  public static func labels(scores sIn: Tensor, confidences: Tensor, imageLabels: [[Int]], valid: [Bool]? = nil) -> [UInt8] {
    let s = sIn.nchw()
    let (n, k, hw) = (s.shape[0], s.shape[1], s.shape[2] * s.shape[3])
    let classes = k - 1
    precondition(confidences.shape == [n, classes], "OnlineMask: confidences \(confidences.shape) for scores \(s.shape)")
    precondition(imageLabels.count == n, "OnlineMask: \(imageLabels.count) label sets for \(n) images")
    precondition(valid.map { $0.count == n * hw } ?? true, "OnlineMask: the valid mask has the wrong size")
    let v = confidences.values
    var out: [UInt8] = []
    out.reserveCapacity(n * hw)
    for i in 0..<n {
      var mask = labels(scores: UnsafePointer(s.data + i * k * hw), classes: classes, pixels: hw,
                        confidences: Array(v[(i * classes)..<((i + 1) * classes)]), imageLabels: imageLabels[i])
      if let valid {
        for q in 0..<hw where !valid[i * hw + q] { mask[q] = Loss.ignoreLabel }
      }
      out += mask
    }
    return withExtendedLifetime(s) { out }
  }

  /// Class confidences v = sigmoid(logits), [N, classes].
  public static func confidences(logits: Tensor) -> Tensor {
    let out = Tensor(shape: logits.shape)
    for i in 0..<logits.count { out.data[i] = 1 / (1 + expf(-logits.data[i])) }
    return out
  }
}
