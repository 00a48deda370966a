import AEPSLCRF
import AEPSLEngine
import AEPSLFiles
import AEPSLImaging
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `aepsl bench crf`: the dense CRF on one image, optionally against pydensecrf on the same
/// image and unaries in the same invocation (BENCHMARKS.md).
public struct CRFBenchmark {
  public var scene: CRFScene
  public var parameters: CRFParameters
  public var threads: Int
  /// Timed runs (after one warm-up); the figures are medians.
  public var repeats: Int
  public var comparePydensecrf: Bool
  /// Also time the portable code beside `CRFVectorCode.best`, interleaved run by run.
  public var comparePortable: Bool
  /// Where to write the figures as JSON.
  public var json: String?

  public init(scene: CRFScene, parameters: CRFParameters, threads: Int, repeats: Int = 5, comparePydensecrf: Bool = false,
              comparePortable: Bool = false, json: String? = nil) {
    (self.scene, self.parameters, self.threads) = (scene, parameters, threads)
    (self.repeats, self.comparePydensecrf, self.comparePortable, self.json) = (repeats, comparePydensecrf, comparePortable, json)
  }

  /// The codes timed: the fastest, and the portable one when asked (and different).
  var codes: [CRFVectorCode] { comparePortable && CRFVectorCode.best != .portable ? [.best, .portable] : [.best] }

  /// An image file and its probabilities (.npy [classes, height, width]) as a scene.
  public static func scene(image: String, probabilities file: String) throws -> CRFScene {
    let picture = try Image(contentsOf: URL(fileURLWithPath: image), colorMode: .rgb)
    let tensor = try NumPyArray.read(contentsOf: URL(fileURLWithPath: file))
    let (labels, values) = try CRFInput.probabilities(shape: tensor.shape, values: tensor.values, file: file,
                                                      width: picture.width, height: picture.height)
    return CRFScene(width: picture.width, height: picture.height, labels: labels, image: picture.pixels,
                    probabilities: values, truth: nil, name: image)
  }

