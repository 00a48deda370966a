import Foundation

/// One figure of `aepsl bench engine`: aepsl's value and PyTorch's in each layout, in one
/// precision. aepsl runs float32 only, so a bf16 row has no aepsl value.
public struct BenchRow {
  public let figure: String
  /// "fp32" or "bf16": the precision of every value in the row.
  public let precision: String
  public let ours: Double?
  /// PyTorch's value per layout ("contiguous", "channels_last").
  public let theirs: [String: Double]
  /// Memory: lower is better; throughput: higher.
  public let lowerIsBetter: Bool
  /// "min": the ratio must be at least `target`; "max": at most.
  public let target: (kind: String, value: Double)?
  public let format: String

  public init(figure: String, precision: String, ours: Double?, theirs: [String: Double], lowerIsBetter: Bool = false,
              target: (kind: String, value: Double)? = nil, format: String) {
    (self.figure, self.precision, self.ours, self.theirs) = (figure, precision, ours, theirs)
    (self.lowerIsBetter, self.target, self.format) = (lowerIsBetter, target, format)
  }

  /// PyTorch's better layout for this figure.
  public var theirBest: (layout: String, value: Double)? {
    let sorted = theirs.sorted { lowerIsBetter ? $0.value < $1.value : $0.value > $1.value }
    return sorted.first.map { ($0.key, $0.value) }
  }
  /// aepsl over PyTorch's better layout.
  public var ratio: Double? {
    guard let ours, let best = theirBest, best.value > 0 else { return nil }
    return ours / best.value
  }
  public var met: Bool? {
    guard let r = ratio, let t = target else { return nil }
    return t.kind == "min" ? r >= t.value : r <= t.value
  }
  public var targetText: String {
    guard let t = target else { return "" }
    return String(format: t.kind == "min" ? ">= %.2fx" : "<= %.2fx", t.value)
  }

  public var json: [String: Any] {
    var d: [String: Any] = ["figure": figure, "precision": precision, "pytorch": theirs]
    if let ours { d["aepsl"] = ours }
    if let best = theirBest { d["pytorch_best_layout"] = best.layout }
    if let ratio { d["ratio"] = ratio }
    if target != nil { d["target"] = targetText }
    if let met { d["met"] = met }
    return d
  }
}

/// The peaks a figure's share is taken of, per precision (GFLOP/s; 0: not measured).
public struct BenchPeaks {
  /// The FMA loop's best figure (the widest vectors the CPU has).
  public var fp32: Double
  /// bf16: twice the AVX-512 FMA peak (vdpbf16ps does two bf16 multiply-adds per float32
  /// lane); 0 where the CPU has no AVX-512.
  public var bf16: Double

  public init(fp32: Double, bf16: Double) { (self.fp32, self.bf16) = (fp32, bf16) }

  public func of(_ precision: String) -> Double { precision == "bf16" ? bf16 : fp32 }
}

public enum BenchTable {
  public static let layouts = ["contiguous", "channels_last"]

  /// The rows of every network in `ours`; `theirs[network]` is what
  /// scripts/bench_reference.py printed for it (its "runs" keyed "precision layout").
  public static func rows(ours: [String: [String: Any]], theirs: [String: [String: Any]], peaks: BenchPeaks) -> [BenchRow] {
    var rows: [BenchRow] = []
    for net in BenchNetwork.all.map(\.name) {
      guard let o = ours[net] else { continue }
      let runs = theirs[net]?["runs"] as? [String: [String: Any]] ?? [:]
      rows += precisionRows(net, "fp32", ours: o, counts: o, runs: runs, peak: peaks.fp32)
      if runs.keys.contains(where: { $0.hasPrefix("bf16 ") }) {
        rows += precisionRows(net, "bf16", ours: nil, counts: o, runs: runs, peak: peaks.bf16)
      }
    }
    return rows
  }

