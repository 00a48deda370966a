import AEPSLFiles
import AEPSLTestSupport
import Foundation
import Testing
@testable import AEPSLEngine

/// An .npy file built by hand: preamble for `version`, the header text as given, then data.
private func npyBytes(_ header: String, version: UInt8 = 1, data: [UInt8] = [], declaredLength: Int? = nil) -> [UInt8] {
  let text = Array(header.utf8)
  let length = declaredLength ?? text.count
  let lengthBytes = (0..<(version == 1 ? 2 : 4)).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) }
  return [0x93] + Array("NUMPY".utf8) + [version, 0] + lengthBytes + text + data
}

private func floatBytes(_ values: [Float]) -> [UInt8] {
  values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * UInt32($0))) } }
}

@Suite struct NumPyTests {
  @Test(arguments: [[], [0], [5], [2, 3], [1, 2, 3, 4]] as [[Int]])
  func roundTripKeepsShapeAndValues(_ shape: [Int]) throws {
    let count = shape.reduce(1, *)
    let values = (0..<count).map { Float($0) * 0.37 - 1.25 }
    let bytes = try NumPyArray.encode(values, shape: shape)
    #expect(bytes.prefix(8) == Data([0x93] + Array("NUMPY".utf8) + [1, 0]), "format 1.0")
    let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
    #expect((10 + headerLength) % 64 == 0, "numpy aligns the data to 64 bytes")
    #expect(bytes[10 + headerLength - 1] == 0x0A, "the header ends with a newline")

    let tensor = try NumPyArray.decode(bytes, name: "round.npy")
    #expect(tensor.shape == shape)
    #expect(tensor.values == values)
  }

  /// Class activation maps are stored as float16: values in [0, 1] come back within half a
  /// float16 step (2^-12 near 1), exactly for those float16 holds, and the file is half size.
  @Test func float16RoundTripKeepsMapsInUnitRange() throws {
    let values: [Float] = [0, 1, 0.5, 0.8, 0.79999, 0.123456, 1e-6, 0.999]
    let half = try NumPyArray.encode(values, shape: [2, 4], precision: .float16)
    let full = try NumPyArray.encode(values, shape: [2, 4])
    #expect(String(decoding: half.prefix(40), as: UTF8.self).contains("'descr': '<f2'"))
    #expect(full.count - half.count == 2 * values.count, "two bytes a value instead of four, same header")
    let back = try NumPyArray.decode(half, name: "cam.npy").values
    for (v, b) in zip(values, back) { #expect(abs(v - b) <= Float(1) / 4096, "\(v) -> \(b)") }
    #expect(Array(back.prefix(4)) == [0, 1, 0.5, Float(Float16(0.8))])
  }

  @Test func writesBlockedTensorsInCOrderAndReadsThemBack() throws {
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("cam.npy")
    let plain = Tensor(shape: [1, 8, 2, 3], values: (0..<48).map(Float.init))
    try NumPyArray.write(plain.blocked(), to: url)
    #expect(try NumPyArray.read(contentsOf: url).values == plain.values)
  }

  @Test func readsFloat64UInt8AndFormat2() throws {
    let doubles: [Double] = [0.5, -1e-3, 1e300]
    let f8 = npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n",
                      data: doubles.flatMap { d in (0..<8).map { UInt8(truncatingIfNeeded: d.bitPattern >> (8 * UInt64($0))) } })
    #expect(try NumPyArray.decode(Data(f8), name: "f8.npy").values == [0.5, Float(-1e-3), .infinity])

    let u1 = npyBytes("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }\n", data: [0, 1, 254, 255])
    let mask = try NumPyArray.decode(Data(u1), name: "u1.npy")
    #expect(mask.shape == [2, 2] && mask.values == [0, 1, 254, 255])

    // Format 2.0: 4-byte header length; double quotes and no trailing comma are also valid.
    let v2 = npyBytes("{\"descr\": \"<f4\", \"shape\": (1, 2), \"fortran_order\": False}\n", version: 2, data: floatBytes([3, -4]))
    let t = try NumPyArray.decode(Data(v2), name: "v2.npy")
    #expect(t.shape == [1, 2] && t.values == [3, -4])
  }