  public func run() throws {
    print("aepsl bench crf: \(scene.name), \(scene.width)x\(scene.height), \(scene.labels) classes, "
          + "\(parameters.iterations) iterations, \(threads) thread(s), gaussian filter \(parameters.gaussianFilter), "
          + "\(BenchMachine.cpuLine)")
    let load = BenchLoad()
    let timings = try measure(codes)
    let ours = timings[0]
    var report: [String: Any] = [
      "input": scene.name, "width": scene.width, "height": scene.height, "classes": scene.labels,
      "threads": threads, "iterations": parameters.iterations, "repeats": repeats,
      "gaussian_filter": parameters.gaussianFilter.rawValue, "lattice_vertices": ours.latticeVertices,
      "aepsl_ms": ["setup": ours.setup, "inference": ours.inference, "total": ours.total],
      "vector_code": CRFVectorCode.best.rawValue, "machine": BenchMachine.description(threads: threads),
    ]
    for (code, t) in zip(codes, timings) {
      print(String(format: "aepsl:      setup %7.1f ms   inference %7.1f ms   total %7.1f ms   (%@; lattice vertices %@)",
                   t.setup, t.inference, t.total, code.description, t.latticeVertices.map(String.init).joined(separator: ", ")))
    }
    if timings.count > 1 {
      let same = Self.fraction(timings[0].labels, timings[1].labels, equal: true)
      print(String(format: "            %@ / portable: total %.2fx faster, inference %.2fx; same label: %.4f%% of pixels",
                   codes[0].description, timings[1].total / ours.total, timings[1].inference / ours.inference, 100 * same))
      report["portable_ms"] = ["setup": timings[1].setup, "inference": timings[1].inference, "total": timings[1].total]
      report["portable_label_agreement"] = same
    }
    let others = load.othersPercent()
    report["other_processes_cpu_percent"] = others
    if others > 5 {
      print(String(format: "WARNING: other processes used %.0f%% of the machine's CPU during the aepsl runs: the machine was shared.", others))
    }
    let unaryArgmax = CRFScene.argmax(scene.probabilities, labels: scene.labels, pixels: scene.width * scene.height)
    let changed = Self.fraction(ours.labels, unaryArgmax, equal: false)
    print(String(format: "            the CRF changed %.2f%% of the labels of the unary argmax", 100 * changed))
    report["changed_from_unary"] = changed
    if let truth = scene.truth {
      let before = Self.fraction(unaryArgmax, truth, equal: true), after = Self.fraction(ours.labels, truth, equal: true)
      print(String(format: "            pixel accuracy on the synthetic truth: unary %.2f%%, CRF %.2f%%",
                   100 * before, 100 * after))
      report["accuracy"] = ["unary": before, "crf": after]
    }
    if comparePydensecrf {
      let theirs = try runPydensecrf(parameters: parameters.forImage(width: scene.width, height: scene.height))
      report.merge(Self.compare(ours, theirs, threads: threads)) { $1 }
    }
    if let json {
      try writeFileAtomically(JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted]),
                              to: URL(fileURLWithPath: json))
    }
  }

  /// Medians of one side's runs, in milliseconds, and its labels.
  struct Timing {
    var setup, inference, total: Double
    var labels: [Int32]
    var latticeVertices: [Int] = []
    var package = "aepsl"
  }

  /// `repeats` timed runs of each code after one warm-up each (page faults, Dispatch's
  /// threads), the codes taking turns run by run so that a busy spell hits them alike.
  func measure(_ codes: [CRFVectorCode]) throws -> [Timing] {
    var setup = [[Double]](repeating: [], count: codes.count), inference = setup
    var labels = [[Int32]](repeating: [], count: codes.count)
    var latticeVertices: [Int] = []
    for _ in 0..<(repeats + 1) {
      for (c, code) in codes.enumerated() {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let model = try DenseCRF(image: scene.image, width: scene.width, height: scene.height,
                                 probabilities: scene.probabilities, labels: scene.labels,
                                 parameters: parameters, threads: threads, vectorCode: code)
        let t1 = DispatchTime.now().uptimeNanoseconds
        labels[c] = model.labelMap(iterations: parameters.iterations)
        let t2 = DispatchTime.now().uptimeNanoseconds
        setup[c].append(Double(t1 - t0) / 1e6)
        inference[c].append(Double(t2 - t1) / 1e6)
        latticeVertices = model.latticeVertexCounts
      }
    }
    return codes.indices.map { c in
      let s = Array(setup[c].dropFirst()), i = Array(inference[c].dropFirst())
      return Timing(setup: median(s), inference: median(i), total: median(zip(s, i).map { $0 + $1 }), labels: labels[c],
                    latticeVertices: latticeVertices)
    }
  }

  /// Prints the comparison and returns its figures for the JSON report.
  static func compare(_ ours: Timing, _ theirs: Timing, threads: Int) -> [String: Any] {
    let agreement = fraction(ours.labels, theirs.labels, equal: true)
    let ratio = theirs.total / ours.total
    let target = speedTarget(threads: threads)
    print(String(format: "pydensecrf: setup %7.1f ms   inference %7.1f ms   total %7.1f ms   (%@, 1 thread)",
                 theirs.setup, theirs.inference, theirs.total, theirs.package))
    print(String(format: "ratio pydensecrf/aepsl, aepsl on %d thread(s): total %.2fx (target >= %.0fx: %@), inference %.2fx; same label: %.3f%% of pixels (target >= %.1f%%: %@)",
                 threads, ratio, target, ratio >= target ? "met" : "NOT met", theirs.inference / ours.inference,
                 100 * agreement, 100 * agreementTarget, agreement >= agreementTarget ? "met" : "NOT met"))
    return [
      "pydensecrf_ms": ["setup": theirs.setup, "inference": theirs.inference, "total": theirs.total],
      "pydensecrf_package": theirs.package, "ratio_total": ratio, "ratio_inference": theirs.inference / ours.inference,
      "label_agreement": agreement, "target_ratio": target,
    ]
  }

  /// pydensecrf (one thread) over aepsl: at least 3x on one thread, 5x on two or more.
  static func speedTarget(threads: Int) -> Double { threads <= 1 ? 3 : 5 }
  /// The share of pixels that must get pydensecrf's label.
  static let agreementTarget = 0.999

  static func fraction(_ a: [Int32], _ b: [Int32], equal: Bool) -> Double {
    guard a.count == b.count, !a.isEmpty else { return 0 }
    let same = zip(a, b).reduce(0) { $0 + ($1.0 == $1.1 ? 1 : 0) }
    return Double(equal ? same : a.count - same) / Double(a.count)
  }

  /// pydensecrf on the same image and probabilities, through the reference runner's `crf`.
  func runPydensecrf(parameters: CRFParameters) throws -> Timing {
    let runner = try ReferenceRunner()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-bench-crf-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let imageFile = dir.appendingPathComponent("image.npy"), probsFile = dir.appendingPathComponent("probs.npy")
    let labelsFile = dir.appendingPathComponent("labels.npy")
    try NumPyArray.write(scene.image.map { Float($0) }, shape: [scene.height, scene.width, 3], to: imageFile)
    try NumPyArray.write(scene.probabilities, shape: [scene.labels, scene.height, scene.width], to: probsFile)
    let result = try runner.run("crf", arguments: [
      "--image", imageFile.path, "--probs", probsFile.path, "--out", labelsFile.path,
      "--repeats", String(repeats), "--iterations", String(parameters.iterations),
      "--gaussian-sxy", "\(parameters.gaussianSXY)", "--gaussian-weight", "\(parameters.gaussianWeight)",
      "--bilateral-sxy", "\(parameters.bilateralSXY)", "--bilateral-srgb", "\(parameters.bilateralSRGB)",
      "--bilateral-weight", "\(parameters.bilateralWeight)", "--probability-floor", "\(parameters.probabilityFloor)",
      "--normalization", parameters.normalization.rawValue,
    ])
    guard let ms = result["ms"] as? [String: Double], let setup = ms["setup"], let inference = ms["inference"],
          let total = ms["total"]
    else { throw AEPSLError(file: runner.scriptURL.path, problem: "crf printed no timings", fix: "Run it by hand to see what it printed.") }
    let labels = try NumPyArray.read(contentsOf: labelsFile).values.map { Int32($0) }
    guard labels.count == scene.width * scene.height else {
      throw AEPSLError(file: labelsFile.path, problem: "holds \(labels.count) labels, expected \(scene.width * scene.height)",
                       fix: "Check \(ReferenceRunner.script) against this version of aepsl.")
    }
    return Timing(setup: setup, inference: inference, total: total, labels: labels,
                  package: result["package"] as? String ?? "pydensecrf")
  }
}

/// The median of a non-empty list (the mean of the middle two for an even count).
func median(_ values: [Double]) -> Double {
  let s = values.sorted()
  return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
