import AEPSLEngine
import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `aepsl bench engine`: training and inference throughput of the engine's networks, achieved
/// GFLOP/s against this machine's measured FMA peak, peak memory, and optionally the same
/// networks in PyTorch in the same run (BENCHMARKS.md, DESIGN.md section 5).
struct BenchEngine: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "engine",
    abstract: "Engine throughput (images/s, GFLOP/s, peak memory), optionally against PyTorch.",
    discussion: """
      Networks: tiny (128x128, batch 32) and largefov (321x321, batch 2), each a classifier \
      (backbone, global average pooling, 20-class linear layer). Training = forward, squared \
      error of sigmoid scores, backward, SGD step (momentum 0.9, weight decay 5e-4); inference \
      = forward with batch norm folded into the convolutions, same batch. Throughput is the \
      batch over the median iteration time. FLOPs: 2 x multiply-adds of a forward pass; a \
      training step counts 3 forward passes. Each network runs in a child process; its memory \
      figure is the peak RSS (getrusage) minus the RSS before the network was built. The FMA \
      peak runs first, in the same invocation. With --compare-pytorch, \
      scripts/bench_engine_pytorch.py runs the same networks in PyTorch (default and \
      channels_last layouts, best of the two) with the same thread count; the Python comes \
      from $AEPSL_PYTHON, else .venv-bench/bin/python, else /opt/aepsl-torch/bin/python, and \
      .venv-bench is created with torch and numpy when none of them has torch.
      """)

  @OptionGroup var compute: ComputeOptions

  @Option(help: "Networks to measure, comma-separated (tiny, largefov).")
  var networks: String = "tiny,largefov"

  @Option(help: "Warm-up iterations before each timed figure (default: tiny 3, largefov 1).")
  var warmup: Int?

  @Option(help: "Timed iterations per figure (default: tiny 20, largefov 5).")
  var iterations: Int?

  @Flag(help: "Also run the same networks in PyTorch and print the ratios aepsl/PyTorch.")
  var comparePytorch = false

  @Option(help: "Write every figure to this JSON file.")
  var json: String?

  @Flag(help: "Skip the FMA peak measurement.")
  var skipPeak = false

  @Option(help: ArgumentHelp(
    "Repeat a measurement during which other processes used more than this share of the machine's CPU (percent).",
    discussion: "Before a repeat the command waits (up to 2 minutes) for the machine to go quiet."))
  var maxLoad: Double = 5

  @Option(help: "Repeats of a measurement disturbed by other processes (then the least disturbed one is kept).")
  var retries: Int = 3

  @Option(help: .hidden) var child: String?
  @Option(help: .hidden) var childOutput: String?

  func validate() throws {
    for name in networkNames where BenchNetwork.named(name) == nil {
      throw ValidationError("unknown network '\(name)'; known: \(BenchNetwork.all.map(\.name).joined(separator: ", "))")
    }
    if let warmup, warmup < 0 { throw ValidationError("--warmup must be at least 0") }
    if let iterations, iterations < 1 { throw ValidationError("--iterations must be at least 1") }
    if retries < 0 { throw ValidationError("--retries must be at least 0") }
  }

  var networkNames: [String] { networks.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

  func run() throws {
    compute.apply()
    if let child {
      let result = BenchNetwork.named(child)!.measure(
        seed: compute.seed, warmup: warmup ?? 0, iterations: iterations ?? 1)
      let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
      try data.write(to: URL(fileURLWithPath: childOutput!))
      return
    }

    let threads = ComputeThreads.current
    var report: [String: Any] = [
      "date": ISO8601DateFormatter().string(from: Date()),
      "machine": BenchMachine.description(threads: threads),
      "threads": threads, "seed": compute.seed,
    ]
    print("aepsl bench engine: \(BenchMachine.cpuLine), \(threads) thread(s)")
    var python: (root: URL, interpreter: URL)?
    if comparePytorch {
      let root = try BenchPython.repositoryRoot()
      python = (root, try BenchPython.interpreter(root: root))
    }
    var loads: [String: Double] = [:]

    // 1. The machine's peak.
    var peakGFLOPs = 0.0
    if !skipPeak {
      let peak: [String: Any] = try undisturbed("FMA peak", &loads) {
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
      peakGFLOPs = FMAPeak.ISA.allCases.compactMap { peak[$0.rawValue] as? Double }.max() ?? 0
      report["peak_gflops"] = peak
    }

    // 2. Per network: the engine in a child process, then PyTorch (interleaved, so that a
    // busy spell on the machine hits both sides of a comparison alike).
    var ours: [String: [String: Any]] = [:]
    var theirs: [String: [String: Any]] = [:]
    var info: [String: Any] = [:]
    for name in networkNames {
      let net = BenchNetwork.named(name)!
      let (w, n) = (warmup ?? net.warmup, iterations ?? net.iterations)
      print("aepsl \(name): \(w) warm-up + \(n) timed iterations (inference, then training)")
      var r = try undisturbed("aepsl \(name)", &loads) { try runChild(name, warmup: w, iterations: n) }
      if peakGFLOPs > 0 {
        r["train_percent_of_peak"] = 100 * (r["train_gflops"] as! Double) / peakGFLOPs
        r["infer_percent_of_peak"] = 100 * (r["infer_gflops"] as! Double) / peakGFLOPs
      }
      ours[name] = r
      print(String(format: "  train %.2f images/s (%.1f GFLOP/s), infer %.2f images/s (%.1f GFLOP/s), peak RSS +%.0f MiB",
                   r.double("train", "images_per_s"), r["train_gflops"] as! Double,
                   r.double("infer", "images_per_s"), r["infer_gflops"] as! Double,
                   r.double("rss_mib", "training_increase")))

      guard let python else { continue }
      let out = try undisturbed("pytorch \(name)", &loads) {
        try BenchPython.run(python: python.interpreter,
                            script: python.root.appendingPathComponent(BenchPython.script),
                            arguments: ["--threads", "\(threads)", "--networks", name, "--warmup", "\(w)",
                                        "--iterations", "\(n)", "--seed", "\(compute.seed)"])
      }
      for key in ["torch_version", "threads", "python", "mkldnn"] { info[key] = out[key] }
      var t = (out["networks"] as! [String: Any])[name] as! [String: Any]
      let best = t["best"] as! [String: Any]
      let flops = r.double("forward_gflop_per_image")
      t["train_gflops"] = 3 * flops * (best["train_images_per_s"] as! Double)
      t["infer_gflops"] = flops * (best["infer_images_per_s"] as! Double)
      theirs[name] = t
    }
    report["aepsl"] = ours
    if let python {
      info["interpreter"] = python.interpreter.path
      report["pytorch"] = info.merging(["networks": theirs]) { $1 }
    }
    report["other_processes_cpu_percent"] = loads
    let busy = loads.filter { $0.value > 5 }.sorted { $0.key < $1.key }
    if !busy.isEmpty {
      print("WARNING: other processes used the CPU during " + busy.map { String(format: "%@ (%.0f%%)", $0.key, $0.value) }
        .joined(separator: ", ") + " of the machine: those figures are low; rerun on a quiet machine.")
    }

    // 4. The table.
    let rows = BenchTable.rows(ours: ours, theirs: theirs, peak: peakGFLOPs)
    report["comparison"] = rows.map(\.json)
    print("")
    print(BenchTable.render(rows, withPyTorch: comparePytorch))
    if let json {
      let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
      try data.write(to: URL(fileURLWithPath: json))
      print("Wrote \(json)")
    }
  }

  /// Runs a measurement; when other processes used more than --max-load of the CPU meanwhile,
  /// waits for quiet and repeats it (at most --retries times), keeping the least disturbed
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
  /// own) and returns its figures.
  func runChild(_ name: String, warmup: Int, iterations: Int) throws -> [String: Any] {
    let out = FileManager.default.temporaryDirectory
      .appendingPathComponent("aepsl-bench-\(getpid())-\(name).json")
    defer { try? FileManager.default.removeItem(at: out) }
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = ["bench", "engine", "--child", name, "--child-output", out.path,
                   "--threads", "\(compute.threads)", "--seed", "\(compute.seed)",
                   "--warmup", "\(warmup)", "--iterations", "\(iterations)"]
    fflush(nil)  // our progress lines before the child's
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
      throw ValidationError("the \(name) benchmark process failed (status \(p.terminationStatus))")
    }
    let data = try Data(contentsOf: out)
    return try JSONSerialization.jsonObject(with: data) as! [String: Any]
  }
}

