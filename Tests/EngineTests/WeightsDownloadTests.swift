import AEPSLFiles
import AEPSLEngine
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// `aepsl weights fetch` against range_server.py on 127.0.0.1 (no test reaches the internet).
@Suite(.serialized) struct WeightsDownloadTests {
  /// VGG-16's key names (timm's layout) with tiny shapes, so the served file is small.
  static let smallShapes: [String: [Int]] = PretrainedWeights.vgg16.layouts[0].keys.reduce(into: [:]) { shapes, name in
    shapes[name] = name.hasSuffix(".weight") ? [3, 4] : [3]
  }

  static func smallFile(shapes: [String: [Int]] = smallShapes) throws -> Data {
    let tensors = shapes.keys.sorted().enumerated().map { k, name in
      let shape = shapes[name]!
      return (name, Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { Float(k * 100 + $0) }))
    }
    return try SafetensorsFile.encode(tensors)
  }

  /// A running range_server.py serving `data`; stopped by `stop()`.
  final class Server {
    let process = Process()
    let port: Int
    let log: URL

    init(serving data: Data, in dir: URL, options: [String] = []) throws {
      let file = dir.appendingPathComponent("served.bin")
      try data.write(to: file)
      log = dir.appendingPathComponent("requests.log")
      let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("range_server.py")
      process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      process.arguments = ["python3", script.path, file.path, log.path] + options
      let out = Pipe()
      process.standardOutput = out
      // Not the test's own stderr: a server left behind must not keep `swift test` waiting.
      process.standardError = FileHandle.nullDevice
      try process.run()
      // The first line is the port; the server keeps its stdout open, so read up to the newline.
      var bytes = Data()
      while !bytes.contains(0x0A) {
        let chunk = out.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        bytes.append(chunk)
      }
      let line = String(decoding: bytes.prefix { $0 != 0x0A }, as: UTF8.self)
      guard let port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        process.terminate()
        throw AEPSLError(file: script.path, problem: "printed '\(line)' instead of a port", fix: "Check that python3 is installed.")
      }
      self.port = port
    }

    var requests: [String] { ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }

    /// SIGKILL: the test process may block SIGTERM, and a child inherits blocked signals.
    func stop() {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
    }
  }

  func source(port: Int, sha256: String? = nil) -> PretrainedWeights {
    PretrainedWeights(name: "vgg16-small", url: URL(string: "http://127.0.0.1:\(port)/model.safetensors")!,
                      fileName: "small.safetensors", sha256: sha256, layouts: [Self.smallShapes],
                      manualRoute: "copy the file by hand")
  }

  func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-weights-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
  }

  @Test func sha256MatchesKnownDigests() {
    var empty = SHA256()
    #expect(empty.finalizeHex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    var abc = SHA256()
    abc.update(Data("abc".utf8))
    #expect(abc.finalizeHex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    // Two blocks, fed in uneven pieces.
    let text = Data(String(repeating: "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", count: 3).utf8)
    var pieces = SHA256()
    pieces.update(text.prefix(7)); pieces.update(text.dropFirst(7).prefix(100)); pieces.update(text.dropFirst(107))
    var whole = SHA256()
    whole.update(text)
    #expect(pieces.finalizeHex() == whole.finalizeHex())
  }

  @Test func fullDownloadIsVerifiedAndRenamedIntoPlace() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let data = try Self.smallFile()
    var hash = SHA256()
    hash.update(data)
    let server = try Server(serving: data, in: dir, options: ["--etag", hash.finalizeHex()])
    defer { server.stop() }
    let cache = dir.appendingPathComponent("cache")
    let path = try source(port: server.port).fetch(into: cache, log: { _ in })
    #expect(try Data(contentsOf: path) == data)
    #expect(!FileManager.default.fileExists(atPath: path.path + ".part"))
    #expect(server.requests == ["-"])
    // A second call finds the file and does not download again.
    _ = try source(port: server.port).cachedOrFetched(in: cache, log: { _ in })
    #expect(server.requests == ["-"])
  }

  @Test(arguments: [false, true])
  func cutDownloadResumes(serverIgnoresRange: Bool) throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let data = try Self.smallFile()
    let server = try Server(serving: data, in: dir, options: ["--cut-after", "100"] + (serverIgnoresRange ? ["--ignore-range"] : []))
    defer { server.stop() }
    let cache = dir.appendingPathComponent("cache")
    let first = try #require(throws: AEPSLError.self) { try source(port: server.port).fetch(into: cache, log: { _ in }) }
    #expect(first.fix?.contains("Run the same command again to resume (100 bytes kept") == true)
    #expect(!FileManager.default.fileExists(atPath: cache.appendingPathComponent("small.safetensors").path))
    var messages: [String] = []
    let path = try source(port: server.port).fetch(into: cache, log: { messages.append($0) })
    #expect(try Data(contentsOf: path) == data)
    #expect(server.requests == ["-", "bytes=100-"])
    #expect(messages.contains("weights: resumed at byte 100") == !serverIgnoresRange)
  }

  /// A served file that is not the weights is deleted, and nothing lands in the cache.
  @Test(arguments: ["wrong shape", "truncated", "wrong sha256"])
  func corruptFileIsRejected(_ defect: String) throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    var shapes = Self.smallShapes
    if defect == "wrong shape" { shapes["pre_logits.fc1.weight"] = [3, 5] }
    var data = try Self.smallFile(shapes: shapes)
    if defect == "truncated" { data = data.dropLast(8) }
    let server = try Server(serving: data, in: dir)
    defer { server.stop() }
    let cache = dir.appendingPathComponent("cache")
    let wanted = defect == "wrong sha256" ? String(repeating: "0", count: 64) : nil
    let error = try #require(throws: AEPSLError.self) {
      try source(port: server.port, sha256: wanted).fetch(into: cache, log: { _ in })
    }
    let expected = ["wrong shape": "pre_logits.fc1.weight is [3, 5], expected [3, 4]", "truncated": "is not a valid safetensors file",
                    "wrong sha256": "expected 0000"][defect]!
    #expect(error.problem.contains(expected), "\(error)")
    #expect(error.fix?.contains("copy the file by hand") == true)
    #expect(try FileManager.default.contentsOfDirectory(atPath: cache.path).filter { !$0.hasSuffix(".lock") }.isEmpty)
  }

  @Test func noServerGivesTheManualRoute() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    // A port that was free a moment ago: nothing listens there.
    let server = try Server(serving: Data("x".utf8), in: dir)
    server.stop()
    let error = try #require(throws: AEPSLError.self) {
      try source(port: server.port).fetch(into: dir.appendingPathComponent("cache"), log: { _ in })
    }
    #expect(error.problem.contains("could not be downloaded"))
    #expect(error.fix?.contains("Without network access: copy the file by hand") == true)
    #expect(PretrainedWeights.vgg16.manualRoute.contains("vgg16.tv_in1k.safetensors"))
  }
}