  struct Malformed: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let expected: String
    var testDescription: String { name }
  }

  static let malformed: [Malformed] = {
    let two = floatBytes([1, 2])
    func dict(_ descr: String = "'<f4'", fortran: String = "False", shape: String = "(2,)") -> String {
      "{'descr': \(descr), 'fortran_order': \(fortran), 'shape': \(shape), }\n"
    }
    return [
      Malformed(name: "empty file", bytes: [], expected: "truncated"),
      Malformed(name: "not an npy file", bytes: Array("PK\u{3}\u{4} zip archive".utf8), expected: "not a .npy file"),
      Malformed(name: "truncated preamble", bytes: [0x93] + Array("NUMPY".utf8) + [1, 0, 40], expected: "truncated"),
      Malformed(name: "unsupported version 3.0", bytes: npyBytes(dict(), version: 3, data: two), expected: "version 3.0"),
      Malformed(name: "header length past the end", bytes: npyBytes(dict(), data: [], declaredLength: 500), expected: "truncated"),
      Malformed(name: "fortran order", bytes: npyBytes(dict(fortran: "True"), data: two), expected: "Fortran order"),
      Malformed(name: "big-endian float", bytes: npyBytes(dict("'>f4'"), data: two), expected: "'>f4'"),
      Malformed(name: "int64 dtype", bytes: npyBytes(dict("'<i8'"), data: two + two), expected: "'<i8'"),
      Malformed(name: "structured dtype", bytes: npyBytes(dict("[('x', '<f4')]"), data: two), expected: "invalid header"),
      Malformed(name: "data shorter than shape", bytes: npyBytes(dict(shape: "(3,)"), data: two), expected: "needs 12"),
      Malformed(name: "data longer than shape", bytes: npyBytes(dict(shape: "(1,)"), data: two), expected: "needs 4"),
      Malformed(name: "negative dimension", bytes: npyBytes(dict(shape: "(-2,)"), data: two), expected: "negative"),
      Malformed(name: "fractional dimension", bytes: npyBytes(dict(shape: "(2.0,)"), data: two), expected: "invalid header"),
      Malformed(name: "dimension beyond Int", bytes: npyBytes(dict(shape: "(99999999999999999999,)"), data: two), expected: "64 bits"),
      Malformed(name: "shape product overflows", bytes: npyBytes(dict(shape: "(4294967296, 4294967296, 2)"), data: two), expected: "overflows"),
      Malformed(name: "code instead of a literal", bytes: npyBytes(dict("__import__('os').system('true')"), data: two), expected: "invalid header"),
      Malformed(name: "missing shape key", bytes: npyBytes("{'descr': '<f4', 'fortran_order': False}\n", data: two), expected: "exactly descr"),
      Malformed(name: "extra key", bytes: npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': True}\n", data: two), expected: "exactly descr"),
      Malformed(name: "duplicate key", bytes: npyBytes("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", data: two), expected: "duplicate"),
      Malformed(name: "unterminated string", bytes: npyBytes("{'descr': '<f4", data: two), expected: "unterminated"),
      Malformed(name: "text after the dict", bytes: npyBytes(dict() + "junk", data: two), expected: "after the dict"),
    ]
  }()

  @Test(arguments: malformed)
  func malformedFileThrowsNamingTheFile(_ example: Malformed) {
    let error = #expect(throws: AEPSLError.self) {
      _ = try NumPyArray.decode(Data(example.bytes), name: "bad.npy")
    }
    #expect(error?.file == "bad.npy")
    #expect(error?.problem.contains(example.expected) == true, "problem was: \(error?.problem ?? "none")")
  }

  @Test func everyTruncationThrows() throws {
    let full = try NumPyArray.encode([1, 2, 3, 4, 5, 6], shape: [2, 3])
    for length in 0..<full.count {
      #expect(throws: AEPSLError.self, "prefix of \(length) bytes") {
        _ = try NumPyArray.decode(full.prefix(length), name: "cut.npy")
      }
    }
  }

  @Test func encodeRejectsAShapeThatDoesNotMatchTheValues() {
    #expect(throws: AEPSLError.self) { _ = try NumPyArray.encode([1, 2, 3], shape: [2, 2]) }
    #expect(throws: AEPSLError.self) { _ = try NumPyArray.encode([], shape: [-1]) }
  }

  // MARK: numpy interop

  @Test(.enabled(if: SerializationPython.withNumPy != nil, "needs a Python with numpy (set AEPSL_PYTHON)"))
  func fileWrittenBySwiftLoadsInNumPyWithoutPickle() throws {
    let python = try #require(SerializationPython.withNumPy)
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let url = directory.appendingPathComponent("cam.npy")
    let values: [Float] = [0, 1.5, -2.25, 1e-7, 3.4e38, 0.1]
    try NumPyArray.write(values, shape: [1, 2, 3], to: url)
    let script = """
      import json, sys, numpy as np
      a = np.load(sys.argv[1], allow_pickle=False)
      print(json.dumps({"dtype": a.dtype.str, "shape": list(a.shape), "c": bool(a.flags.c_contiguous),
                        "bits": [int(b) for b in a.reshape(-1).view(np.uint32)]}))
      """
    let result = try runCapturing(python, ["-c", script, url.path])
    try #require(result.status == 0, "numpy could not load the file: \(result.stderr)")
    struct Loaded: Decodable { let dtype: String; let shape: [Int]; let c: Bool; let bits: [UInt32] }
    let loaded = try JSONDecoder().decode(Loaded.self, from: Data(result.stdout.utf8))
    #expect(loaded.dtype == "<f4")
    #expect(loaded.shape == [1, 2, 3])
    #expect(loaded.c)
    #expect(loaded.bits == values.map(\.bitPattern), "values must be bit-identical")
  }

  @Test(.enabled(if: SerializationPython.withNumPy != nil, "needs a Python with numpy (set AEPSL_PYTHON)"))
  func filesWrittenByNumPyLoad() throws {
    let python = try #require(SerializationPython.withNumPy)
    let directory = try makeSerializationTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let script = """
      import sys, numpy as np
      d = sys.argv[1]
      np.save(d + "/f4.npy", np.arange(6, dtype=np.float32).reshape(2, 3) / 4)
      np.save(d + "/f8.npy", np.array([[0.1], [-2.0]]))
      np.save(d + "/u1.npy", np.array([0, 7, 255], dtype=np.uint8))
      np.save(d + "/scalar.npy", np.float32(2.5))
      with open(d + "/v2.npy", "wb") as f:
          np.lib.format.write_array(f, np.ones((2, 2), dtype=np.float32), version=(2, 0))
      np.save(d + "/fortran.npy", np.asfortranarray(np.ones((2, 3), dtype=np.float32)))
      """
    let result = try runCapturing(python, ["-c", script, directory.path])
    try #require(result.status == 0, "numpy failed: \(result.stderr)")
    func load(_ name: String) throws -> Tensor { try NumPyArray.read(contentsOf: directory.appendingPathComponent(name)) }

    let f4 = try load("f4.npy")
    #expect(f4.shape == [2, 3] && f4.values == [0, 0.25, 0.5, 0.75, 1, 1.25])
    let f8 = try load("f8.npy")
    #expect(f8.shape == [2, 1] && f8.values == [Float(0.1), -2])
    #expect(try load("u1.npy").values == [0, 7, 255])
    let scalar = try load("scalar.npy")
    #expect(scalar.shape == [] && scalar.values == [2.5])
    #expect(try load("v2.npy").values == [1, 1, 1, 1])
    let error = #expect(throws: AEPSLError.self) { _ = try load("fortran.npy") }
    #expect(error?.fix?.contains("ascontiguousarray") == true)
  }
}
