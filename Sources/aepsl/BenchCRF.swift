import AEPSLCRF
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `aepsl bench crf`: the dense CRF on a 500x375 image with 21 classes, optionally against
/// pydensecrf on the same image and unaries in the same invocation (BENCHMARKS.md).
struct BenchCRF: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "crf",
    abstract: "Dense CRF time (10 mean-field iterations, 500x375, 21 classes), optionally against pydensecrf.",
    discussion: """
      The input is a synthetic scene (shapes of 20 classes on a textured background) with \
      probabilities like a stride-8 network's: noisy class scores on a 1/8 grid, upsampled \
      bilinearly, softmax; or --image and --probs. Figures are medians over --repeats runs: \
      setup (unary and lattices), inference (the mean-field iterations and the argmax) and \
      their sum. With --compare-pydensecrf, scripts/bench_crf_pydensecrf.py runs pydensecrf \
      (DenseCRF2D, unary_from_softmax, addPairwiseGaussian, addPairwiseBilateral, inference; \
      one thread) on the same image and probabilities with the same parameters; it installs \
      pydensecrf2 (or pydensecrf) and numpy into .venv-crf when they are missing. Reported: the \
      speed ratio pydensecrf/aepsl and the fraction of pixels with the same label.
      """)

  @OptionGroup var crf: CRFOptions

  @Option(help: "Threads for the CRF (pydensecrf always runs on one). Default: all cores.")
  var threads: Int = ProcessInfo.processInfo.activeProcessorCount

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

  @Option(help: "Write the figures to this JSON file.")
  var json: String?

  func validate() throws {
    guard (image == nil) == (probs == nil) else { throw ValidationError("--image and --probs go together.") }
    guard width >= 8 && height >= 8 else { throw ValidationError("--width and --height must be at least 8.") }
    guard classes >= 2 && classes <= 256 else { throw ValidationError("--classes must be in 2...256.") }
    guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1.") }
    guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads).") }
  }

  func run() throws {
    let parameters = crf.parameters
    let scene: CRFScene
    if let image, let probs {
      let picture = try Image(contentsOf: URL(fileURLWithPath: image), colorMode: .rgb)
      let tensor = try NumPyArray.read(contentsOf: URL(fileURLWithPath: probs))
      let (labels, values) = try CRFInput.probabilities(tensor, file: probs, width: picture.width, height: picture.height)
      scene = CRFScene(width: picture.width, height: picture.height, labels: labels, image: picture.pixels,
                       probabilities: values, truth: nil, name: image)
    } else {
      scene = CRFScene.synthetic(width: width, height: height, labels: classes, seed: seed)
    }
    print("aepsl bench crf: \(scene.name), \(scene.width)x\(scene.height), \(scene.labels) classes, "
          + "\(parameters.iterations) iterations, \(threads) thread(s), gaussian filter \(parameters.gaussianFilter)")

    var setup: [Double] = [], inference: [Double] = []
    var labels: [Int32] = []
    var latticeVertices: [Int] = []
    for _ in 0..<(repeats + 1) {
      let t0 = DispatchTime.now().uptimeNanoseconds
      let model = try DenseCRF(image: scene.image, width: scene.width, height: scene.height,
                               probabilities: scene.probabilities, labels: scene.labels,
                               parameters: parameters, threads: threads)
      let t1 = DispatchTime.now().uptimeNanoseconds
      labels = model.labelMap(iterations: parameters.iterations)
      let t2 = DispatchTime.now().uptimeNanoseconds
      setup.append(Double(t1 - t0) / 1e6)
      inference.append(Double(t2 - t1) / 1e6)
      latticeVertices = model.latticeVertexCounts
    }
    // The first run warms up (page faults, Dispatch's threads): drop it.
    setup.removeFirst()
    inference.removeFirst()
    let total = zip(setup, inference).map { $0 + $1 }
    var report: [String: Any] = [
      "input": scene.name, "width": scene.width, "height": scene.height, "classes": scene.labels,
      "threads": threads, "iterations": parameters.iterations, "repeats": repeats,
      "gaussian_filter": parameters.gaussianFilter.rawValue, "lattice_vertices": latticeVertices,
      "aepsl_ms": ["setup": median(setup), "inference": median(inference), "total": median(total)],
    ]
    print(String(format: "aepsl:      setup %7.1f ms   inference %7.1f ms   total %7.1f ms   (lattice vertices %@)",
                 median(setup), median(inference), median(total),
                 latticeVertices.map(String.init).joined(separator: ", ")))
    let unaryArgmax = CRFScene.argmax(scene.probabilities, labels: scene.labels, pixels: scene.width * scene.height)
    let changed = fraction(labels, unaryArgmax, equal: false)
    print(String(format: "            the CRF changed %.2f%% of the labels of the unary argmax", 100 * changed))
    report["changed_from_unary"] = changed
    if let truth = scene.truth {
      let before = fraction(unaryArgmax, truth, equal: true), after = fraction(labels, truth, equal: true)
      print(String(format: "            pixel accuracy on the synthetic truth: unary %.2f%%, CRF %.2f%%",
                   100 * before, 100 * after))
      report["accuracy"] = ["unary": before, "crf": after]
    }

    if comparePydensecrf {
      fflush(nil)  // our lines first, then the script's
      let theirs = try runPydensecrf(scene: scene, parameters: parameters.forImage(width: scene.width, height: scene.height))
      let agreement = fraction(labels, theirs.labels, equal: true)
      let ratio = theirs.total / median(total)
      print(String(format: "pydensecrf: setup %7.1f ms   inference %7.1f ms   total %7.1f ms   (%@, 1 thread)",
                   theirs.setup, theirs.inference, theirs.total, theirs.package))
      print(String(format: "ratio pydensecrf/aepsl: total %.2fx (target >= 3x: %@), inference %.2fx; same label: %.3f%% of pixels (target >= 99%%: %@)",
                   ratio, ratio >= 3 ? "met" : "NOT met", theirs.inference / median(inference),
                   100 * agreement, agreement >= 0.99 ? "met" : "NOT met"))
      report["pydensecrf_ms"] = ["setup": theirs.setup, "inference": theirs.inference, "total": theirs.total]
      report["pydensecrf_package"] = theirs.package
      report["ratio_total"] = ratio
      report["ratio_inference"] = theirs.inference / median(inference)
      report["label_agreement"] = agreement
    }
    if let json {
      let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
      try data.write(to: URL(fileURLWithPath: json))
    }
  }

  private func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
  }

  private func fraction(_ a: [Int32], _ b: [Int32], equal: Bool) -> Double {
    guard a.count == b.count, !a.isEmpty else { return 0 }
    let same = zip(a, b).reduce(0) { $0 + ($1.0 == $1.1 ? 1 : 0) }
    return Double(equal ? same : a.count - same) / Double(a.count)
  }

  private struct TheirResult { let setup, inference, total: Double; let labels: [Int32]; let package: String }

  private func runPydensecrf(scene: CRFScene, parameters: CRFParameters) throws -> TheirResult {
    let root = try CRFBenchPython.repositoryRoot()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-bench-crf-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let imageFile = dir.appendingPathComponent("image.npy"), probsFile = dir.appendingPathComponent("probs.npy")
    let labelsFile = dir.appendingPathComponent("labels.npy")
    try NumPyArray.write(scene.image.map { Float($0) }, shape: [scene.height, scene.width, 3], to: imageFile)
    try NumPyArray.write(scene.probabilities, shape: [scene.labels, scene.height, scene.width], to: probsFile)
    let arguments = [
      "--image", imageFile.path, "--probs", probsFile.path, "--out", labelsFile.path,
      "--repeats", String(repeats), "--iterations", String(parameters.iterations),
      "--gaussian-sxy", "\(parameters.gaussianSXY)", "--gaussian-weight", "\(parameters.gaussianWeight)",
      "--bilateral-sxy", "\(parameters.bilateralSXY)", "--bilateral-srgb", "\(parameters.bilateralSRGB)",
      "--bilateral-weight", "\(parameters.bilateralWeight)", "--probability-floor", "\(parameters.probabilityFloor)",
      "--normalization", parameters.normalization.rawValue,
    ]
    let result = try CRFBenchPython.run(script: root.appendingPathComponent(CRFBenchPython.script), arguments: arguments)
    guard let ms = result["ms"] as? [String: Double], let setup = ms["setup"], let inference = ms["inference"],
          let total = ms["total"]
    else { throw AEPSLError(file: CRFBenchPython.script, problem: "printed no timings", fix: "Run it by hand to see what it printed.") }
    let labels = try NumPyArray.read(contentsOf: labelsFile).values.map { Int32($0) }
    guard labels.count == scene.width * scene.height else {
      throw AEPSLError(file: labelsFile.path, problem: "holds \(labels.count) labels, expected \(scene.width * scene.height)",
                       fix: "Check \(CRFBenchPython.script) against this version of aepsl.")
    }
    return TheirResult(setup: setup, inference: inference, total: total, labels: labels,
                       package: result["package"] as? String ?? "pydensecrf")
  }
}

