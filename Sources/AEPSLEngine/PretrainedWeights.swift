import AEPSLFiles
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// ImageNet weights that `--init imagenet` and `aepsl weights fetch` download into a cache
/// folder, verify, and hand to `VGG16Import`.
///
/// The cache is `$AEPSL_CACHE_DIR`, else `$XDG_CACHE_HOME/aepsl`, else `~/.cache/aepsl`. A
/// download goes to `<file>.part` (resumed with HTTP Range after a cut), is verified (size,
/// every tensor's name and shape, and the SHA-256 when the source or the server gives one),
/// and only then renamed to `<file>`; a file that fails verification is deleted. Processes
/// that start together (ranks under mpirun) take turns through a lock file, so one downloads
/// and the others find the file.
public struct PretrainedWeights: Sendable {
  /// The name `--init` and `aepsl weights fetch` know this source by.
  public let name: String
  public let url: URL
  /// The file's name in the cache.
  public let fileName: String
  /// Known SHA-256 of the file (lowercase hex); nil: the server's, when it gives one.
  public let sha256: String?
  /// The key layouts a usable file may have: every name with exactly this shape, and no
  /// other tensor.
  public let layouts: [[String: [Int]]]
  /// How to put the file in place by hand, for the error when the download fails.
  public let manualRoute: String

  public init(name: String, url: URL, fileName: String, sha256: String?, layouts: [[String: [Int]]], manualRoute: String) {
    self.name = name
    self.url = url
    self.fileName = fileName
    self.sha256 = sha256
    self.layouts = layouts
    self.manualRoute = manualRoute
  }

  /// timm's `vgg16.tv_in1k` (torchvision's IMAGENET1K_V1 weights as model.safetensors) at the
  /// revision that added the file; `HF_ENDPOINT` replaces https://huggingface.co (a mirror).
  public static var vgg16: PretrainedWeights {
    let endpoint = ProcessInfo.processInfo.environment["HF_ENDPOINT"] ?? "https://huggingface.co"
    let revision = "3394518cba29aee1ea82a49d971be90d2dd1dab7"
    let url = URL(string: "\(endpoint)/timm/vgg16.tv_in1k/resolve/\(revision)/model.safetensors")!
    return PretrainedWeights(
      name: "vgg16", url: url, fileName: "vgg16.tv_in1k.safetensors", sha256: nil,
      layouts: [vgg16Shapes(timm: true), vgg16Shapes(timm: false)],
      manualRoute: """
        Download \(url.absoluteString) (528 MB) on a machine with network access and copy it to \
        \(PretrainedWeights.cacheDirectory.appendingPathComponent("vgg16.tv_in1k.safetensors").path), or export \
        torchvision's weights there with: python -c "import torch, torchvision, safetensors.torch as s; \
        s.save_file(torchvision.models.vgg16(weights='IMAGENET1K_V1').state_dict(), 'vgg16.tv_in1k.safetensors')". \
        Or pass --init /path/to/file.safetensors.
        """)
  }

  /// The sources `--init` accepts by name (`imagenet` is VGG-16's).
  public static func named(_ name: String) -> PretrainedWeights? {
    switch name {
    case "imagenet", "vgg16": vgg16
    default: nil
    }
  }

