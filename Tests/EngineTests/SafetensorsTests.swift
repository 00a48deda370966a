import AEPSLFiles
import AEPSLTestSupport
import Foundation
import Testing
@testable import AEPSLEngine

// MARK: - Helpers shared with NumPyTests

/// A Python interpreter for interop tests, found once: $AEPSL_PYTHON, the project's test venv
/// (.venv-test, which `make test` makes with numpy and safetensors), python3.
enum SerializationPython {
  static let projectVenv = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent(".venv-test/bin/python").path
  static let withSafetensors = find(importing: "numpy, safetensors")
  static let withNumPy = find(importing: "numpy")

  private static func find(importing modules: String) -> URL? {
    var candidates = [projectVenv, "/opt/aepsl-torch/bin/python", "/usr/bin/python3", "/usr/local/bin/python3"]
    if let override = ProcessInfo.processInfo.environment["AEPSL_PYTHON"] { candidates.insert(override, at: 0) }
    for path in candidates where FileManager.default.isExecutableFile(atPath: path) {
      let url = URL(fileURLWithPath: path)
      if let result = try? runCapturing(url, ["-c", "import \(modules)"]), result.status == 0 { return url }
    }
    return nil
  }
}

/// A fresh directory under the system temporary directory; the caller removes it.
func makeSerializationTemporaryDirectory() throws -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-serialization-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

/// A safetensors file built by hand: `declaredLength` overrides the header length field.
private func safetensorsBytes(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
  let json = Array(header.utf8)
  let length = declaredLength ?? UInt64(json.count)
  return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + json + data
}