enum CRFBenchPython {
  static let script = "scripts/bench_crf_pydensecrf.py"

  /// The repository: the first directory holding the script, from the working directory up,
  /// then from the executable's directory up.
  static func repositoryRoot() throws -> URL {
    guard let root = aepsl.repositoryRoot(containing: script) else {
      throw AEPSLError(kind: .missingFile, file: script, problem: "not found from the working directory or the executable",
                       fix: "Run from the repository.")
    }
    return root
  }

  /// Runs the script with python3 (it re-runs itself inside .venv-crf, creating it if
  /// needed); returns the JSON object it prints last.
  static func run(script: URL, arguments: [String]) throws -> [String: Any] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", script.path] + arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
      throw AEPSLError(kind: .environment, file: script.path, problem: "failed (status \(p.terminationStatus))",
                       fix: "See its messages above.")
    }
    let text = String(decoding: data, as: UTF8.self)
    guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
          let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    else { throw AEPSLError(file: script.path, problem: "printed no JSON object", fix: "Run it by hand to see what it printed.") }
    return object
  }
}

/// An image with class probabilities for the benchmark.
struct CRFScene {
  let width: Int
  let height: Int
  let labels: Int
  /// RGB bytes, [height][width][3].
  let image: [UInt8]
  /// [labels][height][width].
  let probabilities: [Float]
  /// The true class of every pixel (synthetic scenes only).
  let truth: [Int32]?
  let name: String