extension Dictionary where Key == String, Value == Any {
  /// A number at a path of nested dictionaries (0 when missing).
  func double(_ path: String...) -> Double {
    var node: Any = self
    for key in path {
      guard let d = node as? [String: Any], let next = d[key] else { return 0 }
      node = next
    }
    return (node as? Double) ?? (node as? NSNumber)?.doubleValue ?? 0
  }
}

// MARK: - Networks

/// A network of the benchmark: the backbone, input side, batch and default iteration counts.
struct BenchNetwork {
  let name: String
  let spec: BackboneSpec
  let side: Int
  let batch: Int
  let warmup: Int
  let iterations: Int
  static let classes = 20

  static let all = [
    BenchNetwork(name: "tiny", spec: .tiny, side: 128, batch: 32, warmup: 3, iterations: 20),
    BenchNetwork(name: "largefov", spec: .largeFOV, side: 321, batch: 2, warmup: 1, iterations: 5),
  ]

  static func named(_ name: String) -> BenchNetwork? { all.first { $0.name == name } }

  var inputShape: [Int] { [batch, 3, side, side] }

  /// 2 x multiply-adds of one image's forward pass (backbone and linear layer), in GFLOP.
  var forwardGFLOPPerImage: Double {
    let backbone = Sequential(spec: spec, seed: 0)
    let macs = backbone.multiplyAdds(inputShape: [1, 3, side, side]) + spec.featureChannels * Self.classes
    return 2 * Double(macs) / 1e9
  }

