import AEPSLBench
import AEPSLCRF
import AEPSLEngine
import ArgumentParser
import Foundation

/// `aepsl bench`: the benchmarks (AEPSLBench) behind their options.
struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Measure throughput (not part of the tests).",
    subcommands: [BenchEngineCommand.self, BenchCRFCommand.self, BenchAllreduceCommand.self])
}

/// `aepsl bench engine` (`EngineBenchmark`).
struct BenchEngineCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "engine",
    abstract: "Engine throughput (images/s, GFLOP/s, peak memory), optionally against PyTorch.",
    discussion: """
      Networks: tiny (128x128, batch 32) and largefov (321x321, batch 2), each a classifier \
      (backbone, global average pooling, 20-class linear layer). Training = forward, squared \
      error of sigmoid scores, backward, SGD step (momentum 0.9, weight decay 5e-4); PSL step = \
      the same for the segmenter (1x1 score layer to 21 maps and the classification branch) \
      with train-seg's loss (classification + CE against a mask + CE against the online mask); \
      inference = forward with batch norm folded into the convolutions, same batch. Throughput \
      is the batch over the median iteration time. FLOPs: 2 x multiply-adds of a forward pass; \
      a training step counts 3 forward passes. Each network runs in a child process; its \
      memory figure is the peak RSS (getrusage) minus the RSS before the network was built. \
      The FMA peak runs first, in the same invocation. aepsl runs float32 only. With \
      --compare-pytorch, `scripts/bench_reference.py engine` runs the same networks and steps \
      in PyTorch with the same thread count: float32 in the default and channels_last layouts \
      (inference with batch norm folded by fuse_conv_bn_eval), and bf16 autocast where the CPU \
      has native bf16 (avx512_bf16 or amx_bf16; elsewhere the table says so and has no bf16 \
      rows). It runs itself with $AEPSL_PYTHON, else .venv-bench/bin/python, else \
      /opt/aepsl-torch/bin/python, and creates .venv-bench with torch and numpy when none of \
      them has torch.
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

  @OptionGroup var json: JSONOutputOption

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
    if let warmup { try Check.atLeast(0, warmup, "--warmup") }
    if let iterations { try Check.atLeast(1, iterations, "--iterations") }
    try Check.atLeast(0, retries, "--retries")
  }

  var networkNames: [String] { networks.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

  func run() throws {
    compute.apply()
    if let child, let childOutput {
      try EngineBenchmark.measureChild(network: child, seed: compute.seed, warmup: warmup ?? 0, iterations: iterations ?? 1,
                                       output: URL(fileURLWithPath: childOutput))
      return
    }
    let (threads, seed) = (compute.threads, compute.seed)
    let benchmark = EngineBenchmark(
      networks: networkNames, warmup: warmup, iterations: iterations, comparePyTorch: comparePytorch, skipPeak: skipPeak,
      maxLoad: maxLoad, retries: retries, seed: seed, json: json.path
    ) { name, warmup, iterations, output in
      ["bench", "engine", "--child", name, "--child-output", output, "--threads", "\(threads)", "--seed", "\(seed)",
       "--warmup", "\(warmup)", "--iterations", "\(iterations)"]
    }
    try benchmark.run()
  }
}

/// `aepsl bench crf` (`CRFBenchmark`).
struct BenchCRFCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "crf",
    abstract: "Dense CRF time (10 mean-field iterations, 500x375, 21 classes), optionally against pydensecrf.",
    discussion: """
      The input is a synthetic scene (shapes of 20 classes on a textured background) with \
      probabilities like a stride-8 network's: noisy class scores on a 1/8 grid, upsampled \
      bilinearly, softmax; or --image and --probs. Figures are medians over --repeats runs: \
      setup (unary and lattices), inference (the mean-field iterations and the argmax) and \
      their sum. With --compare-pydensecrf, `scripts/bench_reference.py crf` runs pydensecrf \
      (DenseCRF2D, unary_from_softmax, addPairwiseGaussian, addPairwiseBilateral, inference; \
      one thread) on the same image and probabilities with the same parameters; it installs \
      pydensecrf2 (or pydensecrf) and numpy into .venv-crf when they are missing. Reported: the \
      speed ratio pydensecrf/aepsl (targets: 3x on one thread, 5x on two or more) and the \
      fraction of pixels with the same label (target: 99.9%). The hot loops run the fastest \
      code the CPU has (AVX2 and FMA where present, else portable SIMD).
      """)

  @OptionGroup var crf: CRFOptions

  @OptionGroup var threads: CRFThreadOptions

  @Option(help: "Seed of the synthetic scene.")
  var seed: UInt64 = 0

  @Option(help: "Image width of the synthetic scene.")
  var width: Int = 500

  @Option(help: "Image height of the synthetic scene.")
  var height: Int = 375

  @Option(help: "Classes of the synthetic scene (background included).")
  var classes: Int = 21

  @Option(help: "A real image instead of the synthetic scene (with --probs).")
  var image: String?

  @Option(help: "Its class probabilities, .npy [classes, height, width].")
  var probs: String?

  @Option(help: "Timed runs; the figures are medians.")
  var repeats: Int = 5

  @Flag(help: "Also run pydensecrf on the same input and report the ratio and label agreement.")
  var comparePydensecrf = false

  @Flag(help: """
    Also time the portable SIMD code (SSE2) beside the fastest this CPU runs, runs interleaved, \
    and report their label agreement.
    """)
  var comparePortable = false

  @OptionGroup var json: JSONOutputOption

  func validate() throws {
    guard (image == nil) == (probs == nil) else { throw ValidationError("--image and --probs go together.") }
    guard width >= 8 && height >= 8 else { throw ValidationError("--width and --height must be at least 8.") }
    guard classes >= 2 && classes <= 256 else { throw ValidationError("--classes must be in 2...256.") }
    try Check.atLeast(1, repeats, "--repeats")
  }

  func run() throws {
    let scene = try image.map { try CRFBenchmark.scene(image: $0, probabilities: probs!) }
      ?? CRFScene.synthetic(width: width, height: height, labels: classes, seed: seed)
    try CRFBenchmark(scene: scene, parameters: crf.parameters, threads: threads.threads, repeats: repeats,
                     comparePydensecrf: comparePydensecrf, comparePortable: comparePortable, json: json.path).run()
  }
}

/// `aepsl bench allreduce` (`AllreduceBenchmark`).
struct BenchAllreduceCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "allreduce",
    abstract: "Time one gradient allreduce against one training step; project data-parallel scaling (run under mpirun).",
    discussion: """
      Under `mpirun -np K`, times the MPI_Allreduce of one segmenter's gradients (every parameter \
      and a few loss values in one contiguous buffer, as train-seg and erase do) over the K ranks, \
      then one training step of the same network on rank 0 alone (the other ranks wait without \
      spinning), and prints the projected throughput on N machines for 10 and 25 Gbit/s links \
      with a ring allreduce: 2 (N - 1) / N x bytes / bandwidth + 2 (N - 1) x latency. Alone \
      (no mpirun) only the step is timed. Rank 0 prints the figures and writes --json. BENCHMARKS.md: measured figures and the projection.
      """)

  @Option(help: "Network: largefov or tiny.")
  var net = "largefov"

  @Option(help: "Images per rank in the timed training step.")
  var batch = 2

  @Option(help: "Input side of the training step. Default: 321 for largefov, 128 for tiny.")
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

  @OptionGroup var json: JSONOutputOption

  @OptionGroup var compute: ComputeOptions

  func validate() throws {
    try Check.network(net)
    guard batch >= 1, allreduces >= 1, steps >= 1 else { throw ValidationError("--batch, --allreduces and --steps must be at least 1.") }
  }

  func run() throws {
    compute.apply()
    let benchmark = AllreduceBenchmark(net: net, batch: batch, side: side, allreduces: allreduces, steps: steps,
                                       projectStep: projectStep, latency: latency, waitQuiet: waitQuiet,
                                       seed: compute.seed, json: json.path)
    try asJob { communicator in try benchmark.measure(communicator) }
  }
}
