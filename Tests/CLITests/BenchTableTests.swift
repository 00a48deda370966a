import AEPSLBench
import Foundation
import Testing

/// The table of `aepsl bench engine --compare-pytorch`, from made-up figures (nothing is timed):
/// rows per precision, the ratio against PyTorch's better layout, shares of each precision's
/// peak, and the note that says why bf16 rows are missing.
@Suite("bench engine table")
struct BenchTableTests {
  /// aepsl's child-process figures for `tiny` (forward 0.5 GFLOP per image; segmenter 0.6).
  static var ours: [String: Any] { [
    "forward_gflop_per_image": 0.5, "segment_forward_gflop_per_image": 0.6,
    "train": ["images_per_s": 200.0], "segment_train": ["images_per_s": 150.0], "infer": ["images_per_s": 700.0],
    "rss_mib": ["training_increase": 300.0, "inference_increase": 150.0],
  ] }

  static func run(train: Double, segment: Double, infer: Double, rss: Double) -> [String: Any] {
    ["train": ["images_per_s": train], "segment_train": ["images_per_s": segment], "infer": ["images_per_s": infer],
     "rss_mib": ["training_increase": rss, "inference_increase": rss / 2]]
  }

  static func theirs(bf16: Bool) -> [String: Any] {
    var runs: [String: Any] = [
      "fp32 contiguous": run(train: 100, segment: 90, infer: 300, rss: 700),
      "fp32 channels_last": run(train: 160, segment: 80, infer: 350, rss: 600),
    ]
    if bf16 { runs["bf16 channels_last"] = run(train: 320, segment: 200, infer: 700, rss: 500) }
    return ["runs": runs]
  }

  static func row(_ rows: [BenchRow], _ figure: String, _ precision: String = "fp32",
                  sourceLocation: SourceLocation = #_sourceLocation) throws -> BenchRow {
    try #require(rows.first { $0.figure == figure && $0.precision == precision }, "no row \(figure) (\(precision))",
                 sourceLocation: sourceLocation)
  }

  @Test func ratiosAreAgainstPyTorchsBetterLayout() throws {
    let rows = BenchTable.rows(ours: ["tiny": Self.ours], theirs: ["tiny": Self.theirs(bf16: false)],
                               peaks: BenchPeaks(fp32: 1000, bf16: 0))
    let train = try Self.row(rows, "tiny training images/s")
    #expect(train.theirBest?.layout == "channels_last")
    #expect(train.ratio == 200.0 / 160)
    #expect(train.met == true)  // target 1.25x for tiny
    let segment = try Self.row(rows, "tiny PSL segmenter step images/s")
    #expect(segment.theirBest?.layout == "contiguous")
    #expect(segment.ratio == 150.0 / 90)
    // Memory: the lower layout is PyTorch's best, and the target is an upper bound.
    let memory = try Self.row(rows, "tiny peak RSS increase, training (MiB)")
    #expect(memory.theirBest?.value == 600)
    #expect(memory.ratio == 0.5)
    #expect(memory.met == true)
  }

  @Test func gflopsAndShareOfPeakUseTheEngineFLOPCount() throws {
    let rows = BenchTable.rows(ours: ["tiny": Self.ours], theirs: ["tiny": Self.theirs(bf16: false)],
                               peaks: BenchPeaks(fp32: 1000, bf16: 0))
    // A training step is three forward passes; the segmenter's forward has its own count.
    let segment = try Self.row(rows, "tiny PSL segmenter step GFLOP/s")
    #expect(abs(segment.ours! - 150 * 3 * 0.6) < 1e-9)
    #expect(abs(segment.theirs["contiguous"]! - 90 * 3 * 0.6) < 1e-9)
    let share = try Self.row(rows, "tiny inference, % of fp32 peak")
    #expect(abs(share.ours! - 100 * 700 * 0.5 / 1000) < 1e-9)
    #expect(abs(share.theirs["channels_last"]! - 100 * 350 * 0.5 / 1000) < 1e-9)
  }

  @Test func withoutNativeBF16TheRowsAreSkippedAndTheNoteSaysWhy() {
    let skipped = "this CPU has no native bfloat16 (neither avx512_bf16 nor amx_bf16 in /proc/cpuinfo): PyTorch's bf16 autocast rows are skipped"
    let rows = BenchTable.rows(ours: ["tiny": Self.ours], theirs: ["tiny": Self.theirs(bf16: false)],
                               peaks: BenchPeaks(fp32: 1000, bf16: 0))
    #expect(!rows.isEmpty)
    #expect(rows.allSatisfy { $0.precision == "fp32" })
    let notes = BenchTable.notes(pytorch: ["bf16_skipped": skipped], peaks: BenchPeaks(fp32: 1000, bf16: 0))
    #expect(notes.contains("bf16: \(skipped)."))
    #expect(notes.contains { $0.contains("folded") && $0.contains("both sides") })
    #expect(BenchTable.render(rows, withPyTorch: true).contains("PyTorch channels_last"))
  }

  @Test func withNativeBF16PyTorchsAutocastRowsHaveTheirOwnPeak() throws {
    let rows = BenchTable.rows(ours: ["tiny": Self.ours], theirs: ["tiny": Self.theirs(bf16: true)],
                               peaks: BenchPeaks(fp32: 1000, bf16: 2000))
    let train = try Self.row(rows, "tiny training images/s", "bf16")
    #expect(train.ours == nil)  // aepsl runs float32 only
    #expect(train.theirs == ["channels_last": 320])
    #expect(train.ratio == nil && train.met == nil)
    let share = try Self.row(rows, "tiny training, % of bf16 peak", "bf16")
    #expect(abs(share.theirs["channels_last"]! - 100 * 320 * 1.5 / 2000) < 1e-9)
    let notes = BenchTable.notes(pytorch: [:], peaks: BenchPeaks(fp32: 1000, bf16: 2000))
    #expect(notes.contains { $0.hasPrefix("% of bf16 peak") })
    let text = BenchTable.render(rows, withPyTorch: true)
    #expect(text.split(separator: "\n").contains { $0.contains("tiny training images/s") && $0.contains("bf16") })
  }

  @Test func withoutPyTorchTheTableHasAepslAlone() {
    let rows = BenchTable.rows(ours: ["tiny": Self.ours], theirs: [:], peaks: BenchPeaks(fp32: 0, bf16: 0))
    #expect(rows.allSatisfy { $0.theirs.isEmpty && $0.ratio == nil })
    #expect(!rows.contains { $0.figure.contains("% of") })  // no peak measured
    let header = BenchTable.render(rows, withPyTorch: false).split(separator: "\n")[0]
    #expect(!header.contains("PyTorch"))
  }
}
