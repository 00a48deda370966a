import Foundation

/// Protocol Buffers' wire format, the few encodings ONNX's messages need: varints (int32,
/// int64, enums), length-delimited fields (strings, bytes, nested messages, packed repeated
/// numbers) and little-endian 32-bit floats.
///
/// A message is written field by field in any order; a reader takes the last value of a
/// singular field and concatenates repeated ones. Fields left at their default are omitted
/// by the callers, as protoc's generated code does.
struct ProtobufWriter {
  private(set) var bytes: [UInt8] = []

  private enum WireType: UInt64 {
    case varint = 0
    case lengthDelimited = 2
    case fixed32 = 5
  }

  private mutating func tag(_ field: Int, _ type: WireType) {
    appendVarint(UInt64(field) << 3 | type.rawValue)
  }

  private mutating func appendVarint(_ value: UInt64) {
    var v = value
    while v >= 0x80 {
      bytes.append(UInt8(v & 0x7F) | 0x80)
      v >>= 7
    }
    bytes.append(UInt8(v))
  }

  /// An int32, int64 or enum field. Negative numbers take ten bytes (two's complement as a
  /// 64-bit varint), as protobuf specifies for int32 and int64.
  mutating func int(_ field: Int, _ value: Int) {
    tag(field, .varint)
    appendVarint(UInt64(bitPattern: Int64(value)))
  }

  mutating func float(_ field: Int, _ value: Float) {
    tag(field, .fixed32)
    appendLittleEndian(value.bitPattern)
  }

  mutating func string(_ field: Int, _ value: String) {
    bytes(field, Array(value.utf8))
  }

  mutating func bytes(_ field: Int, _ value: [UInt8]) {
    tag(field, .lengthDelimited)
    appendVarint(UInt64(value.count))
    bytes.append(contentsOf: value)
  }

  /// A nested message, written by `body` into a writer of its own.
  mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
    var inner = ProtobufWriter()
    body(&inner)
    bytes(field, inner.bytes)
  }

  /// A repeated int64 field, packed (one length-delimited run of varints).
  mutating func packedInts(_ field: Int, _ values: [Int]) {
    guard !values.isEmpty else { return }
    var inner = ProtobufWriter()
    for v in values { inner.appendVarint(UInt64(bitPattern: Int64(v))) }
    bytes(field, inner.bytes)
  }

  /// A repeated float field, packed.
  mutating func packedFloats(_ field: Int, _ values: [Float]) {
    guard !values.isEmpty else { return }
    var inner = ProtobufWriter()
    for v in values { inner.appendLittleEndian(v.bitPattern) }
    bytes(field, inner.bytes)
  }

  private mutating func appendLittleEndian(_ value: UInt32) {
    for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))) }
  }
}

extension Array where Element == Float {
  /// The values as little-endian IEEE 754 bytes (ONNX's `raw_data` for FLOAT tensors).
  var littleEndianBytes: [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(count * 4)
    for v in self {
      let b = v.bitPattern
      out.append(UInt8(truncatingIfNeeded: b))
      out.append(UInt8(truncatingIfNeeded: b >> 8))
      out.append(UInt8(truncatingIfNeeded: b >> 16))
      out.append(UInt8(truncatingIfNeeded: b >> 24))
    }
    return out
  }
}
