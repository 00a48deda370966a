import Foundation

/// The parts of ONNX's protobuf messages (onnx/onnx.proto) that an exported network uses,
/// with their field numbers. Everything is float32 except the int64 shape constants.
public struct ONNXModel: Sendable {
  /// IR version 8 goes with opset 17 (onnx/docs/Versioning.md).
  public static let irVersion = 8
  public static let opsetVersion = 17

  public var graph: ONNXGraph
  public var producerVersion: String
  /// `metadata_props`: onnxruntime's `InferenceSession.get_modelmeta().custom_metadata_map`.
  public var metadata: [(key: String, value: String)]
  public var docString: String

  public init(graph: ONNXGraph, producerVersion: String, metadata: [(key: String, value: String)], docString: String) {
    self.graph = graph
    self.producerVersion = producerVersion
    self.metadata = metadata
    self.docString = docString
  }

  /// The serialised ModelProto, the bytes of a .onnx file.
  public func serialized() -> [UInt8] {
    var w = ProtobufWriter()
    w.int(1, Self.irVersion)                          // ir_version
    w.string(2, "aepsl")                              // producer_name
    w.string(3, producerVersion)                      // producer_version
    w.string(6, docString)                            // doc_string
    w.message(7) { graph.encode(into: &$0) }          // graph
    w.message(8) { op in                              // opset_import: the default domain
      op.string(1, "")
      op.int(2, Self.opsetVersion)
    }
    for (key, value) in metadata {                    // metadata_props
      w.message(14) { entry in
        entry.string(1, key)
        entry.string(2, value)
      }
    }
    return w.bytes
  }
}

/// A GraphProto: nodes in topological order, weights as initializers, typed inputs and outputs.
public struct ONNXGraph: Sendable {
  public var name: String
  public var nodes: [ONNXNode] = []
  public var initializers: [ONNXTensor] = []
  public var inputs: [ONNXValueInfo] = []
  public var outputs: [ONNXValueInfo] = []

  public init(name: String) { self.name = name }

  func encode(into w: inout ProtobufWriter) {
    for n in nodes { w.message(1) { n.encode(into: &$0) } }
    w.string(2, name)
    for t in initializers { w.message(5) { t.encode(into: &$0) } }
    for v in inputs { w.message(11) { v.encode(into: &$0) } }
    for v in outputs { w.message(12) { v.encode(into: &$0) } }
  }
}

/// A NodeProto: one operator of the default domain.
public struct ONNXNode: Sendable {
  public var opType: String
  public var name: String
  public var inputs: [String]
  public var outputs: [String]
  public var attributes: [ONNXAttribute]

  public init(_ opType: String, name: String, inputs: [String], outputs: [String], attributes: [ONNXAttribute] = []) {
    self.opType = opType
    self.name = name
    self.inputs = inputs
    self.outputs = outputs
    self.attributes = attributes
  }

  func encode(into w: inout ProtobufWriter) {
    for i in inputs { w.string(1, i) }
    for o in outputs { w.string(2, o) }
    w.string(3, name)
    w.string(4, opType)
    for a in attributes { w.message(5) { a.encode(into: &$0) } }
  }
}

/// An AttributeProto of one of the kinds the exported operators take.
public struct ONNXAttribute: Sendable {
  public enum Value: Sendable {
    case int(Int)
    case ints([Int])
    case float(Float)
    case string(String)
  }

  public var name: String
  public var value: Value

  public init(_ name: String, _ value: Value) {
    self.name = name
    self.value = value
  }

  public static func ints(_ name: String, _ values: [Int]) -> ONNXAttribute { .init(name, .ints(values)) }
  public static func int(_ name: String, _ value: Int) -> ONNXAttribute { .init(name, .int(value)) }

  func encode(into w: inout ProtobufWriter) {
    w.string(1, name)
    // AttributeProto.AttributeType: FLOAT 1, INT 2, STRING 3, INTS 7 (field 20, `type`).
    switch value {
    case .float(let f):
      w.float(2, f)
      w.int(20, 1)
    case .int(let i):
      w.int(3, i)
      w.int(20, 2)
    case .string(let s):
      w.string(4, s)
      w.int(20, 3)
    case .ints(let values):
      // Not packed: `ints` is a proto2 field, so readers expect one tag per value (they
      // accept packed too, but onnx's own writer never packs it).
      for v in values { w.int(8, v) }
      w.int(20, 7)
    }
  }
}

/// A TensorProto initializer: float32 values as raw little-endian bytes, or int64 values.
public struct ONNXTensor: Sendable {
  public enum Values: Sendable {
    case float([Float])
    case int64([Int])
  }

  public var name: String
  public var dims: [Int]
  public var values: Values

  public init(name: String, dims: [Int], values: Values) {
    let count = dims.reduce(1, *)
    switch values {
    case .float(let v): precondition(v.count == count, "ONNXTensor \(name): \(v.count) values for dims \(dims)")
    case .int64(let v): precondition(v.count == count, "ONNXTensor \(name): \(v.count) values for dims \(dims)")
    }
    self.name = name
    self.dims = dims
    self.values = values
  }

  func encode(into w: inout ProtobufWriter) {
    for d in dims { w.int(1, d) }                     // dims (proto2, unpacked)
    switch values {
    case .float(let v):
      w.int(2, 1)                                     // data_type FLOAT
      w.string(8, name)
      w.bytes(9, v.littleEndianBytes)                 // raw_data
    case .int64(let v):
      w.int(2, 7)                                     // data_type INT64
      w.string(8, name)
      w.packedInts(7, v)                              // int64_data (packed)
    }
  }
}

/// A ValueInfoProto for a graph input or output: a float32 tensor whose dimensions are
/// numbers or names (`dim_param`, a size fixed only when the model runs).
public struct ONNXValueInfo: Sendable {
  public enum Dimension: Sendable, Equatable {
    case fixed(Int)
    case named(String)
  }

  public var name: String
  public var dims: [Dimension]

  public init(name: String, dims: [Dimension]) {
    self.name = name
    self.dims = dims
  }

  func encode(into w: inout ProtobufWriter) {
    w.string(1, name)
    w.message(2) { type in                            // TypeProto
      type.message(1) { tensor in                     // tensor_type
        tensor.int(1, 1)                              // elem_type FLOAT
        tensor.message(2) { shape in                  // TensorShapeProto
          for d in dims {
            shape.message(1) { dim in
              switch d {
              case .fixed(let n): dim.int(1, n)
              case .named(let s): dim.string(2, s)
              }
            }
          }
        }
      }
    }
  }
}