private func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
  values.flatMap { v in (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
}

/// Row-major values of any tensor. Not `Tensor.values`: for a blocked tensor it reads the
/// temporary NCHW copy after that copy may have been freed (reported to the Tensor owner).
private func rowMajorValues(_ tensor: Tensor) -> [Float] {
  let plain = tensor.nchw()
  return withExtendedLifetime(plain) { Array(plain.buffer) }
}

private func bitsEqual(_ a: [Float], _ b: [Float]) -> Bool {
  a.map(\.bitPattern) == b.map(\.bitPattern)
}

// MARK: - Safetensors

@Suite struct SafetensorsTests {
  @Test func roundTripKeepsValuesOrderAndMetadata() throws {
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("round.safetensors")

    let matrix = Tensor(shape: [2, 3], values: [1, -2, 3.5, .infinity, -0.0, 0x1p-140])
    let blockedSource = Tensor(shape: [1, 8, 2, 1], values: (0..<16).map(Float.init))
    let scalar = Tensor(shape: [], values: [42])
    let empty = Tensor(shape: [0, 4])
    let tensors: [(String, Tensor)] = [("z.last-in-name", matrix), ("a \"quoted\" name", blockedSource.blocked()),
                                       ("scalar", scalar), ("empty", empty)]
    let metadata = ["epoch": "3", "note": "line\nbreak \"quoted\""]
    try SafetensorsFile.write(tensors, metadata: metadata, to: url)

    let bytes = [UInt8](try Data(contentsOf: url))
    let headerLength = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
    #expect(headerLength % 8 == 0, "data must start 8-byte aligned")

    let file = try SafetensorsFile(contentsOf: url)
    #expect(file.order == tensors.map(\.0))
    #expect(file.metadata == metadata)
    #expect(file.tensors["z.last-in-name"]?.shape == [2, 3])
    #expect(bitsEqual(file.tensors["z.last-in-name"]?.values ?? [], matrix.values))
    // The blocked tensor is stored in NCHW order.
    #expect(file.tensors["a \"quoted\" name"]?.values == blockedSource.values)
    #expect(file.tensors["scalar"]?.shape == [] && file.tensors["scalar"]?.values == [42])
    #expect(file.tensors["empty"]?.shape == [0, 4] && file.tensors["empty"]?.count == 0)
  }

  @Test func convertsHalfBFloatAndDoubleToFloat() throws {
    // F16: 1, -2.5, smallest normal, smallest subnormal, largest finite, -inf, -0.
    let half: [UInt16] = [0x3C00, 0xC100, 0x0400, 0x0001, 0x7BFF, 0xFC00, 0x8000]
    let bfloat: [UInt16] = [0x3F80, 0xBF00, 0x4049]  // 1, -0.5, 3.140625
    let double: [UInt64] = [0.1, -1e10].map(\.bitPattern)
    let data = littleEndianBytes(half) + littleEndianBytes(bfloat) + littleEndianBytes(double)
    let header = """
      {"h":{"dtype":"F16","shape":[7],"data_offsets":[0,14]},\
      "b":{"dtype":"BF16","shape":[1,3],"data_offsets":[14,20]},\
      "d":{"dtype":"F64","shape":[2],"data_offsets":[20,36]}}
      """
    let file = try SafetensorsFile(data: Data(safetensorsBytes(header, data: data)), name: "hand-made")
    #expect(bitsEqual(file.tensors["h"]?.values ?? [], [1, -2.5, 0x1p-14, 0x1p-24, 65504, -.infinity, -0.0]))
    #expect(file.tensors["b"]?.values == [1, -0.5, 3.140625])
    #expect(file.tensors["d"]?.values == [Float(0.1), -1e10])
    #expect(file.order == ["h", "b", "d"])
  }

  @Test func halfConversionMatchesFloat16ForEveryBitPattern() {
    #if arch(x86_64) || arch(arm64)
    for bits in UInt16.min...UInt16.max {
      let expected = Float(Float16(bitPattern: bits))
      let actual = SafetensorsFile.floatFromHalf(bits)
      if expected.isNaN {
        #expect(actual.isNaN, "bits \(bits)")
      } else if actual.bitPattern != expected.bitPattern {
        Issue.record("F16 bits \(String(bits, radix: 16)): got \(actual), expected \(expected)")
        return
      }
    }
    #endif
  }

  struct Malformed: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    /// Part of the expected `problem` text.
    let expected: String
    var testDescription: String { name }
  }

  static let malformed: [Malformed] = {
    let f32x2 = [UInt8](repeating: 0, count: 8)
    func one(_ entry: String, data: [UInt8] = f32x2) -> [UInt8] { safetensorsBytes("{\"t\":\(entry)}", data: data) }
    return [
      Malformed(name: "empty file", bytes: [], expected: "truncated"),
      Malformed(name: "truncated inside the length", bytes: [16, 0, 0], expected: "truncated"),
      Malformed(name: "header length past the end", bytes: safetensorsBytes("{}", declaredLength: 100), expected: "truncated"),
      Malformed(name: "absurd header length", bytes: safetensorsBytes("{}", declaredLength: .max), expected: "limit"),
      Malformed(name: "empty header", bytes: safetensorsBytes(""), expected: "not a JSON object"),
      Malformed(name: "header is a JSON array", bytes: safetensorsBytes("[1, 2]"), expected: "not a JSON object"),
      Malformed(name: "header is binary", bytes: safetensorsBytes("\u{1}\u{2}\u{3}"), expected: "not a JSON object"),
      Malformed(name: "bad JSON", bytes: safetensorsBytes("{\"t\": {\"dtype\": "), expected: "invalid header"),
      Malformed(name: "entry is not an object", bytes: safetensorsBytes("{\"t\": 3}"), expected: "'t' is not an object"),
      Malformed(name: "deeply nested JSON", bytes: safetensorsBytes("{\"t\":" + String(repeating: "[", count: 100_000)), expected: "invalid header"),
      Malformed(name: "missing dtype", bytes: one("{\"shape\":[2],\"data_offsets\":[0,8]}"), expected: "no 'dtype'"),
      Malformed(name: "missing shape", bytes: one("{\"dtype\":\"F32\",\"data_offsets\":[0,8]}"), expected: "no 'shape'"),
      Malformed(name: "missing data_offsets", bytes: one("{\"dtype\":\"F32\",\"shape\":[2]}"), expected: "no 'data_offsets'"),
      Malformed(name: "unknown dtype", bytes: one("{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}"), expected: "dtype I64"),
      Malformed(name: "negative dimension", bytes: one("{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}"), expected: "negative"),
      Malformed(name: "fractional dimension", bytes: one("{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}"), expected: "'t.shape[0]': expected an integer, found the number 2.5"),
      Malformed(name: "dimension as string", bytes: one("{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}"), expected: "'t.shape[0]'"),
      Malformed(name: "dimension too large for Int", bytes: one("{\"dtype\":\"F32\",\"shape\":[1e30],\"data_offsets\":[0,8]}"), expected: "expected an integer"),
      Malformed(name: "shape product overflows", bytes: one("{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,8]}"), expected: "overflows"),
      Malformed(name: "byte count overflows", bytes: one("{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}"), expected: "overflows"),
      Malformed(name: "one offset", bytes: one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}"), expected: "[begin, end]"),
      Malformed(name: "end before begin", bytes: one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}"), expected: "begin <= end"),
      Malformed(name: "negative offset", bytes: one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}"), expected: "begin <= end"),
      Malformed(name: "offset out of range", bytes: one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}"), expected: "past the 8 data bytes"),
      Malformed(name: "wrong byte length", bytes: one("{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}"), expected: "needs 12"),
      Malformed(name: "overlapping tensors",
                bytes: safetensorsBytes("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                                        data: [UInt8](repeating: 0, count: 12)),
                expected: "overlap"),
      Malformed(name: "metadata value not a string", bytes: safetensorsBytes("{\"__metadata__\":{\"epoch\":3}}"), expected: "__metadata__"),
    ]
  }()

  @Test(arguments: malformed)
  func malformedFileThrowsNamingTheFile(_ example: Malformed) {
    let error = #expect(throws: AEPSLError.self) {
      _ = try SafetensorsFile(data: Data(example.bytes), name: "bad.safetensors")
    }
    #expect(error?.file == "bad.safetensors")
    #expect(error?.problem.contains(example.expected) == true, "problem was: \(error?.problem ?? "none")")
    #expect(error?.fix?.isEmpty == false)
  }

  @Test func everyTruncationThrows() throws {
    let full = try SafetensorsFile.encode([("a", Tensor(shape: [3], values: [1, 2, 3])),
                                           ("b", Tensor(shape: [2, 2], values: [4, 5, 6, 7]))], metadata: ["k": "v"])
    #expect(try SafetensorsFile(data: full, name: "full").tensors.count == 2)
    for length in 0..<full.count {
      #expect(throws: AEPSLError.self, "prefix of \(length) bytes") {
        _ = try SafetensorsFile(data: full.prefix(length), name: "cut")
      }
    }
  }

  @Test func corruptedHeaderBytesThrowOrParseButNeverCrash() throws {
    let full = [UInt8](try SafetensorsFile.encode([("w", Tensor(shape: [2, 2], values: [1, 2, 3, 4])),
                                                   ("b", Tensor(shape: [2], values: [5, 6]))]))
    var rejected = 0
    for position in 0..<(full.count - 24) {
      for replacement: UInt8 in [0x00, 0x22, 0x2D, 0x31, 0x39, 0x5D, 0x7D, 0xFF] where replacement != full[position] {
        var bytes = full
        bytes[position] = replacement
        do {
          _ = try SafetensorsFile(data: Data(bytes), name: "mutated")
        } catch is AEPSLError {
          rejected += 1
        } catch {
          Issue.record("byte \(position) = \(replacement): unexpected error type \(error)")
        }
      }
    }
    #expect(rejected > 100)
  }

  @Test func writeRejectsDuplicateAndReservedNames() {
    let t = Tensor(shape: [1])
    #expect(throws: AEPSLError.self) { _ = try SafetensorsFile.encode([("a", t), ("a", t)]) }
    #expect(throws: AEPSLError.self) { _ = try SafetensorsFile.encode([("__metadata__", t)]) }
    #expect(throws: AEPSLError.self) { _ = try SafetensorsFile.encode([("", t)]) }
  }

  @Test func missingFileErrorNamesThePath() {
    let error = #expect(throws: AEPSLError.self) {
      _ = try SafetensorsFile(contentsOf: URL(fileURLWithPath: "/nonexistent/vgg16.safetensors"))
    }
    #expect(error?.description.contains("/nonexistent/vgg16.safetensors") == true)
  }

  @Test func atomicWriteReplacesTheFileAndLeavesNoTemporary() throws {
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("artefact.bin")
    try writeFileAtomically(Data("old".utf8), to: url)
    try writeFileAtomically(Data("new contents".utf8), to: url)
    #expect(try Data(contentsOf: url) == Data("new contents".utf8))
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["artefact.bin"])

    let error = #expect(throws: AEPSLError.self) {
      try writeFileAtomically(Data("x".utf8), to: directory.appendingPathComponent("missing/artefact.bin"))
    }
    #expect(error?.description.contains("missing/artefact.bin") == true)
    #expect(error?.fix?.contains("Create the directory") == true)
  }

  /// What a SIGKILL between creating and renaming a temporary file leaves behind is removed
  /// once its process is gone; a live writer's file and other hidden files are kept.
  @Test func staleTemporariesOfDeadProcessesAreRemoved() throws {
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let nested = directory.appendingPathComponent("erase/step-1", isDirectory: true)
    try FileManager.default.createDirectory(at: nested, withIntermediateDirectories: true)
    let finished = Process()
    finished.executableURL = URL(fileURLWithPath: "/bin/true")
    try finished.run()
    finished.waitUntilExit()
    let dead = finished.processIdentifier
    let stale = nested.appendingPathComponent(".state.safetensors.\(dead).12345.tmp")
    let live = nested.appendingPathComponent(".manifest.json.1.777.tmp")  // pid 1 always runs
    let other = nested.appendingPathComponent(".hidden-user-file.tmp")
    let recent = nested.appendingPathComponent(".loss.csv.\(dead).999.tmp")  // maybe another machine's, being written
    let hourAgo = Date(timeIntervalSinceNow: -3600)
    for url in [stale, live, other, recent] {
      try Data("x".utf8).write(to: url)
      if url != recent { try FileManager.default.setAttributes([.modificationDate: hourAgo], ofItemAtPath: url.path) }
    }
    #expect(removeStaleTemporaries(under: directory) == 1)
    #expect(FileManager.default.fileExists(atPath: recent.path))
    #expect(!FileManager.default.fileExists(atPath: stale.path))
    #expect(FileManager.default.fileExists(atPath: live.path) && FileManager.default.fileExists(atPath: other.path))
  }

  // MARK: Python interop

  static let fixtureScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("make_safetensors_fixture.py")

  @Test(.enabled(if: SerializationPython.withSafetensors != nil,
                 "needs a Python with numpy and safetensors (set AEPSL_PYTHON or pip install safetensors)"))
  func fileWrittenByPythonSafetensorsLoads() throws {
    let python = try #require(SerializationPython.withSafetensors)
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("python.safetensors")
    let result = try runCapturing(python, [Self.fixtureScript.path, "write", url.path])
    try #require(result.status == 0, "fixture script failed: \(result.stderr)")

    let file = try SafetensorsFile(contentsOf: url)
    #expect(file.metadata == ["format": "pt", "source": "make_safetensors_fixture.py"])
    #expect(file.tensors["features.0.weight"]?.shape == [2, 3])
    #expect(file.tensors["features.0.weight"]?.values == [-1.5, -0.5, 0, 0.25, 1e-3, 3.0e5])
    #expect(file.tensors["half"]?.values == [1, -2.5, 0x1p-14, 0x1p-24, 65504])
    #expect(file.tensors["double"]?.shape == [2, 1] && file.tensors["double"]?.values == [Float(0.1), -1e10])
    #expect(file.tensors["scalar"]?.shape == [] && file.tensors["scalar"]?.values == [7])
    #expect(file.tensors["empty"]?.shape == [0])
    if result.stdout.contains("\"bf16\": true") {
      #expect(file.tensors["bf16"]?.values == [1, -0.5, 3.140625])
    } else {
      #expect(file.tensors["bf16"] == nil)
      print("note: torch not importable, so the Python fixture has no BF16 tensor")
    }
  }

  @Test(.enabled(if: SerializationPython.withSafetensors != nil,
                 "needs a Python with numpy and safetensors (set AEPSL_PYTHON or pip install safetensors)"))
  func fileWrittenBySwiftLoadsInPythonSafetensors() throws {
    let python = try #require(SerializationPython.withSafetensors)
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("swift.safetensors")
    let weights = Tensor(shape: [2, 8, 1, 1], values: (0..<16).map { Float($0) * 0.5 - 3 })
    try SafetensorsFile.write([("conv.weight", weights.blocked()), ("conv.bias", Tensor(shape: [2], values: [0.1, -0.2]))],
                              metadata: ["epoch": "7"], to: url)
    let result = try runCapturing(python, [Self.fixtureScript.path, "read", url.path])
    try #require(result.status == 0, "python could not read the file: \(result.stderr)")

    struct Entry: Decodable { let dtype: String; let shape: [Int]; let values: [Double] }
    let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    #expect(json["__metadata__"] as? [String: String] == ["epoch": "7"])
    let decoded = try JSONDecoder().decode([String: Entry].self,
                                           from: JSONSerialization.data(withJSONObject: json.filter { $0.key != "__metadata__" }))
    #expect(decoded["conv.weight"]?.dtype == "float32")
    #expect(decoded["conv.weight"]?.shape == [2, 8, 1, 1])
    #expect(decoded["conv.weight"]?.values.map(Float.init) == weights.values)
    #expect(decoded["conv.bias"]?.values.map(Float.init) == [0.1, -0.2])
  }
}