  /// Inference (folded batch norm) then training, in this process; returns the figures.
  func measure(seed: UInt64, warmup: Int, iterations: Int) -> [String: Any] {
    let baseline = BenchMemory.currentRSSMiB()
    let model = Classifier(spec: spec, classes: Self.classes, seed: seed)
    let macs = model.backbone.multiplyAdds(inputShape: inputShape) + batch * spec.featureChannels * Self.classes
    let forwardGFLOP = 2 * Double(macs) / 1e9
    var rng = SeededGenerator(seed: seed).split("bench data")
    let x = Tensor(shape: inputShape)
    for i in 0..<x.count { x.data[i] = rng.nextNormal() }
    let y = Tensor(shape: [batch, Self.classes])
    for i in 0..<y.count { y.data[i] = rng.nextUniform() < 0.5 ? 1 : 0 }

    func timed(_ n: Int, _ body: () -> Void) -> [Double] {
      (0..<n).map { _ in
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
      }
    }
    func figures(_ times: [Double], gflop: Double) -> [String: Any] {
      let median = times.sorted()[times.count / 2]
      let m = times.count % 2 == 0 ? (median + times.sorted()[times.count / 2 - 1]) / 2 : median
      return ["images_per_s": Double(batch) / m, "median_s": m, "iteration_s": times, "gflops": gflop / m]
    }

    // Inference, as the pipeline runs it (the classifier folds batch norm into the
    // convolutions; the first call, a warm-up, builds the folded copy).
    let infer = { _ = model.forward(x, training: false) }
    _ = timed(warmup, infer)
    let inferFigures = figures(timed(iterations, infer), gflop: forwardGFLOP)
    let peakInfer = BenchMemory.peakRSSMiB()

    let sgd = SGD(parameters: model.parameters, learningRate: 1e-3, momentum: 0.9, weightDecay: 5e-4)
    var losses: [Float] = []
    let train = {
      let logits = model.forward(x, training: true)
      let loss = Loss.sigmoidSquaredError(logits: logits, targets: y)
      model.backward(loss.gradient)
      sgd.step()
      losses.append(loss.value)
    }
    _ = timed(warmup, train)
    let trainFigures = figures(timed(iterations, train), gflop: 3 * forwardGFLOP)
    let peakTrain = BenchMemory.peakRSSMiB()

    return [
      "network": name, "batch": batch, "input": inputShape, "threads": ComputeThreads.current,
      "warmup": warmup, "iterations": iterations,
      "forward_gflop_per_image": forwardGFLOP / Double(batch),
      "train": trainFigures, "infer": inferFigures,
      "train_gflops": trainFigures["gflops"]!, "infer_gflops": inferFigures["gflops"]!,
      "rss_mib": ["baseline": baseline, "peak_after_inference": peakInfer, "peak_after_training": peakTrain,
                  "inference_increase": peakInfer - baseline, "training_increase": peakTrain - baseline],
      "loss_first": Double(losses.first ?? .nan), "loss_last": Double(losses.last ?? .nan),
    ]
  }
}

