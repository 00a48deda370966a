import AEPSLFiles
import Foundation

/// A `.safetensors` file: named tensors and string metadata.
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON
/// `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}`,
/// then the data, offsets counted from the end of the header.
///
/// Reading converts F32, F16, BF16 and F64 to Float32 (torchvision exports may use any of
/// them) and validates every field before touching the data, so a truncated or hostile
/// file is a thrown `AEPSLError`, never a crash. Writing stores F32.
public struct SafetensorsFile {
  public var tensors: [String: Tensor]
  /// Tensor names in the order their data appears in the file.
  public var order: [String]
  public var metadata: [String: String]

  /// Headers larger than this are refused before any allocation: a real header is a few
  /// hundred bytes per tensor, so 100 MB is far beyond any network.
  public static let maximumHeaderLength = 100 << 20

  public init(contentsOf url: URL) throws {
    try self.init(data: readFileMapped(url), name: url.path)
  }

  /// Tensors held in memory, in the given order (e.g. a state dict made by a formula).
  public init(tensors: [(String, Tensor)], metadata: [String: String] = [:]) {
    self.tensors = Dictionary(tensors, uniquingKeysWith: { _, last in last })
    order = tensors.map(\.0)
    self.metadata = metadata
  }

  /// Parses a file's bytes; `name` is only used in error messages.
  public init(data: Data, name: String) throws {
    func fail(_ problem: String, _ fix: String = SafetensorsFile.rewriteFix) -> AEPSLError {
      AEPSLError(file: name, problem: problem, fix: fix)
    }
    let fileSize = data.count
    guard fileSize >= 8 else {
      throw fail("is truncated: \(fileSize) bytes, but a safetensors file starts with an 8-byte header length")
    }
    var headerLength: UInt64 = 0
    data.withUnsafeBytes { raw in
      for i in 0..<8 { headerLength |= UInt64(raw[i]) << (8 * UInt64(i)) }
    }
    guard headerLength <= UInt64(Self.maximumHeaderLength) else {
      throw fail("declares a \(headerLength)-byte header, more than the \(Self.maximumHeaderLength)-byte limit; it is not a safetensors file or is corrupt")
    }
    let headerEnd = 8 + Int(headerLength)
    guard headerEnd <= fileSize else {
      throw fail("is truncated: the header length says \(headerLength) bytes, but only \(fileSize - 8) follow")
    }
    let header = try Self.decodeHeader(data.subdata(in: data.startIndex + 8 ..< data.startIndex + headerEnd), fail: fail)

    // Validate every entry, then check that no two tensors share bytes.
    let dataSize = fileSize - headerEnd
    var spans: [(name: String, begin: Int, end: Int)] = []
    var validated: [(name: String, dtype: DType, shape: [Int], begin: Int)] = []
    for (tensorName, entry) in header.entries {
      let shape = entry.shape.map(\.value), offsets = entry.data_offsets.map(\.value)
      guard let dtype = DType(rawValue: entry.dtype) else {
        throw fail("tensor '\(tensorName)' has dtype \(entry.dtype), which is not supported (F32, F16, BF16, F64 are)",
                   "Convert it to float32 before saving, e.g. `tensor.float()` in PyTorch.")
      }
      if let bad = shape.first(where: { $0 < 0 }) {
        throw fail("tensor '\(tensorName)' has a negative dimension \(bad) in shape \(shape)")
      }
      var elementCount = 1
      for d in shape {
        let (product, overflow) = elementCount.multipliedReportingOverflow(by: d)
        guard !overflow else { throw fail("tensor '\(tensorName)' has shape \(shape), whose size overflows") }
        elementCount = product
      }
      let (byteCount, overflow) = elementCount.multipliedReportingOverflow(by: dtype.size)
      guard !overflow else { throw fail("tensor '\(tensorName)' has shape \(shape), whose size overflows") }
      guard offsets.count == 2 else {
        throw fail("tensor '\(tensorName)' has data_offsets \(offsets); expected [begin, end]")
      }
      let (begin, end) = (offsets[0], offsets[1])
      guard begin >= 0, end >= begin else {
        throw fail("tensor '\(tensorName)' has data_offsets [\(begin), \(end)]; expected 0 <= begin <= end")
      }
      guard end <= dataSize else {
        throw fail("tensor '\(tensorName)' ends at data offset \(end), past the \(dataSize) data bytes in the file (truncated?)")
      }
      guard end - begin == byteCount else {
        throw fail("tensor '\(tensorName)' spans \(end - begin) bytes, but \(entry.dtype) \(shape) needs \(byteCount)")
      }
      spans.append((tensorName, begin, end))
      validated.append((tensorName, dtype, shape, begin))
    }
    spans.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
    for (a, b) in zip(spans, spans.dropFirst()) where b.begin < a.end {
      throw fail("tensors '\(a.name)' and '\(b.name)' overlap in the data section")
    }

    var tensors: [String: Tensor] = [:]
    data.withUnsafeBytes { raw in
      let base = raw.baseAddress! + headerEnd
      for entry in validated {
        let tensor = Tensor(shape: entry.shape)
        entry.dtype.convert(base + entry.begin, count: tensor.count, into: tensor.data)
        tensors[entry.name] = tensor
      }
    }
    self.tensors = tensors
    self.order = spans.map(\.name)
    self.metadata = header.metadata
  }

