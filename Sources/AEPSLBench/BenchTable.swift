import Foundation

public struct BenchRow {
  public let figure: String
  public let ours: Double
  public let theirs: Double?
  public let theirLayout: String?
  /// "min": the ratio must be at least `target`; "max": at most.
  public let target: (kind: String, value: Double)?
  public let format: String

  public var ratio: Double? { theirs.map { ours / $0 } }
  public var met: Bool? {
    guard let r = ratio, let t = target else { return nil }
    return t.kind == "min" ? r >= t.value : r <= t.value
  }
  public var targetText: String {
    guard let t = target else { return "" }
    return String(format: t.kind == "min" ? ">= %.2fx" : "<= %.2fx", t.value)
  }

  public var json: [String: Any] {
    var d: [String: Any] = ["figure": figure, "aepsl": ours]
    if let theirs { d["pytorch"] = theirs }
    if let theirLayout { d["pytorch_layout"] = theirLayout }
    if let ratio { d["ratio"] = ratio }
    if target != nil { d["target"] = targetText }
    if let met { d["met"] = met }
    return d
  }
}

public enum BenchTable {
  public static func rows(ours: [String: [String: Any]], theirs: [String: [String: Any]], peak: Double) -> [BenchRow] {
    var rows: [BenchRow] = []
    for net in BenchNetwork.all.map(\.name) {
      guard let o = ours[net] else { continue }
      let t = theirs[net]
      let best = t?["best"] as? [String: Any]
      let trainTarget = net == "tiny" ? 1.25 : 1.2
      rows.append(BenchRow(figure: "\(net) training images/s", ours: o.double("train", "images_per_s"),
                           theirs: best?["train_images_per_s"] as? Double, theirLayout: best?["train_layout"] as? String,
                           target: ("min", trainTarget), format: "%.2f"))
      rows.append(BenchRow(figure: "\(net) inference images/s", ours: o.double("infer", "images_per_s"),
                           theirs: best?["infer_images_per_s"] as? Double, theirLayout: best?["infer_layout"] as? String,
                           target: ("min", 1.0), format: "%.2f"))
      rows.append(BenchRow(figure: "\(net) training GFLOP/s", ours: o.double("train_gflops"),
                           theirs: t?["train_gflops"] as? Double, theirLayout: best?["train_layout"] as? String,
                           target: nil, format: "%.1f"))
      rows.append(BenchRow(figure: "\(net) inference GFLOP/s", ours: o.double("infer_gflops"),
                           theirs: t?["infer_gflops"] as? Double, theirLayout: best?["infer_layout"] as? String,
                           target: nil, format: "%.1f"))
      rows.append(BenchRow(figure: "\(net) peak RSS increase, training (MiB)", ours: o.double("rss_mib", "training_increase"),
                           theirs: best?["training_rss_increase_mib"] as? Double,
                           theirLayout: best?["training_rss_layout"] as? String, target: ("max", 1.0), format: "%.0f"))
      rows.append(BenchRow(figure: "\(net) peak RSS increase, inference (MiB)", ours: o.double("rss_mib", "inference_increase"),
                           theirs: best?["inference_rss_increase_mib"] as? Double,
                           theirLayout: best?["inference_rss_layout"] as? String, target: nil, format: "%.0f"))
      if peak > 0 {
        rows.append(BenchRow(figure: "\(net) training, % of FMA peak", ours: 100 * o.double("train_gflops") / peak,
                             theirs: (t?["train_gflops"] as? Double).map { 100 * $0 / peak }, theirLayout: nil,
                             target: nil, format: "%.1f"))
      }
    }
    return rows
  }

  public static func render(_ rows: [BenchRow], withPyTorch: Bool) -> String {
    var lines: [[String]] = [withPyTorch
      ? ["figure", "aepsl", "PyTorch (best layout)", "ratio", "target", "met"]
      : ["figure", "aepsl"]]
    for r in rows {
      let ours = String(format: r.format, r.ours)
      guard withPyTorch else { lines.append([r.figure, ours]); continue }
      let theirs = r.theirs.map { String(format: r.format, $0) + (r.theirLayout.map { " (\($0))" } ?? "") } ?? "-"
      let ratio = r.ratio.map { String(format: "%.2fx", $0) } ?? "-"
      let met = r.met.map { $0 ? "yes" : "NO" } ?? ""
      lines.append([r.figure, ours, theirs, ratio, r.targetText, met])
    }
    let widths = (0..<lines[0].count).map { c in lines.map { $0[c].count }.max()! }
    return lines.map { row in
      zip(row, widths).enumerated().map { i, p in
        i == 0 ? p.0.padding(toLength: p.1, withPad: " ", startingAt: 0)
               : String(repeating: " ", count: p.1 - p.0.count) + p.0
      }.joined(separator: "  ")
    }.joined(separator: "\n")
  }
}

extension Dictionary where Key == String, Value == Any {
  /// A number at a path of nested dictionaries (0 when missing).
  public func double(_ path: String...) -> Double {
    var node: Any = self
    for key in path {
      guard let d = node as? [String: Any], let next = d[key] else { return 0 }
      node = next
    }
    return (node as? Double) ?? (node as? NSNumber)?.doubleValue ?? 0
  }
}