// MARK: - Machine and memory

/// The share of the machine's CPU time that processes other than this one and its children
/// used since creation (from /proc/stat and getrusage): a busy machine makes figures low.
struct BenchLoad {
  let machine: (busy: Double, total: Double)
  let own: Double

  init() {
    machine = Self.machineSeconds()
    own = Self.ownSeconds()
  }

  func othersPercent() -> Double {
    let now = Self.machineSeconds(), ownNow = Self.ownSeconds()
    let total = now.total - machine.total
    guard total > 0 else { return 0 }
    return max(0, 100 * ((now.busy - machine.busy) - (ownNow - own)) / total)
  }

  /// Waits until the machine has been nearly idle (other load at most `maxLoad` percent) for
  /// two consecutive 5-second windows, or until `timeout` seconds have passed.
  static func waitForQuiet(maxLoad: Double, timeout: Double) {
    let start = Date()
    var quiet = 0
    while quiet < 2 && Date().timeIntervalSince(start) < timeout {
      let load = BenchLoad()
      Thread.sleep(forTimeInterval: 5)
      quiet = load.othersPercent() <= maxLoad ? quiet + 1 : 0
    }
  }

  /// Busy and total CPU seconds of the whole machine (all cores), from /proc/stat.
  static func machineSeconds() -> (busy: Double, total: Double) {
    guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
    else { return (0, 0) }
    let v = line.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard v.count >= 8 else { return (0, 0) }
    let total = v[0..<8].reduce(0, +), idle = v[3] + v[4]
    let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
    return ((total - idle) / hz, total / hz)
  }

  /// CPU seconds of this process and its waited-for children.
  static func ownSeconds() -> Double {
    func seconds(_ who: Int32) -> Double {
      var u = rusage()
      getrusage(__rusage_who_t(who), &u)
      return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }
    return seconds(RUSAGE_SELF.rawValue) + seconds(RUSAGE_CHILDREN.rawValue)
  }
}

enum BenchMemory {
  /// Resident set size now, from /proc/self/status.
  static func currentRSSMiB() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kib = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    else { return 0 }
    return kib / 1024
  }

  /// The process's peak resident set size (getrusage; KiB on Linux).
  static func peakRSSMiB() -> Double {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    return Double(u.ru_maxrss) / 1024
  }
}

enum BenchMachine {
  static var cpuLine: String { "\(FMAPeak.cpuModel), \(ComputeThreads.cores) core(s), \(memoryGiB) GiB" }

  static var memoryGiB: Int {
    guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
          let kib = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    else { return 0 }
    return Int((kib / 1024 / 1024).rounded())
  }

  static func description(threads: Int) -> [String: Any] {
    ["cpu": FMAPeak.cpuModel, "cores": ComputeThreads.cores, "memory_gib": memoryGiB,
     "simd": FMAPeak.supportedISAs.map(\.rawValue), "threads": threads]
  }
}

// MARK: - PyTorch

enum BenchPython {
  static let script = "scripts/bench_engine_pytorch.py"