  /// Writes `tensors` as F32 in the given order, atomically.
  public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to url: URL) throws {
    try writeFileAtomically(encode(tensors, metadata: metadata, name: url.path), to: url)
  }

  /// The bytes of a safetensors file holding `tensors` as F32 in the given order.
  /// `name` is only used in error messages.
  public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String] = [:],
                            name: String = "safetensors data") throws -> Data {
    var seen = Set<String>()
    for (tensorName, _) in tensors {
      guard !tensorName.isEmpty, tensorName != "__metadata__" else {
        throw AEPSLError(file: name, problem: "cannot store a tensor named '\(tensorName)'",
                              fix: "Give every tensor a non-empty name other than __metadata__.")
      }
      guard seen.insert(tensorName).inserted else {
        throw AEPSLError(file: name, problem: "two tensors are named '\(tensorName)'",
                              fix: "Give every parameter and buffer a unique name.")
      }
    }

    var json = "{"
    var fields: [String] = []
    if !metadata.isEmpty {
      let pairs = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
      fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
    }
    var offset = 0
    for (tensorName, tensor) in tensors {
      let end = offset + tensor.count * 4
      fields.append("\(jsonString(tensorName)):{\"dtype\":\"F32\",\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}")
      offset = end
    }
    json += fields.joined(separator: ",") + "}"
    var header = Array(json.utf8)
    // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
    while header.count % 8 != 0 { header.append(0x20) }

    var out = Data(count: 8 + header.count + offset)
    out.withUnsafeMutableBytes { raw in
      let base = raw.baseAddress!
      for i in 0..<8 { raw[i] = UInt8(truncatingIfNeeded: UInt64(header.count) >> (8 * UInt64(i))) }
      header.withUnsafeBytes { (base + 8).copyMemory(from: $0.baseAddress!, byteCount: header.count) }
      var position = 8 + header.count
      for (_, tensor) in tensors {
        // withExtendedLifetime: `plain` may be a fresh copy, freed after its last use,
        // which would otherwise be the read of `data`, before the copy runs.
        let plain = tensor.nchw()
        withExtendedLifetime(plain) { storeFloat32LittleEndian(plain.data, count: plain.count, to: base + position) }
        position += plain.count * 4
      }
    }
    return out
  }

  // MARK: Implementation

  static let rewriteFix = "The file is incomplete or not a safetensors file: write it again (safetensors.torch.save_file, or re-run the stage that made it)."

  /// The element types this reader accepts.
  enum DType: String {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"

    var size: Int {
      switch self {
      case .f32: 4
      case .f16, .bf16: 2
      case .f64: 8
      }
    }

    /// Converts `count` little-endian elements at `source` (any alignment) to Float.
    func convert(_ source: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
      switch self {
      case .f32:
        #if _endian(little)
        UnsafeMutableRawPointer(out).copyMemory(from: source, byteCount: count * 4)
        #else
        for i in 0..<count {
          out[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
        }
        #endif
      case .f16:
        for i in 0..<count {
          out[i] = SafetensorsFile.floatFromHalf(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
      case .bf16:
        // bfloat16 is the top half of a float32.
        for i in 0..<count {
          let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
          out[i] = Float(bitPattern: UInt32(bits) << 16)
        }
      case .f64:
        for i in 0..<count {
          out[i] = Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
        }
      }
    }
  }

  private struct Entry: Decodable {
    var dtype: String
    var shape: [JSONInteger]
    var data_offsets: [JSONInteger]
  }

  /// An integer that names what it found instead: the decoder reports `2.5` or `1e30` for
  /// an Int only as "not valid JSON", with no hint where.
  private struct JSONInteger: Decodable {
    var value: Int

    init(from decoder: Decoder) throws {
      let container = try decoder.singleValueContainer()
      if let value = try? container.decode(Int.self) {
        self.value = value
        return
      }
      let found = (try? container.decode(Double.self)).map { "the number \($0)" } ?? "a non-number"
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                              debugDescription: "expected an integer, found \(found)"))
    }
  }

  private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
  }

  private struct Header: Decodable {
    var entries: [String: Entry] = [:]
    var metadata: [String: String] = [:]

    init(from decoder: Decoder) throws {
      let container = try decoder.container(keyedBy: AnyKey.self)
      for key in container.allKeys {
        if key.stringValue == "__metadata__" {
          metadata = try container.decode([String: String].self, forKey: key)
        } else {
          entries[key.stringValue] = try container.decode(Entry.self, forKey: key)
        }
      }
    }
  }

  /// Decodes the JSON header strictly: integers must be integers, every field present.
  private static func decodeHeader(_ json: Data, fail: (String, String) -> AEPSLError) throws -> Header {
    // The reference format requires an object; checking the first byte also gives a
    // clearer message than the decoder for binary junk.
    guard json.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) == UInt8(ascii: "{") else {
      throw fail("has a header that is not a JSON object", rewriteFix)
    }
    do {
      return try JSONDecoder().decode(Header.self, from: json)
    } catch let error as DecodingError {
      throw fail("has an invalid header: \(describe(error))", rewriteFix)
    } catch {
      throw fail("has an invalid header: \(error)", rewriteFix)
    }
  }

  private static func describe(_ error: DecodingError) -> String {
    func path(_ keys: [CodingKey]) -> String {
      guard !keys.isEmpty else { return "the top level" }
      let text = keys.enumerated().map { i, key in
        key.intValue.map { "[\($0)]" } ?? (i == 0 ? key.stringValue : "." + key.stringValue)
      }
      return "'" + text.joined() + "'"
    }
    switch error {
    case .keyNotFound(let key, let context):
      return "\(path(context.codingPath)) has no '\(key.stringValue)' field"
    case .typeMismatch(let type, let context):
      let expected = switch "\(type)" {
      case "String": "a string"
      case let name where name.hasPrefix("Dictionary"): "an object"
      case let name where name.hasPrefix("Array"): "an array"
      case let name: name
      }
      return "\(path(context.codingPath)) is not \(expected)"
    case .valueNotFound(_, let context):
      return "\(path(context.codingPath)) is null"
    case .dataCorrupted(let context):
      return context.codingPath.isEmpty ? "not valid JSON" : "\(path(context.codingPath)): \(context.debugDescription)"
    @unknown default:
      return "\(error)"
    }
  }
}

