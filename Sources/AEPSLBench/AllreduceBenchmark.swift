import AEPSLDistributed
import AEPSLEngine
import AEPSLFiles
import AEPSLMethod
import Foundation

/// `aepsl bench allreduce`: the time of one allreduce of a network's gradients against the
/// time of one training step, and from them the projected scaling over N machines
/// (BENCHMARKS.md: measured figures and the projection).
public struct AllreduceBenchmark {
  public var net: String
  /// Images per rank in the timed training step.
  public var batch: Int
  /// Input side of the training step; nil: 321 for largefov, 128 for tiny.
  public var side: Int?
  public var allreduces: Int
  public var steps: Int
  /// Step time for the projection, in seconds; nil: the measured one.
  public var projectStep: Double?
  /// Per-message latency for the projection, in microseconds.
  public var latency: Double
  /// Seconds rank 0 waits at most for the machine to be quiet before measuring.
  public var waitQuiet: Double
  public var seed: UInt64
  /// Where rank 0 writes the figures as JSON.
  public var json: String?

  public init(net: String, batch: Int = 2, side: Int? = nil, allreduces: Int = 10, steps: Int = 3, projectStep: Double? = nil,
              latency: Double = 50, waitQuiet: Double = 120, seed: UInt64 = 0, json: String? = nil) {
    (self.net, self.batch, self.side, self.allreduces, self.steps) = (net, batch, side, allreduces, steps)
    (self.projectStep, self.latency, self.waitQuiet, self.seed, self.json) = (projectStep, latency, waitQuiet, seed, json)
  }

  public func measure(_ communicator: Communicator) throws {
    guard let spec = BackboneSpec.named(net) else {
      throw AEPSLError(kind: .badArgument, problem: "unknown network '\(net)'", fix: "Choose tiny or largefov.")
    }
    let side = side ?? (net == "largefov" ? 321 : 128)
    let model = Segmenter(spec: spec, classes: Self.classes, seed: seed)
    let parallel = DataParallel(communicator: communicator, parameters: model.parameters, extras: 6)
    for p in model.parameters { p.grad.fill(1) }
    if communicator.isRoot && waitQuiet > 0 { BenchLoad.waitForQuiet(maxLoad: 10, timeout: waitQuiet) }
    communicator.barrier()

    var figures = Figures(floats: parallel.count)
    let reduceLoad = BenchLoad()
    if communicator.isDistributed { figures.reduceTimes = timeAllreduces(parallel, communicator) }
    figures.pack = median(timePacking(model.parameters, count: parallel.count))
    figures.reduceOthers = reduceLoad.othersPercent()
    let stepLoad = BenchLoad()
    // One training step on rank 0 alone (on a shared machine the ranks would compete for cores).
    if communicator.isRoot { figures.stepTimes = timeSteps(model, side: side) }
    figures.stepOthers = stepLoad.othersPercent()
    communicator.barrier()
    guard communicator.isRoot else { return }
    try report(figures, side: side, ranks: communicator.size)
  }

  static let classes = 20

  /// What one run measured.
  struct Figures {
    var floats: Int
    var reduceTimes: [Double] = []
    var pack = 0.0
    var stepTimes: [Double] = []
    var reduceOthers = 0.0
    var stepOthers = 0.0
    var bytes: Int { floats * MemoryLayout<Float>.stride }
    var reduce: Double? { reduceTimes.isEmpty ? nil : median(reduceTimes) }
  }

  /// The allreduce, every rank together; a barrier before each so that one rank's lateness
  /// is not counted as transfer time.
  func timeAllreduces(_ parallel: DataParallel, _ communicator: Communicator) -> [Double] {
    var times: [Double] = []
    for i in 0...allreduces {
      communicator.barrier()
      let start = DispatchTime.now().uptimeNanoseconds
      _ = parallel.sum([Float](repeating: 1, count: 6))
      if i > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
    }
    return times
  }

  /// Packing alone: copying every gradient into one buffer and back, as `DataParallel.sum`
  /// does around the MPI call (a per-step cost on every machine, whatever the link).
  func timePacking(_ parameters: [Parameter], count: Int) -> [Double] {
    let staging = UnsafeMutablePointer<Float>.allocate(capacity: count)
    defer { staging.deallocate() }
    var times: [Double] = []
    for i in 0...allreduces {
      let start = DispatchTime.now().uptimeNanoseconds
      var o = 0
      for p in parameters { (staging + o).update(from: p.grad.data, count: p.grad.count); o += p.grad.count }
      o = 0
      for p in parameters { p.grad.data.update(from: staging + o, count: p.grad.count); o += p.grad.count }
      if i > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
    }
    return times
  }

