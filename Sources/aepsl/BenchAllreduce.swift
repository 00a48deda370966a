import AEPSLDistributed
import AEPSLEngine
import AEPSLMethod
import ArgumentParser
import Foundation

/// `aepsl bench allreduce`: the time of one allreduce of a network's gradients against the
/// time of one training step, and from them the projected scaling over N machines.
struct BenchAllreduce: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "allreduce",
    abstract: "Time one gradient allreduce against one training step; project data-parallel scaling (run under mpirun).",
    discussion: """
      Under `mpirun -np K`, times the MPI_Allreduce of one segmenter's gradients (every parameter \
      and a few loss values in one contiguous buffer, as train-seg and erase do) over the K ranks, \
      then one training step of the same network on rank 0 alone (the other ranks wait without \
      spinning), and prints the projected throughput on N machines for 10 and 25 Gbit/s links \
      with a ring allreduce: 2 (N - 1) / N x bytes / bandwidth + 2 (N - 1) x latency. Alone \
      (no mpirun) only the step is timed. BENCHMARKS.md: measured figures and the projection.
      """)

  @Option(help: "Network: largefov or tiny.")
  var net = "largefov"

  @Option(help: "Images per rank in the timed training step.")
  var batch = 2

  @Option(help: "Input side of the training step (largefov: 321, tiny: 128).")
  var side: Int?

  @Option(help: "Timed allreduces (after one warm-up).")
  var allreduces = 10

  @Option(help: "Timed training steps (after one warm-up).")
  var steps = 3

  @Option(help: "Step time for the projection, in seconds (default: the measured one), e.g. a quiet or faster machine's.")
  var projectStep: Double?

  @Option(help: "Per-message latency for the projection, in microseconds (TCP over Ethernet: tens).")
  var latency: Double = 50

  @Option(help: "Seconds rank 0 waits at most for the machine to be quiet (others' load at most 10%) before measuring.")
  var waitQuiet: Double = 120

  @Option(help: "Write the figures to this JSON file (rank 0).")
  var json: String?

  @OptionGroup var compute: ComputeOptions

  func validate() throws {
    guard BackboneSpec.named(net) != nil else { throw ValidationError("Unknown --net '\(net)'; choose tiny or largefov.") }
    guard batch >= 1, allreduces >= 1, steps >= 1 else { throw ValidationError("--batch, --allreduces and --steps must be at least 1.") }
  }

  func run() throws {
    compute.apply()
    try asJob { communicator in try measure(communicator) }
  }

  static func median(_ v: [Double]) -> Double {
    let s = v.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
  }

  func measure(_ communicator: Communicator) throws {
    let spec = BackboneSpec.named(net)!
    let side = side ?? (net == "largefov" ? 321 : 128)
    let classes = 20
    let model = Segmenter(spec: spec, classes: classes, seed: compute.seed)
    let parallel = DataParallel(communicator: communicator, parameters: model.parameters, extras: 6)
    let bytes = parallel.count * MemoryLayout<Float>.stride
    for p in model.parameters { p.grad.fill(1) }
    if communicator.isRoot && waitQuiet > 0 { BenchLoad.waitForQuiet(maxLoad: 10, timeout: waitQuiet) }
    communicator.barrier()

    // The allreduce, every rank together; a barrier before each so that one rank's lateness
    // is not counted as transfer time.
    var reduceTimes: [Double] = []
    let reduceLoad = BenchLoad()
    if communicator.isDistributed {
      for i in 0...allreduces {
        communicator.barrier()
        let start = DispatchTime.now().uptimeNanoseconds
        _ = parallel.sum([Float](repeating: 1, count: 6))
        let t = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if i > 0 { reduceTimes.append(t) }
      }
    }

    // One training step on rank 0 alone (on a shared machine the ranks would compete for cores).
    // Packing alone: copying every gradient into one buffer and back, as `DataParallel.sum`
    // does around the MPI call (a per-step cost on every machine, whatever the link).
    var packTimes: [Double] = []
    let staging = UnsafeMutablePointer<Float>.allocate(capacity: parallel.count)
    defer { staging.deallocate() }
    for i in 0...allreduces {
      let start = DispatchTime.now().uptimeNanoseconds
      var o = 0
      for p in model.parameters { (staging + o).update(from: p.grad.data, count: p.grad.count); o += p.grad.count }
      o = 0
      for p in model.parameters { p.grad.data.update(from: staging + o, count: p.grad.count); o += p.grad.count }
      if i > 0 { packTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
    }
    let pack = Self.median(packTimes)
    var stepTimes: [Double] = []
    let reduceOthers = reduceLoad.othersPercent()
    let stepLoad = BenchLoad()
    if communicator.isRoot {
      var rng = SeededGenerator(seed: compute.seed).split("bench allreduce data")
      let x = Tensor(shape: [batch, 3, side, side])
      for i in 0..<x.count { x.data[i] = rng.nextNormal() }
      let h = model.backbone.outputShape([batch, 3, side, side])[2]
      let w = model.backbone.outputShape([batch, 3, side, side])[3]
      let labels = (0..<(batch * h * w)).map { _ in UInt8(rng.next() % UInt64(classes + 1)) }
      let targets = Tensor(shape: [batch, classes])
      for i in 0..<targets.count { targets.data[i] = rng.nextUniform() < 0.2 ? 1 : 0 }
      let sgd = SGD(parameters: model.parameters, learningRate: 1e-4)
      let loss = SegmentationLoss(prohibitive: true)
      for i in 0...steps {
        let start = DispatchTime.now().uptimeNanoseconds
        let (scores, logits) = model.forward(x, training: true)
        let r = loss(scores: scores, logits: logits, targets: targets, mask: labels,
                     imageLabels: (0..<batch).map { _ in [0, 1] })
        model.backward(dScores: r.dScores, dLogits: r.dLogits)
        sgd.step()
        let t = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if i > 0 { stepTimes.append(t) }
      }
    }
    let stepOthers = stepLoad.othersPercent()
    communicator.barrier()
    guard communicator.isRoot else { return }

    let measuredStep = Self.median(stepTimes)
    let step = projectStep ?? measuredStep
    let reduce = reduceTimes.isEmpty ? nil : Self.median(reduceTimes)
    print(String(format: "%@: %d parameters + 6 values = %.1f MiB of gradients per allreduce", net,
                 parallel.count - 6, Double(bytes) / 1_048_576))
    if let reduce {
      print(String(format: "allreduce over %d ranks on this machine: median %.1f ms (%d timed; %.2f GB/s of buffer)",
                   communicator.size, reduce * 1000, reduceTimes.count, Double(bytes) / reduce / 1e9))
    }
    print(String(format: "packing the gradients into one buffer and back: median %.1f ms", pack * 1000))
    print(String(format: "training step, batch %d at %dx%d, %d threads: median %.3f s (%d timed) = %.2f images/s",
                 batch, side, side, ComputeThreads.current, measuredStep, stepTimes.count, Double(batch) / measuredStep))
    if let reduce { print(String(format: "allreduce / step: %.1f%%", 100 * reduce / measuredStep)) }
    // The other ranks count as "others" here: during the step they poll a barrier (little).
    print(reduce == nil ? String(format: "CPU used by other processes: %.0f%% during the steps", stepOthers)
            : String(format: "CPU used by other processes: %.0f%% during the allreduces, %.0f%% during the steps",
                     reduceOthers, stepOthers))

    // Projection (not a measurement): a ring allreduce moves 2 (N - 1) / N of the buffer
    // through each machine's link, in 2 (N - 1) messages, plus the packing measured above;
    // no overlap with backward assumed.
    print(String(format: "\nProjection (ring allreduce + packing, no overlap, a step of %.3f s per machine%@; not measured on a cluster):",
                 step, projectStep == nil ? " as measured" : " as given"))
    print("| machines | link | allreduce (ms) | step + allreduce (s) | images/s | speed-up | efficiency |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    var projection: [[String: Any]] = []
    for gbit in [10.0, 25.0] {
      for n in [1, 2, 4, 8, 16, 32] {
        let comm = n == 1 ? 0 : 2 * Double(n - 1) / Double(n) * Double(bytes) * 8 / (gbit * 1e9)
          + 2 * Double(n - 1) * latency * 1e-6 + pack
        let total = step + comm
        let rate = Double(n * batch) / total
        let speedup = rate / (Double(batch) / step)
        print(String(format: "| %d | %.0f Gbit/s | %.0f | %.3f | %.2f | %.2fx | %.0f%% |", n, gbit, comm * 1000, total, rate,
                     speedup, 100 * speedup / Double(n)))
        projection.append(["machines": n, "gbit_per_s": gbit, "allreduce_s": comm, "images_per_s": rate, "speedup": speedup])
      }
    }
    if let json {
      var figures: [String: Any] = [
        "network": net, "floats": parallel.count, "bytes": bytes, "ranks": communicator.size, "batch_per_rank": batch,
        "side": side, "threads": ComputeThreads.current, "step_s": stepTimes, "step_median_s": measuredStep,
        "projected_step_s": step,
        "pack_median_s": pack,
        "latency_us_assumed": latency, "projection": projection,
        "others_cpu_percent": ["allreduce": reduceOthers, "step": stepOthers],
      ]
      if let reduce { figures["allreduce_s"] = reduceTimes; figures["allreduce_median_s"] = reduce }
      let data = try JSONSerialization.data(withJSONObject: figures, options: [.prettyPrinted, .sortedKeys])
      try data.write(to: URL(fileURLWithPath: json))
    }
  }
}