  /// One network's rows in one precision: throughput, GFLOP/s and share of the peak of the
  /// classifier's training step, the segmenter's PSL step and inference, then peak memory.
  /// `ours`: aepsl's figures in this precision (nil: it has none); `counts`: the FLOP counts
  /// (aepsl's, which both sides' GFLOP/s use).
  static func precisionRows(_ net: String, _ precision: String, ours o: [String: Any]?, counts: [String: Any],
                            runs: [String: [String: Any]], peak: Double) -> [BenchRow] {
    func theirs(_ path: String...) -> [String: Double] {
      var out: [String: Double] = [:]
      for layout in layouts {
        guard let run = runs["\(precision) \(layout)"] else { continue }
        out[layout] = run.double(at: path)
      }
      return out
    }
    let fp32 = precision == "fp32"
    let flop = ["train": 3 * counts.double("forward_gflop_per_image"),
                "segment_train": 3 * counts.double("segment_forward_gflop_per_image"),
                "infer": counts.double("forward_gflop_per_image")]
    let steps: [(key: String, label: String, target: Double?)] = [
      ("train", "training", fp32 ? (net == "tiny" ? 1.25 : 1.2) : nil), ("segment_train", "PSL segmenter step", nil),
      ("infer", "inference", fp32 ? 1.0 : nil),
    ]
    var rows: [BenchRow] = []
    for s in steps {
      rows.append(BenchRow(figure: "\(net) \(s.label) images/s", precision: precision, ours: o?.double(s.key, "images_per_s"),
                           theirs: theirs(s.key, "images_per_s"), target: s.target.map { ("min", $0) }, format: "%.2f"))
    }
    for s in steps {
      let gflops = theirs(s.key, "images_per_s").mapValues { $0 * flop[s.key]! }
      let ours = o.map { $0.double(s.key, "images_per_s") * flop[s.key]! }
      rows.append(BenchRow(figure: "\(net) \(s.label) GFLOP/s", precision: precision, ours: ours, theirs: gflops,
                           format: "%.1f"))
      if peak > 0 {
        rows.append(BenchRow(figure: "\(net) \(s.label), % of \(precision) peak", precision: precision,
                             ours: ours.map { 100 * $0 / peak }, theirs: gflops.mapValues { 100 * $0 / peak }, format: "%.1f"))
      }
    }
    rows.append(BenchRow(figure: "\(net) peak RSS increase, training (MiB)", precision: precision,
                         ours: o?.double("rss_mib", "training_increase"), theirs: theirs("rss_mib", "training_increase"),
                         lowerIsBetter: true, target: fp32 ? ("max", 1.0) : nil, format: "%.0f"))
    rows.append(BenchRow(figure: "\(net) peak RSS increase, inference (MiB)", precision: precision,
                         ours: o?.double("rss_mib", "inference_increase"), theirs: theirs("rss_mib", "inference_increase"),
                         lowerIsBetter: true, format: "%.0f"))
    return rows
  }

  /// What the table compares, printed under it: precision, folding, peaks, and why bf16 rows
  /// are missing when they are (`pytorch`: the script's output, nil without --compare-pytorch).
  public static func notes(pytorch: [String: Any]?, peaks: BenchPeaks) -> [String] {
    var lines = ["Precision: every aepsl figure is float32 (aepsl has no bf16 path)."]
    lines.append(pytorch == nil
      ? "Inference: batch norm folded into the convolutions."
      : "Inference: batch norm folded into the convolutions on both sides (PyTorch: fuse_conv_bn_eval).")
    if peaks.fp32 > 0 {
      lines.append(String(format: "%% of fp32 peak: of the FMA loop's %.1f GFLOP/s.", peaks.fp32))
    }
    guard let pytorch else { return lines }
    lines.append("ratio: aepsl over PyTorch's better float32 layout (memory: the lower).")
    if let skipped = pytorch["bf16_skipped"] as? String {
      lines.append("bf16: \(skipped).")
    } else if peaks.bf16 > 0 {
      lines.append(String(format: "%% of bf16 peak: of twice the AVX-512 FMA peak, %.1f GFLOP/s (vdpbf16ps).", peaks.bf16))
    }
    return lines
  }

  public static func render(_ rows: [BenchRow], withPyTorch: Bool) -> String {
    var lines: [[String]] = [withPyTorch
      ? ["figure", "precision", "aepsl", "PyTorch NCHW", "PyTorch channels_last", "ratio", "target", "met"]
      : ["figure", "precision", "aepsl"]]
    for r in rows {
      let ours = r.ours.map { String(format: r.format, $0) } ?? "-"
      guard withPyTorch else { lines.append([r.figure, r.precision, ours]); continue }
      let theirs = layouts.map { l in r.theirs[l].map { String(format: r.format, $0) } ?? "-" }
      let ratio = r.ratio.map { String(format: "%.2fx", $0) } ?? "-"
      let met = r.met.map { $0 ? "yes" : "NO" } ?? ""
      lines.append([r.figure, r.precision, ours] + theirs + [ratio, r.targetText, met])
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
  public func double(_ path: String...) -> Double { double(at: path) }

  public func double(at path: [String]) -> Double {
    var node: Any = self
    for key in path {
      guard let d = node as? [String: Any], let next = d[key] else { return 0 }
      node = next
    }
    return (node as? Double) ?? (node as? NSNumber)?.doubleValue ?? 0
  }
}