  /// Ellipses and rectangles of classes 1..<labels over a background of class 0, each class
  /// with its own colour, with gradients and pixel noise; probabilities from noisy class
  /// scores on a grid 8 times coarser (like a stride-8 network), bilinearly upsampled,
  /// softmax. Deterministic for a seed.
  static func synthetic(width: Int, height: Int, labels: Int, seed: UInt64) -> CRFScene {
    var rng = SplitMix(state: seed &+ 0x5EED)
    let n = width * height
    var truth = [Int32](repeating: 0, count: n)
    var palette: [(Float, Float, Float)] = []
    for _ in 0..<labels { palette.append((rng.uniform() * 255, rng.uniform() * 255, rng.uniform() * 255)) }
    let shapes = 14
    for s in 0..<shapes {
      let label = Int32(1 + (s % (labels - 1)))
      let cx = rng.uniform() * Float(width), cy = rng.uniform() * Float(height)
      let rx = (0.06 + 0.16 * rng.uniform()) * Float(width), ry = (0.06 + 0.2 * rng.uniform()) * Float(height)
      let ellipse = rng.uniform() < 0.6
      for y in 0..<height {
        for x in 0..<width {
          let dx = (Float(x) - cx) / rx, dy = (Float(y) - cy) / ry
          if ellipse ? dx * dx + dy * dy <= 1 : abs(dx) <= 1 && abs(dy) <= 1 { truth[y * width + x] = label }
        }
      }
    }
    var image = [UInt8](repeating: 0, count: n * 3)
    for y in 0..<height {
      for x in 0..<width {
        let i = y * width + x
        let c = palette[Int(truth[i])]
        let shade = 0.75 + 0.5 * Float(x + y) / Float(width + height)
        for (k, v) in [c.0, c.1, c.2].enumerated() {
          let value = v * shade + 18 * rng.normal()
          image[i * 3 + k] = UInt8(max(0, min(255, value.rounded())))
        }
      }
    }
    // Class scores on the coarse grid: the true class of the cell's centre, plus noise.
    let stride = 8
    let gw = (width + stride - 1) / stride + 1, gh = (height + stride - 1) / stride + 1
    var grid = [Float](repeating: 0, count: labels * gw * gh)
    for gy in 0..<gh {
      for gx in 0..<gw {
        let x = min(width - 1, gx * stride), y = min(height - 1, gy * stride)
        let t = Int(truth[y * width + x])
        for l in 0..<labels {
          grid[(l * gh + gy) * gw + gx] = (l == t ? 3.0 : 0) + 1.6 * rng.normal()
        }
      }
    }
    var probabilities = [Float](repeating: 0, count: labels * n)
    var logits = [Float](repeating: 0, count: labels)
    for y in 0..<height {
      let fy = Float(y) / Float(stride), y0 = min(gh - 2, Int(fy)), wy = fy - Float(y0)
      for x in 0..<width {
        let fx = Float(x) / Float(stride), x0 = min(gw - 2, Int(fx)), wx = fx - Float(x0)
        var mx = -Float.infinity
        for l in 0..<labels {
          let g = { (gx: Int, gy: Int) in grid[(l * gh + gy) * gw + gx] }
          let v = (1 - wy) * ((1 - wx) * g(x0, y0) + wx * g(x0 + 1, y0)) + wy * ((1 - wx) * g(x0, y0 + 1) + wx * g(x0 + 1, y0 + 1))
          logits[l] = v
          mx = max(mx, v)
        }
        var total: Float = 0
        for l in 0..<labels { logits[l] = exp(logits[l] - mx); total += logits[l] }
        for l in 0..<labels { probabilities[l * n + y * width + x] = logits[l] / total }
      }
    }
    return CRFScene(width: width, height: height, labels: labels, image: image, probabilities: probabilities,
                    truth: truth, name: "synthetic scene (seed \(seed))")
  }

  static func argmax(_ planes: [Float], labels: Int, pixels: Int) -> [Int32] {
    (0..<pixels).map { i in
      var best = 0
      for l in 1..<labels where planes[l * pixels + i] > planes[best * pixels + i] { best = l }
      return Int32(best)
    }
  }
}

/// SplitMix64, for a scene that is the same on every machine.
private struct SplitMix {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
  mutating func normal() -> Float {
    let u = max(uniform(), 1e-7), v = uniform()
    return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
  }
}