// MARK: - Checkpoints and the VGG-16 import

@Suite struct CheckpointTests {
  private func network(firstChannels: Int = 32) -> (parameters: [Parameter], buffers: [Buffer]) {
    let parameters = [
      Parameter(name: "conv1_1.weight", value: Tensor(shape: [firstChannels, 3, 3, 3])),
      Parameter(name: "conv1_1.bias", value: Tensor(shape: [firstChannels])),
      Parameter(name: "fc.weight", value: Tensor(shape: [8, 8, 1, 1], layout: .nChw8c)),
    ]
    let buffers = [Buffer(name: "bn.running_mean", value: Tensor(shape: [4]))]
    return (parameters, buffers)
  }

  private func fill(_ tensors: [Tensor], seed: Float) {
    for (k, t) in tensors.enumerated() {
      let plain = (0..<t.count).map { Float($0) * 0.01 + Float(k) + seed }
      let filled = Tensor(shape: t.shape, values: plain).to(t.layout)
      withExtendedLifetime(filled) { t.data.update(from: filled.data, count: t.count) }
    }
  }

  @Test func saveThenLoadRestoresEveryValueAndBumpsVersions() throws {
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("step1.safetensors")
    let saved = network()
    fill(saved.parameters.map(\.value) + saved.buffers.map(\.value), seed: 1)
    try Checkpoint.save(parameters: saved.parameters, buffers: saved.buffers, metadata: ["step": "1"], to: url)

    let loaded = network()
    let metadata = try Checkpoint.load(from: url, into: loaded.parameters, buffers: loaded.buffers)
    #expect(metadata == ["step": "1"])
    for (a, b) in zip(saved.parameters, loaded.parameters) {
      #expect(rowMajorValues(a.value) == rowMajorValues(b.value), "\(a.name)")
      #expect(b.value.layout == a.value.layout, "the destination keeps its layout")
      #expect(b.version == 1, "\(b.name) version")
    }
    #expect(saved.buffers[0].value.values == loaded.buffers[0].value.values)
  }