  /// The repository: the first directory holding the script, from the working directory up,
  /// then from the executable's directory up.
  static func repositoryRoot() throws -> URL {
    guard let root = aepsl.repositoryRoot(containing: script) else {
      throw ValidationError("cannot find \(script) from the working directory or the executable; run from the repository")
    }
    return root
  }

  /// A Python with torch and numpy: $AEPSL_PYTHON if set, else .venv-bench/bin/python, else
  /// /opt/aepsl-torch/bin/python; when none of them has torch, creates .venv-bench.
  static func interpreter(root: URL) throws -> URL {
    let venv = root.appendingPathComponent(".venv-bench")
    var candidates: [URL] = []
    if let env = ProcessInfo.processInfo.environment["AEPSL_PYTHON"], !env.isEmpty {
      candidates.append(URL(fileURLWithPath: env))
    } else {
      candidates.append(venv.appendingPathComponent("bin/python"))
      candidates.append(URL(fileURLWithPath: "/opt/aepsl-torch/bin/python"))
    }
    for c in candidates where FileManager.default.isExecutableFile(atPath: c.path) {
      if (try? status(c, ["-c", "import torch, numpy"], quiet: true)) == 0 { return c }
    }
    print("No Python with torch and numpy (tried \(candidates.map(\.path).joined(separator: ", "))):")
    let python = venv.appendingPathComponent("bin/python")
    if !FileManager.default.isExecutableFile(atPath: python.path) {
      print("creating \(venv.path) with `python3 -m venv`")
      guard try status(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-m", "venv", venv.path]) == 0 else {
        throw ValidationError("python3 -m venv \(venv.path) failed (on Debian: apt-get install python3-venv)")
      }
    }
    print("installing torch and numpy into it with `pip install torch numpy` (large download)")
    guard try status(python, ["-m", "pip", "install", "torch", "numpy"]) == 0,
          try status(python, ["-c", "import torch, numpy"], quiet: true) == 0
    else { throw ValidationError("pip install torch numpy into \(venv.path) failed") }
    return python
  }

  static func status(_ exe: URL, _ args: [String], quiet: Bool = false) throws -> Int32 {
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    if quiet {
      p.standardOutput = FileHandle.nullDevice
      p.standardError = FileHandle.nullDevice
    }
    fflush(nil)
    try p.run()
    p.waitUntilExit()
    return p.terminationStatus
  }

  /// Runs the script; returns the JSON object it prints (its last line starting with "{").
  static func run(python: URL, script: URL, arguments: [String]) throws -> [String: Any] {
    let p = Process()
    p.executableURL = python
    p.arguments = [script.path] + arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    fflush(nil)
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw ValidationError("\(script.lastPathComponent) failed (status \(p.terminationStatus))") }
    let text = String(decoding: data, as: UTF8.self)
    guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
          let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    else { throw ValidationError("\(script.lastPathComponent) printed no JSON object") }
    return obj
  }
}

// MARK: - Table

struct BenchRow {
  let figure: String
  let ours: Double
  let theirs: Double?
  let theirLayout: String?
  /// "min": the ratio must be at least `target`; "max": at most.
  let target: (kind: String, value: Double)?
  let format: String

  var ratio: Double? { theirs.map { ours / $0 } }
  var met: Bool? {
    guard let r = ratio, let t = target else { return nil }
    return t.kind == "min" ? r >= t.value : r <= t.value
  }
  var targetText: String {
    guard let t = target else { return "" }
    return String(format: t.kind == "min" ? ">= %.2fx" : "<= %.2fx", t.value)
  }

  var json: [String: Any] {
    var d: [String: Any] = ["figure": figure, "aepsl": ours]
    if let theirs { d["pytorch"] = theirs }
    if let theirLayout { d["pytorch_layout"] = theirLayout }
    if let ratio { d["ratio"] = ratio }
    if target != nil { d["target"] = targetText }
    if let met { d["met"] = met }
    return d
  }
}

enum BenchTable {
  static func rows(ours: [String: [String: Any]], theirs: [String: [String: Any]], peak: Double) -> [BenchRow] {
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

  static func render(_ rows: [BenchRow], withPyTorch: Bool) -> String {
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
