import AEPSLEngine
import AEPSLFiles
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `aepsl bench engine`: training and inference throughput of the engine's networks, achieved
/// GFLOP/s against this machine's measured FMA peak, peak memory, and optionally the same
/// networks in PyTorch in the same run (BENCHMARKS.md).
public struct EngineBenchmark {
  public var networks: [String]
  /// Warm-up and timed iterations per figure; nil: each network's own (`BenchNetwork`).
  public var warmup: Int?
  public var iterations: Int?
  public var comparePyTorch: Bool
  public var skipPeak: Bool
  /// A measurement during which other processes used more than this share of the CPU
  /// (percent) is repeated, at most `retries` times.
  public var maxLoad: Double
  public var retries: Int
  public var seed: UInt64
  /// Where to write every figure as JSON.
  public var json: String?
  /// The arguments that make this executable measure one network in a child process and
  /// write its figures to a file (the command line's business, hence given by it):
  /// (network, warm-up, iterations, output file) -> arguments.
  public var childArguments: (String, Int, Int, String) -> [String]

  public init(networks: [String], warmup: Int? = nil, iterations: Int? = nil, comparePyTorch: Bool = false,
              skipPeak: Bool = false, maxLoad: Double = 5, retries: Int = 3, seed: UInt64 = 0, json: String? = nil,
              childArguments: @escaping (String, Int, Int, String) -> [String]) {
    (self.networks, self.warmup, self.iterations, self.comparePyTorch, self.skipPeak) = (networks, warmup, iterations, comparePyTorch, skipPeak)
    (self.maxLoad, self.retries, self.seed, self.json, self.childArguments) = (maxLoad, retries, seed, json, childArguments)
  }