  /// VGG-16's tensors in timm's or torchvision's naming.
  static func vgg16Shapes(timm: Bool) -> [String: [Int]] {
    let channels = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
                    (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    var shapes: [String: [Int]] = [:]
    for (index, (cin, cout)) in zip(VGG16Import.featureIndices, channels) {
      shapes["features.\(index).weight"] = [cout, cin, 3, 3]
      shapes["features.\(index).bias"] = [cout]
    }
    let (fc6, fc7, fc8) = timm ? ("pre_logits.fc1", "pre_logits.fc2", "head.fc") : ("classifier.0", "classifier.3", "classifier.6")
    shapes["\(fc6).weight"] = timm ? [4096, 512, 7, 7] : [4096, 25088]
    shapes["\(fc7).weight"] = timm ? [4096, 4096, 1, 1] : [4096, 4096]
    shapes["\(fc8).weight"] = [1000, 4096]
    for layer in [fc6, fc7] { shapes["\(layer).bias"] = [4096] }
    shapes["\(fc8).bias"] = [1000]
    return shapes
  }

  public static var cacheDirectory: URL {
    let environment = ProcessInfo.processInfo.environment
    if let dir = environment["AEPSL_CACHE_DIR"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
    if let dir = environment["XDG_CACHE_HOME"], !dir.isEmpty { return URL(fileURLWithPath: dir).appendingPathComponent("aepsl") }
    return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/aepsl")
  }

  /// `--init`'s value as a file: a source's name (fetched when not cached) or a path.
  public static func resolve(_ value: String, log: @escaping (String) -> Void = { print($0) }) throws -> URL {
    guard let source = named(value) else { return URL(fileURLWithPath: value) }
    return try source.cachedOrFetched(in: cacheDirectory, log: log)
  }

  /// The verified file in `directory`, downloading it first when it is not there.
  public func cachedOrFetched(in directory: URL, log: @escaping (String) -> Void = { print($0) }) throws -> URL {
    let destination = directory.appendingPathComponent(fileName)
    if FileManager.default.fileExists(atPath: destination.path) { return destination }
    try fetch(into: directory, log: log)
    return destination
  }

  /// Downloads (or resumes) the file into `directory` and verifies it; returns its path.
  @discardableResult
  public func fetch(into directory: URL, log: @escaping (String) -> Void = { print($0) }) throws -> URL {
    let destination = directory.appendingPathComponent(fileName)
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
      throw AEPSLError(file: directory.path, problem: "cannot be created (\(error.localizedDescription))",
                            fix: "Set AEPSL_CACHE_DIR to a writable folder.")
    }
    return try withLock(directory.appendingPathComponent(fileName + ".lock")) {
      // Another process may have finished while this one waited.
      if FileManager.default.fileExists(atPath: destination.path) { return destination }
      let partial = directory.appendingPathComponent(fileName + ".part")
      var download = HTTPDownload(url: url, partial: partial)
      download.progress = { done, total in
        log(String(format: "weights: %.0f MB", Double(done) / 1e6) + (total.map { String(format: " of %.0f MB", Double($0) / 1e6) } ?? ""))
      }
      log("weights: fetching \(name) from \(url.absoluteString) into \(destination.path)")
      let outcome: HTTPDownload.Outcome
      do {
        outcome = try download.run()
      } catch let failure as HTTPDownload.Failure {
        let kept = (try? FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? Int) ?? 0
        throw AEPSLError(
          file: url.absoluteString, problem: "could not be downloaded: \(failure.description)",
          fix: (kept > 0 ? "Run the same command again to resume (\(kept) bytes kept in \(partial.path)). " : "")
            + "Without network access: \(manualRoute)")
      }
      if outcome.resumedFrom > 0 { log("weights: resumed at byte \(outcome.resumedFrom)") }
      do {
        try verify(partial, size: outcome.totalSize, sha256: sha256 ?? outcome.serverSHA256)
      } catch {
        try? FileManager.default.removeItem(at: partial)
        throw error
      }
      if rename(partial.path, destination.path) != 0 {
        throw AEPSLError(file: destination.path, problem: "cannot be written (\(String(cString: strerror(errno))))",
                              fix: "Check that \(directory.path) is writable.")
      }
      log("weights: \(name) verified and saved to \(destination.path)")
      return destination
    }
  }

  /// Throws unless `file` has `size` bytes (when known), the SHA-256 (when known), and
  /// exactly the tensors of one of `layouts`.
  public func verify(_ file: URL, size: Int?, sha256 expected: String?) throws {
    let fix = "The download is corrupt or not \(name)'s weights; it was deleted: run the command again, or: \(manualRoute)"
    let actual = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
    if let size, size != actual {
      throw AEPSLError(file: url.absoluteString, problem: "gave \(actual) bytes, but the server announced \(size)", fix: fix)
    }
    if let expected {
      let digest = try SHA256.hex(ofFile: file)
      guard digest == expected.lowercased() else {
        throw AEPSLError(file: url.absoluteString, problem: "has SHA-256 \(digest), expected \(expected)", fix: fix)
      }
    }
    let contents: SafetensorsFile
    do { contents = try SafetensorsFile(contentsOf: file) } catch let error as AEPSLError {
      throw AEPSLError(file: url.absoluteString, problem: "is not a valid safetensors file (\(error.problem))", fix: fix)
    }
    let shapes = contents.tensors.mapValues(\.shape)
    guard layouts.contains(where: { $0 == shapes }) else {
      let closest = layouts.min { a, b in mismatches(a, shapes).count < mismatches(b, shapes).count }!
      throw AEPSLError(file: url.absoluteString,
                            problem: "does not hold \(name)'s tensors: " + mismatches(closest, shapes).prefix(5).joined(separator: "; "), fix: fix)
    }
  }

  private func mismatches(_ wanted: [String: [Int]], _ found: [String: [Int]]) -> [String] {
    wanted.keys.sorted().compactMap { key in
      guard let shape = found[key] else { return "\(key) missing" }
      return shape == wanted[key]! ? nil : "\(key) is \(shape), expected \(wanted[key]!)"
    } + found.keys.sorted().filter { wanted[$0] == nil }.map { "\($0) unexpected" }
  }

  /// Runs `body` holding an exclusive lock on `lockFile` (flock: released if the process dies).
  private func withLock<T>(_ lockFile: URL, _ body: () throws -> T) throws -> T {
    let fd = open(lockFile.path, O_CREAT | O_RDWR, 0o644)
    guard fd >= 0 else {
      throw AEPSLError(file: lockFile.path, problem: "cannot be opened (\(String(cString: strerror(errno))))",
                            fix: "Set AEPSL_CACHE_DIR to a writable folder.")
    }
    defer { close(fd) }
    flock(fd, LOCK_EX)
    defer { flock(fd, LOCK_UN) }
    return try body()
  }
}
