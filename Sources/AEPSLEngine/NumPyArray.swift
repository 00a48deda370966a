import AEPSLFiles
import Foundation

/// NumPy `.npy` files, for class activation maps and other arrays meant for Python.
///
/// Writes format 1.0 with dtype `<f4`, or `<f2` when asked (2.0 only if the header would not
/// fit in 1.0), which `np.load(f, allow_pickle=False)` reads. Reads formats 1.0 and 2.0 with
/// dtypes `<f4`, `<f2`, `<f8` and `|u1` in C order, converting to Float32. The header is a Python dict literal;
/// it is parsed by a small strict grammar (strings, True/False, tuples of integers), never
/// evaluated.
public enum NumPyArray {
  /// The element type written: float32, or float16 for maps in [0, 1] that are stored by
  /// the thousand (class activation maps: half the disk, 2^-11 resolution near 1).
  public enum Precision: Sendable {
    case float32, float16
    var descr: String { self == .float32 ? "<f4" : "<f2" }
    var size: Int { self == .float32 ? 4 : 2 }
  }

  /// Writes `tensor` (any layout) as `<f4` in C order, atomically.
  public static func write(_ tensor: Tensor, to url: URL) throws {
    // `plain` may be a fresh copy: keep it alive while its storage is read.
    let plain = tensor.nchw()
    let bytes = withExtendedLifetime(plain) { encode(plain.data, count: plain.count, shape: plain.shape) }
    try writeFileAtomically(bytes, to: url)
  }

  /// Writes `values` with `shape` as `<f4` (or `<f2`) in C order, atomically.
  public static func write(_ values: [Float], shape: [Int], precision: Precision = .float32, to url: URL) throws {
    try writeFileAtomically(encode(values, shape: shape, precision: precision, name: url.path), to: url)
  }

  /// The bytes of an `.npy` file holding `values` with `shape`.
  public static func encode(_ values: [Float], shape: [Int], precision: Precision = .float32,
                            name: String = "npy data") throws -> Data {
    guard shape.allSatisfy({ $0 >= 0 }), let count = checkedProduct(shape), count == values.count else {
      throw AEPSLError(file: name, problem: "cannot store \(values.count) values with shape \(shape)",
                            fix: "Pass a shape whose product is the number of values.")
    }
    // Through a Tensor, whose storage is never nil even for an empty array.
    let tensor = Tensor(shape: shape, values: values)
    return withExtendedLifetime(tensor) { encode(tensor.data, count: count, shape: shape, precision: precision) }
  }

  public static func read(contentsOf url: URL) throws -> Tensor {
    try decode(readFileMapped(url), name: url.path)
  }

  /// Parses an `.npy` file's bytes; `name` is only used in error messages.
  public static func decode(_ data: Data, name: String) throws -> Tensor {
    let fail = Failure(name: name)
    let (headerStart, headerLength) = try preamble(of: data, fail)
    let dataStart = headerStart + headerLength
    guard dataStart <= data.count else {
      throw fail("is truncated: the header length says \(headerLength) bytes, but only \(data.count - headerStart) follow")
    }
    let header = [UInt8](data[(data.startIndex + headerStart)..<(data.startIndex + dataStart)])
    let fields: NpyHeader
    do {
      fields = try NpyHeader(parsing: header)
    } catch let error as NpyHeader.ParseError {
      throw fail("has an invalid header: \(error.message)")
    }
    let (count, elementSize) = try layout(of: fields, fail)
    let byteCount = count * elementSize
    let available = data.count - dataStart
    guard available == byteCount else {
      throw fail("has \(available) data bytes, but shape \(fields.shape) of '\(fields.descr)' needs \(byteCount)")
    }
    let tensor = Tensor(shape: fields.shape)
    data.withUnsafeBytes { raw in
      convert(raw.baseAddress! + dataStart, count: count, elementSize: elementSize, into: tensor.data)
    }
    return tensor
  }

  // MARK: Implementation

  /// Makes the errors of one file's decoding: the file's name, the problem, and by default
  /// the advice to save the array again.
  private struct Failure {
    let name: String
    static let resave = "Save the array again with np.save (C order, float32, float16, float64 or uint8)."
    func callAsFunction(_ problem: String, _ fix: String = Failure.resave) -> AEPSLError {
      AEPSLError(file: name, problem: problem, fix: fix)
    }
  }