  @Test func shapeMismatchListsEveryProblemAndLoadsNothing() throws {
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("wide.safetensors")
    let wide = network(firstChannels: 64)
    try Checkpoint.save(parameters: wide.parameters, buffers: wide.buffers, to: url)

    let narrow = network(firstChannels: 32)
    fill(narrow.parameters.map(\.value), seed: 5)
    let before = narrow.parameters.map { rowMajorValues($0.value) }
    let error = #expect(throws: AEPSLError.self) {
      try Checkpoint.load(from: url, into: narrow.parameters, buffers: narrow.buffers)
    }
    let message = error?.description ?? ""
    #expect(message.contains("conv1_1.weight: file has [64, 3, 3, 3], network expects [32, 3, 3, 3]"))
    #expect(message.contains("conv1_1.bias: file has [64], network expects [32]"))
    #expect(message.contains(url.path))
    #expect(narrow.parameters.map { rowMajorValues($0.value) } == before, "a failed load must not change any parameter")
    #expect(narrow.parameters.allSatisfy { $0.version == 0 })
  }

  @Test func strictLoadNamesMissingAndUnexpectedTensors() throws {
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("other.safetensors")
    try SafetensorsFile.write([("conv1_1.weight", Tensor(shape: [32, 3, 3, 3], repeating: 2)),
                               ("extra.weight", Tensor(shape: [1]))], to: url)
    let net = network()
    let error = #expect(throws: AEPSLError.self) {
      try Checkpoint.load(from: url, into: net.parameters, buffers: net.buffers, strict: true)
    }
    #expect(error?.problem.contains("conv1_1.bias: missing from the file") == true)
    #expect(error?.problem.contains("bn.running_mean: missing from the file") == true)
    #expect(error?.problem.contains("extra.weight: in the file but not in the network") == true)

    try Checkpoint.load(from: url, into: net.parameters, buffers: net.buffers, strict: false)
    #expect(net.parameters[0].value.values.allSatisfy { $0 == 2 })
    #expect(net.parameters.map(\.version) == [1, 0, 0], "only the loaded parameter is bumped")
  }

  /// Small stand-in for torchvision's VGG-16: the real shapes are not needed to test the mapping.
  private func vggStateDict(skipping: Set<String> = [], reshape: [String: [Int]] = [:]) -> [(String, Tensor)] {
    var tensors: [(String, Tensor)] = []
    for index in VGG16Import.featureIndices {
      for (suffix, shape) in [("weight", [2, 2, 3, 3]), ("bias", [2])] {
        let key = "features.\(index).\(suffix)"
        guard !skipping.contains(key) else { continue }
        tensors.append((key, Tensor(shape: reshape[key] ?? shape, repeating: Float(index) + (suffix == "bias" ? 0.5 : 0))))
      }
    }
    tensors.append(("classifier.0.weight", Tensor(shape: [4, 2])))
    tensors.append(("classifier.0.bias", Tensor(shape: [4])))
    return tensors
  }

  private func vggParameters(convolutions: ArraySlice<String>) -> [Parameter] {
    convolutions.flatMap { name in
      [Parameter(name: "\(name).weight", value: Tensor(shape: [2, 2, 3, 3])), Parameter(name: "\(name).bias", value: Tensor(shape: [2]))]
    } + [Parameter(name: "fc8.weight", value: Tensor(shape: [21, 2, 1, 1], repeating: -1))]
  }

  @Test func vgg16ImportMapsFeatureIndicesToConvolutionNames() throws {
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("vgg16.safetensors")
    try SafetensorsFile.write(vggStateDict(), to: url)

    // A network with only the first ten convolutions: conv5_* and the classifier are ignored.
    let parameters = vggParameters(convolutions: VGG16Import.convolutionNames.prefix(10))
    let ignored = try VGG16Import.load(from: url, into: parameters)
    #expect(ignored == 3 * 2 + 2)
    let byName = Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0) })
    #expect(byName["conv1_1.weight"]?.value.values.allSatisfy { $0 == 0 } == true)
    #expect(byName["conv2_2.bias"]?.value.values == [7.5, 7.5])
    #expect(byName["conv3_3.weight"]?.value.values.allSatisfy { $0 == 14 } == true)
    #expect(byName["conv4_3.bias"]?.value.values == [21.5, 21.5])
    #expect(byName["conv4_3.bias"]?.version == 1)
    #expect(byName["fc8.weight"]?.value.values.allSatisfy { $0 == -1 } == true, "new layers are left alone")
    #expect(byName["fc8.weight"]?.version == 0)
  }

  @Test func vgg16ImportReportsMissingKeysAndWrongShapes() throws {
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("vgg16-broken.safetensors")
    try SafetensorsFile.write(vggStateDict(skipping: ["features.28.bias"], reshape: ["features.0.weight": [64, 3, 3, 3]]), to: url)
    let parameters = vggParameters(convolutions: VGG16Import.convolutionNames[...])
    let error = #expect(throws: AEPSLError.self) { try VGG16Import.load(from: url, into: parameters) }
    #expect(error?.problem.contains("features.28.bias (for conv5_3.bias) is missing") == true)
    #expect(error?.problem.contains("features.0.weight -> conv1_1.weight: file has [64, 3, 3, 3], network expects [2, 2, 3, 3]") == true)
    #expect(error?.fix?.contains("vgg16") == true)
    #expect(parameters.allSatisfy { $0.version == 0 }, "nothing is loaded when anything is wrong")
  }

  @Test func vgg16ImportRecognisesTheBatchNormVariant() throws {
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("vgg16_bn.safetensors")
    // vgg16_bn: conv at 0, BatchNorm at 1, so features.2 is the ReLU and has no weight.
    try SafetensorsFile.write([("features.0.weight", Tensor(shape: [2, 2, 3, 3])), ("features.0.bias", Tensor(shape: [2])),
                               ("features.1.running_mean", Tensor(shape: [2]))], to: url)
    let error = #expect(throws: AEPSLError.self) {
      try VGG16Import.load(from: url, into: vggParameters(convolutions: VGG16Import.convolutionNames.prefix(2)))
    }
    #expect(error?.fix?.contains("vgg16_bn") == true)
  }

  @Test func vgg16ImportRefusesANetworkWithoutVGGLayers() throws {
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("vgg16.safetensors")
    try SafetensorsFile.write(vggStateDict(), to: url)
    let error = #expect(throws: AEPSLError.self) {
      try VGG16Import.load(from: url, into: [Parameter(name: "stem.weight", value: Tensor(shape: [2]))])
    }
    #expect(error?.problem.contains("none of the parameters") == true)
  }
}