/// A JSON string literal for `s` (quoted and escaped): safetensors headers and any other
/// JSON aepsl writes by hand.
public func jsonString(_ s: String) -> String {
  var out = "\""
  for scalar in s.unicodeScalars {
    switch scalar {
    case "\"": out += "\\\""
    case "\\": out += "\\\\"
    case "\n": out += "\\n"
    case "\r": out += "\\r"
    case "\t": out += "\\t"
    case _ where scalar.value < 0x20:
      out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
    default: out.unicodeScalars.append(scalar)
    }
  }
  return out + "\""
}

/// Stores `count` floats little-endian at `destination` (any alignment).
func storeFloat32LittleEndian(_ source: UnsafePointer<Float>, count: Int, to destination: UnsafeMutableRawPointer) {
  #if _endian(little)
  destination.copyMemory(from: source, byteCount: count * 4)
  #else
  for i in 0..<count {
    destination.storeBytes(of: source[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
  }
  #endif
}

extension SafetensorsFile {
  /// IEEE 754 half precision to single (exact: every half is a float).
  static func floatFromHalf(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x3FF)
    switch exponent {
    case 0:
      // Zero or subnormal: mantissa * 2^-24.
      let magnitude = Float(mantissa) * 0x1p-24
      return sign != 0 ? -magnitude : magnitude
    case 0x1F:
      return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    default:
      return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }
  }
}