  /// The child's side: measures `network` in this process and writes its figures to `output`.
  public static func measureChild(network: String, seed: UInt64, warmup: Int, iterations: Int, output: URL) throws {
    guard let net = BenchNetwork.named(network) else {
      throw AEPSLError(kind: .badArgument, problem: "unknown network '\(network)'",
                       fix: "Choose one of \(BenchNetwork.all.map(\.name).joined(separator: ", ")).")
    }
    let result = net.measure(seed: seed, warmup: warmup, iterations: iterations)
    try writeFileAtomically(JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), to: output)
  }

  public func run() throws {
    let threads = ComputeThreads.current
    var report: [String: Any] = [
      "date": ISO8601DateFormatter().string(from: Date()),
      "machine": BenchMachine.description(threads: threads),
      "threads": threads, "seed": seed,
    ]
    print("aepsl bench engine: \(BenchMachine.cpuLine), \(threads) thread(s)")
    let reference = try comparePyTorch ? ReferenceRunner() : nil
    var loads: [String: Double] = [:]

    // 1. The machine's peak.
    var peaks = BenchPeaks(fp32: 0, bf16: 0)
    if !skipPeak {
      let peak = try undisturbed("FMA peak", &loads) { Self.measurePeak(threads: threads) }
      peaks = Self.peaks(peak)
      report["peak_gflops"] = peak
    }

    // 2. Per network: the engine in a child process, then PyTorch (interleaved, so that a
    // busy spell on the machine hits both sides of a comparison alike).
    var ours: [String: [String: Any]] = [:]
    var theirs: [String: [String: Any]] = [:]
    var info: [String: Any] = [:]
    for name in networks {
      guard let net = BenchNetwork.named(name) else { continue }
      let (w, n) = (warmup ?? net.warmup, iterations ?? net.iterations)
      print("aepsl \(name): \(w) warm-up + \(n) timed iterations (inference, then training)")
      let r = try undisturbed("aepsl \(name)", &loads) { try runChild(name, warmup: w, iterations: n, peak: peaks.fp32) }
      ours[name] = r
      guard let reference else { continue }
      let out = try undisturbed("pytorch \(name)", &loads) {
        try reference.run("engine", arguments: ["--threads", "\(threads)", "--networks", name, "--warmup", "\(w)",
                                                "--iterations", "\(n)", "--seed", "\(seed)"])
      }
      for key in ["torch_version", "threads", "python", "mkldnn", "interpreter", "cpu_capability", "bf16_flags",
                  "bf16_skipped", "inference"] { info[key] = out[key] }
      theirs[name] = try Self.pytorchFigures(out, network: name)
    }
    report["aepsl"] = ours
    if comparePyTorch { report["pytorch"] = info.merging(["networks": theirs]) { $1 } }
    report["other_processes_cpu_percent"] = loads
    Self.warnAboutLoad(loads)

    // 3. The table.
    let rows = BenchTable.rows(ours: ours, theirs: theirs, peaks: peaks)
    report["comparison"] = rows.map(\.json)
    print("")
    print(BenchTable.render(rows, withPyTorch: comparePyTorch))
    for line in BenchTable.notes(pytorch: comparePyTorch ? info : nil, peaks: peaks) { print(line) }
    if let json {
      try writeFileAtomically(JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys]),
                              to: URL(fileURLWithPath: json))
      print("Wrote \(json)")
    }
  }

  /// The FMA loop on every instruction set the CPU has, and OpenBLAS's sgemm, in GFLOP/s.
  static func measurePeak(threads: Int) -> [String: Any] {
    var peak: [String: Any] = [:]
    for isa in FMAPeak.ISA.allCases {
      guard let g = FMAPeak.kernel(isa, threads: threads) else { continue }
      peak[isa.rawValue] = g
      print(String(format: "FMA peak, %@ loop on %d thread(s): %.1f GFLOP/s", isa.rawValue, threads, g))
    }
    let s = FMAPeak.sgemm()
    peak["openblas-sgemm-2048"] = s
    print(String(format: "OpenBLAS sgemm 2048^3 on %d thread(s): %.1f GFLOP/s", threads, s))
    return peak
  }

  /// The peak of each precision from the measured FMA loops (`measurePeak`'s figures).
  static func peaks(_ peak: [String: Any]) -> BenchPeaks {
    let fp32 = FMAPeak.ISA.allCases.compactMap { peak[$0.rawValue] as? Double }.max() ?? 0
    return BenchPeaks(fp32: fp32, bf16: 2 * ((peak[FMAPeak.ISA.avx512.rawValue] as? Double) ?? 0))
  }

  /// PyTorch's figures for one network (its runs per precision and layout).
  static func pytorchFigures(_ out: [String: Any], network: String) throws -> [String: Any] {
    guard let t = (out["networks"] as? [String: Any])?[network] as? [String: Any], t["runs"] is [String: Any] else {
      throw AEPSLError(file: ReferenceRunner.script, problem: "printed no figures for \(network)",
                       fix: "Run it by hand to see what it printed.")
    }
    return t
  }

  static func warnAboutLoad(_ loads: [String: Double]) {
    let busy = loads.filter { $0.value > 5 }.sorted { $0.key < $1.key }
    guard !busy.isEmpty else { return }
    print("WARNING: other processes used the CPU during " + busy.map { String(format: "%@ (%.0f%%)", $0.key, $0.value) }
      .joined(separator: ", ") + " of the machine: those figures are low; rerun on a quiet machine.")
  }

  /// Runs a measurement; when other processes used more than `maxLoad` of the CPU meanwhile,
  /// waits for quiet and repeats it (at most `retries` times), keeping the least disturbed
  /// result. Records the other processes' share in `loads[label]`.
  func undisturbed<T>(_ label: String, _ loads: inout [String: Double], _ body: () throws -> T) throws -> T {
    var best: (result: T, load: Double)?
    for attempt in 0...retries {
      let load = BenchLoad()
      let result = try body()
      let others = load.othersPercent()
      if best == nil || others < best!.load { best = (result, others) }
      if others <= maxLoad { break }
      if attempt < retries {
        print(String(format: "  (other processes used %.0f%% of the CPU during %@: waiting for quiet, then repeating)",
                     others, label))
        BenchLoad.waitForQuiet(maxLoad: maxLoad, timeout: 120)
      }
    }
    loads[label] = best!.load
    return best!.result
  }

  /// Runs one network in a child process of this executable (so that its peak memory is its
  /// own), prints and returns its figures.
  func runChild(_ name: String, warmup: Int, iterations: Int, peak: Double) throws -> [String: Any] {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-bench-\(getpid())-\(name).json")
    defer { try? FileManager.default.removeItem(at: out) }
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = childArguments(name, warmup, iterations, out.path)
    fflush(nil)  // our progress lines before the child's
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
      throw AEPSLError(kind: .environment, file: exe, problem: "the \(name) benchmark process failed (status \(p.terminationStatus))",
                       fix: "See its messages above.")
    }
    guard var r = try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as? [String: Any] else {
      throw AEPSLError(file: out.path, problem: "is not the JSON object the benchmark process writes", fix: "Run it again.")
    }
    if peak > 0 {
      r["train_percent_of_peak"] = 100 * r.double("train_gflops") / peak
      r["infer_percent_of_peak"] = 100 * r.double("infer_gflops") / peak
      r["segment_train_percent_of_peak"] = 100 * r.double("segment_train_gflops") / peak
    }
    print(String(format: "  train %.2f images/s (%.1f GFLOP/s), PSL step %.2f images/s (%.1f GFLOP/s), infer %.2f images/s (%.1f GFLOP/s), peak RSS +%.0f MiB",
                 r.double("train", "images_per_s"), r.double("train_gflops"),
                 r.double("segment_train", "images_per_s"), r.double("segment_train_gflops"),
                 r.double("infer", "images_per_s"), r.double("infer_gflops"),
                 r.double("rss_mib", "training_increase")))
    return r
  }
}