  /// Training steps of the segmenter (PSL loss) on random data, after one warm-up.
  func timeSteps(_ model: Segmenter, side: Int) -> [Double] {
    var rng = SeededGenerator(seed: seed).split("bench allreduce data")
    let x = Tensor(shape: [batch, 3, side, side])
    for i in 0..<x.count { x.data[i] = rng.nextNormal() }
    let h = model.backbone.outputShape([batch, 3, side, side])[2]
    let w = model.backbone.outputShape([batch, 3, side, side])[3]
    let labels = (0..<(batch * h * w)).map { _ in UInt8(rng.next() % UInt64(Self.classes + 1)) }
    let targets = Tensor(shape: [batch, Self.classes])
    for i in 0..<targets.count { targets.data[i] = rng.nextUniform() < 0.2 ? 1 : 0 }
    let sgd = SGD(parameters: model.parameters, learningRate: 1e-4)
    let loss = SegmentationLoss(prohibitive: true)
    var times: [Double] = []
    for i in 0...steps {
      let start = DispatchTime.now().uptimeNanoseconds
      let (scores, logits) = model.forward(x, training: true)
      let r = loss(scores: scores, logits: logits, targets: targets, mask: labels,
                   imageLabels: (0..<batch).map { _ in [0, 1] })
      model.backward(dScores: r.dScores, dLogits: r.dLogits)
      sgd.step()
      if i > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
    }
    return times
  }

  /// Prints the measurements and the projection; writes the JSON file when asked.
  func report(_ f: Figures, side: Int, ranks: Int) throws {
    let measuredStep = median(f.stepTimes)
    print(String(format: "%@: %d parameters + 6 values = %.1f MiB of gradients per allreduce", net,
                 f.floats - 6, Double(f.bytes) / 1_048_576))
    if let reduce = f.reduce {
      print(String(format: "allreduce over %d ranks on this machine: median %.1f ms (%d timed; %.2f GB/s of buffer)",
                   ranks, reduce * 1000, f.reduceTimes.count, Double(f.bytes) / reduce / 1e9))
    }
    print(String(format: "packing the gradients into one buffer and back: median %.1f ms", f.pack * 1000))
    print(String(format: "training step, batch %d at %dx%d, %d threads: median %.3f s (%d timed) = %.2f images/s",
                 batch, side, side, ComputeThreads.current, measuredStep, f.stepTimes.count, Double(batch) / measuredStep))
    if let reduce = f.reduce { print(String(format: "allreduce / step: %.1f%%", 100 * reduce / measuredStep)) }
    // The other ranks count as "others" here: during the step they poll a barrier (little).
    print(f.reduce == nil ? String(format: "CPU used by other processes: %.0f%% during the steps", f.stepOthers)
            : String(format: "CPU used by other processes: %.0f%% during the allreduces, %.0f%% during the steps",
                     f.reduceOthers, f.stepOthers))
    let projection = project(f, step: projectStep ?? measuredStep)
    guard let json else { return }
    var figures: [String: Any] = [
      "network": net, "floats": f.floats, "bytes": f.bytes, "ranks": ranks, "batch_per_rank": batch,
      "side": side, "threads": ComputeThreads.current, "step_s": f.stepTimes, "step_median_s": measuredStep,
      "projected_step_s": projectStep ?? measuredStep, "pack_median_s": f.pack,
      "latency_us_assumed": latency, "projection": projection,
      "others_cpu_percent": ["allreduce": f.reduceOthers, "step": f.stepOthers],
    ]
    if let reduce = f.reduce { figures["allreduce_s"] = f.reduceTimes; figures["allreduce_median_s"] = reduce }
    try writeFileAtomically(JSONSerialization.data(withJSONObject: figures, options: [.prettyPrinted, .sortedKeys]),
                            to: URL(fileURLWithPath: json))
  }

  /// Projection (not a measurement): a ring allreduce moves 2 (N - 1) / N of the buffer
  /// through each machine's link, in 2 (N - 1) messages, plus the packing measured; no
  /// overlap with backward assumed. Prints a Markdown table and returns its rows.
  func project(_ f: Figures, step: Double) -> [[String: Any]] {
    print(String(format: "\nProjection (ring allreduce + packing, no overlap, a step of %.3f s per machine%@; not measured on a cluster):",
                 step, projectStep == nil ? " as measured" : " as given"))
    print("| machines | link | allreduce (ms) | step + allreduce (s) | images/s | speed-up | efficiency |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    var projection: [[String: Any]] = []
    for gbit in [10.0, 25.0] {
      for n in [1, 2, 4, 8, 16, 32] {
        let comm = n == 1 ? 0 : 2 * Double(n - 1) / Double(n) * Double(f.bytes) * 8 / (gbit * 1e9)
          + 2 * Double(n - 1) * latency * 1e-6 + f.pack
        let total = step + comm
        let rate = Double(n * batch) / total
        let speedup = rate / (Double(batch) / step)
        print(String(format: "| %d | %.0f Gbit/s | %.0f | %.3f | %.2f | %.2fx | %.0f%% |", n, gbit, comm * 1000, total, rate,
                     speedup, 100 * speedup / Double(n)))
        projection.append(["machines": n, "gbit_per_s": gbit, "allreduce_s": comm, "images_per_s": rate, "speedup": speedup])
      }
    }
    return projection
  }
}