  /// The magic string and version: where the header starts and how long it is.
  private static func preamble(of data: Data, _ fail: Failure) throws -> (start: Int, length: Int) {
    let bytes = [UInt8](data.prefix(12))
    let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    guard Array(bytes.prefix(6)) == Array(magic.prefix(bytes.count)) else {
      throw fail("is not a .npy file (it does not start with \\x93NUMPY)")
    }
    guard bytes.count >= 8 else { throw fail("is truncated: \(bytes.count) bytes, shorter than the .npy preamble") }
    switch bytes[6] {
    case 1:
      guard bytes.count >= 10 else { throw fail("is truncated inside the .npy header length") }
      return (10, Int(bytes[8]) | Int(bytes[9]) << 8)
    case 2:
      guard bytes.count >= 12 else { throw fail("is truncated inside the .npy header length") }
      return (12, (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) })
    default:
      throw fail("uses .npy format version \(bytes[6]).\(bytes[7]); only 1.0 and 2.0 are read")
    }
  }

  /// The element count and size the header describes, when they can be read.
  private static func layout(of fields: NpyHeader, _ fail: Failure) throws -> (count: Int, elementSize: Int) {
    guard !fields.fortranOrder else {
      throw fail("stores its array in Fortran order, which is not supported",
                 "Save np.ascontiguousarray(array) instead.")
    }
    let elementSize: Int
    switch fields.descr {
    case "<f4": elementSize = 4
    case "<f8": elementSize = 8
    case "<f2": elementSize = 2
    case "|u1": elementSize = 1
    default:
      throw fail("has dtype '\(fields.descr)', which is not supported ('<f4', '<f2', '<f8', '|u1' are)",
                 "Convert it with array.astype(np.float32) before saving.")
    }
    if let bad = fields.shape.first(where: { $0 < 0 }) {
      throw fail("has a negative dimension \(bad) in shape \(fields.shape)")
    }
    guard let count = checkedProduct(fields.shape),
          case (_, false) = count.multipliedReportingOverflow(by: elementSize) else {
      throw fail("has shape \(fields.shape), whose size overflows")
    }
    return (count, elementSize)
  }

  /// Converts `count` little-endian elements of `elementSize` bytes to Float32.
  private static func convert(_ source: UnsafeRawPointer, count: Int, elementSize: Int, into out: UnsafeMutablePointer<Float>) {
    switch elementSize {
    case 4:
      #if _endian(little)
      UnsafeMutableRawPointer(out).copyMemory(from: source, byteCount: 4 * count)
      #else
      for i in 0..<count {
        out[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
      }
      #endif
    case 8:
      for i in 0..<count {
        out[i] = Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
      }
    case 2:
      for i in 0..<count {
        out[i] = Float(Float16(bitPattern: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
      }
    default:
      for i in 0..<count { out[i] = Float(source.load(fromByteOffset: i, as: UInt8.self)) }
    }
  }

  private static func encode(_ values: UnsafePointer<Float>, count: Int, shape: [Int], precision: Precision = .float32) -> Data {
    let shapeText: String
    switch shape.count {
    case 0: shapeText = "()"
    case 1: shapeText = "(\(shape[0]),)"
    default: shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }
    var header = Array("{'descr': '\(precision.descr)', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
    // numpy pads with spaces and ends with a newline so the data is 64-byte aligned.
    let version: UInt8 = header.count + 1 + 10 <= 65535 ? 1 : 2
    let prefixLength = version == 1 ? 10 : 12
    while (prefixLength + header.count + 1) % 64 != 0 { header.append(0x20) }
    header.append(0x0A)

    var out = Data(count: prefixLength + header.count + count * precision.size)
    out.withUnsafeMutableBytes { raw in
      let magic: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
      for (i, b) in magic.enumerated() { raw[i] = b }
      for i in 0..<(prefixLength - 8) { raw[8 + i] = UInt8(truncatingIfNeeded: header.count >> (8 * i)) }
      for (i, b) in header.enumerated() { raw[prefixLength + i] = b }
      let start = raw.baseAddress! + prefixLength + header.count
      switch precision {
      case .float32: storeFloat32LittleEndian(values, count: count, to: start)
      case .float16:
        for i in 0..<count { start.storeBytes(of: Float16(values[i]).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
      }
    }
    return out
  }

  /// The product of `shape`, or nil when it overflows.
  private static func checkedProduct(_ shape: [Int]) -> Int? {
    var product = 1
    for d in shape {
      let (p, overflow) = product.multipliedReportingOverflow(by: d)
      if overflow { return nil }
      product = p
    }
    return product
  }
}

/// The three fields of an `.npy` header, parsed from its Python dict literal.
///
/// Grammar: `{` (key `:` value `,`?)* `}` then spaces and a newline, where a key is a
/// quoted string and a value is a quoted string, `True`, `False` or a tuple of integers.
/// Exactly the keys descr, fortran_order and shape must appear, as numpy requires.
struct NpyHeader {
  var descr: String
  var fortranOrder: Bool
  var shape: [Int]

  struct ParseError: Error { let message: String }

  fileprivate enum Value {
    case string(String), bool(Bool), tuple([Int])
  }

  init(parsing text: [UInt8]) throws {
    var scanner = NpyHeaderScanner(text: text)
    let fields = try scanner.dictionary()
    guard Set(fields.keys) == ["descr", "fortran_order", "shape"] else {
      throw ParseError(message: "keys are \(fields.keys.sorted()), expected exactly descr, fortran_order and shape")
    }
    guard case .string(let descr) = fields["descr"] else { throw ParseError(message: "descr is not a string (structured dtypes are not supported)") }
    guard case .bool(let fortranOrder) = fields["fortran_order"] else { throw ParseError(message: "fortran_order is not True or False") }
    guard case .tuple(let shape) = fields["shape"] else { throw ParseError(message: "shape is not a tuple of integers") }
    self.descr = descr
    self.fortranOrder = fortranOrder
    self.shape = shape
  }
}

/// Reads the header's dict literal byte by byte; errors name the byte where they occur.
private struct NpyHeaderScanner {
  typealias Value = NpyHeader.Value
  let text: [UInt8]
  var i = 0

  init(text: [UInt8]) { self.text = text }

  /// The whole header: one dict, then only white space.
  mutating func dictionary() throws -> [String: Value] {
    var fields: [String: Value] = [:]
    try expect("{")
    skipSpace()
    while peek() != UInt8(ascii: "}") {
      skipSpace()
      let key = try string()
      try expect(":")
      guard fields[key] == nil else { throw error("duplicate key '\(key)'") }
      fields[key] = try value()
      skipSpace()
      if peek() == UInt8(ascii: ",") { i += 1; skipSpace() } else { break }
    }
    try expect("}")
    skipSpace()
    guard i == text.count else { throw error("unexpected text after the dict") }
    return fields
  }

  func error(_ message: String) -> NpyHeader.ParseError { NpyHeader.ParseError(message: "\(message) at byte \(i) of the header") }

  mutating func skipSpace() { while i < text.count, text[i] == 0x20 || text[i] == 0x09 || text[i] == 0x0A || text[i] == 0x0D { i += 1 } }

  mutating func expect(_ c: Character) throws {
    skipSpace()
    guard i < text.count, text[i] == c.asciiValue! else { throw error("expected '\(c)'") }
    i += 1
  }

  func peek() -> UInt8? { i < text.count ? text[i] : nil }

  mutating func string() throws -> String {
    guard let quote = peek(), quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"") else { throw error("expected a quoted string") }
    i += 1
    let start = i
    while i < text.count, text[i] != quote {
      // Escapes never occur in the three fields numpy writes; refusing them keeps this simple.
      guard text[i] != UInt8(ascii: "\\"), text[i] >= 0x20, text[i] < 0x7F else { throw error("unexpected character in a string") }
      i += 1
    }
    guard i < text.count else { throw error("unterminated string") }
    let s = String(decoding: text[start..<i], as: UTF8.self)
    i += 1
    return s
  }

  mutating func integer() throws -> Int {
    let start = i
    if peek() == UInt8(ascii: "-") { i += 1 }
    while let c = peek(), c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") { i += 1 }
    guard let value = Int(String(decoding: text[start..<i], as: UTF8.self)) else { throw error("expected an integer that fits in 64 bits") }
    return value
  }

  mutating func word(_ w: String) -> Bool {
    let bytes = Array(w.utf8)
    guard i + bytes.count <= text.count, Array(text[i..<(i + bytes.count)]) == bytes else { return false }
    i += bytes.count
    return true
  }

  mutating func value() throws -> Value {
    skipSpace()
    switch peek() {
    case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try string())
    case UInt8(ascii: "("): return .tuple(try tuple())
    default:
      if word("True") { return .bool(true) }
      if word("False") { return .bool(false) }
      throw error("expected a string, True, False or a tuple of integers")
    }
  }

  mutating func tuple() throws -> [Int] {
    i += 1
    var items: [Int] = []
    skipSpace()
    while peek() != UInt8(ascii: ")") {
      items.append(try integer())
      skipSpace()
      if peek() == UInt8(ascii: ",") { i += 1; skipSpace() } else { break }
    }
    try expect(")")
    return items
  }
}
