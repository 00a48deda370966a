import AEPSLData
import AEPSLEngine
import AEPSLFiles
import AEPSLMethod
import Foundation

/// A trained network as it runs at inference, in plain terms other frameworks share: a list
/// of convolutions (batch norm folded in, ReLU as a flag) and max poolings, then the heads.
/// Dropout is the identity at inference and does not appear. Both exports (ONNX, the
/// PyTorch state dict) are written from this one description.
public struct InferenceNetwork: Sendable {
  /// A convolution with its folded weights, OIHW, and bias.
  public struct Convolution: Sendable {
    public var name: String
    public var inputChannels: Int, outputChannels: Int
    public var kernelSize: Int, stride: Int, padding: Int, dilation: Int
    public var relu: Bool
    public var weight: [Float]
    public var bias: [Float]?
  }

  public enum Layer: Sendable {
    case convolution(Convolution)
    /// Symmetric padding; with `ceilMode` a last, partial window is kept (PyTorch's rule).
    case maxPool(name: String, kernelSize: Int, stride: Int, padding: Int, ceilMode: Bool)
  }

  /// A fully connected layer, weight [outputs, inputs] (PyTorch's order).
  public struct Dense: Sendable {
    public var name: String
    public var inputs: Int, outputs: Int
    public var weight: [Float]
    public var bias: [Float]
  }

  public enum Head: Sendable {
    /// The PSL segmenter: a 1x1 convolution to background + classes score maps, and the
    /// classification branch (global average pooling, `classifier`, sigmoid).
    case segmenter(score: Convolution, classifier: Dense)
    /// The erasing classifier: global average pooling, `classifier`, sigmoid; its CAMs are
    /// ReLU(sum_k w_ck A_k) over the last feature map.
    case classifier(Dense)
  }

  public var net: String
  public var layers: [Layer]
  public var head: Head
  public var classNames: [String]
  /// Where the score cells (and CAM cells) sit on the input: stride and alignment.
  public var grid: ScoreGrid
  /// The working resolution the network was trained at (longer side), when it had one.
  public var imageSide: Int?
  /// Key-value facts a user needs to feed the network and read its outputs (ONNX
  /// metadata_props, the safetensors header's metadata).
  public var metadata: [(key: String, value: String)]

  public var featureChannels: Int {
    for case let .convolution(c) in layers.reversed() { return c.outputChannels }
    return 3
  }
}

extension InferenceNetwork {
  /// The inference form of `backbone`: batch norm folded into the convolution before it.
  static func layers(of backbone: Sequential) throws -> [Layer] {
    try backbone.foldedForInference().layers.compactMap { layer -> Layer? in
      switch layer {
      case let conv as Conv2d:
        return .convolution(Convolution(conv, relu: conv.fusedReLU))
      case let pool as MaxPool2d:
        return .maxPool(name: pool.name, kernelSize: pool.kernelSize, stride: pool.stride, padding: pool.padding,
                        ceilMode: pool.ceilMode)
      case is Dropout:
        return nil
      default:
        throw AEPSLError(problem: "the layer '\(layer.name)' (\(type(of: layer))) has no exported form",
                          fix: "Export a network of \(BackboneSpec.names.joined(separator: ", ")).")
      }
    }
  }

  /// The segmenter `model` described by `info` (its checkpoint's metadata).
  public init(segmenter model: Segmenter, info: SegmenterInfo, confidenceThreshold: Float = 0.1) throws {
    self.init(net: model.spec.name, layers: try Self.layers(of: model.backbone),
              head: .segmenter(score: Convolution(model.scoreLayer, relu: false), classifier: Dense(model.classifier)),
              classNames: info.classNames, grid: ScoreGrid(spec: model.spec), imageSide: info.imageSide, metadata: [])
    metadata = [("aepsl_network", "segmenter"), ("variant", info.variant)] + commonMetadata
      + [("classification_branch", info.classificationTrained ? "trained" : "untrained"),
         ("confidence_threshold", "\(confidenceThreshold)")]
  }

  /// The classifier of erasing step `step`.
  public init(classifier model: Classifier, classNames: [String], step: Int, imageSide: Int?) throws {
    self.init(net: model.spec.name, layers: try Self.layers(of: model.backbone), head: .classifier(Dense(model.classifier)),
              classNames: classNames, grid: ScoreGrid(spec: model.spec), imageSide: imageSide, metadata: [])
    metadata = [("aepsl_network", "classifier"), ("erase_step", "\(step)")] + commonMetadata
  }

  /// What a user needs to prepare the input and place the outputs, for either network.
  var commonMetadata: [(key: String, value: String)] {
    let norm = PixelNormalization.imageNet
    let padding = grid.alignCorners
      ? "bottom and right, with 0 (the mean pixel), to (side - 1 + \(grid.stride - 1)) // \(grid.stride) * \(grid.stride) + 1"
      : "bottom and right, with 0 (the mean pixel), to (side + \(grid.stride - 1)) // \(grid.stride) * \(grid.stride)"
    return [
      ("net", net),
      ("class_names", jsonArray(classNames.map(jsonString))),
      ("input", "float32 [N, 3, H, W], RGB, x = (pixel - mean) / std with pixels on the 0-255 scale"),
      ("normalization_mean", jsonArray(norm.mean.map { "\($0)" })),
      ("normalization_std", jsonArray(norm.std.map { "\($0)" })),
      ("output_stride", "\(grid.stride)"),
      ("score_grid", grid.alignCorners ? "align_corners" : "half_pixel"),
      ("input_padding", padding),
      ("aepsl_version", aepslVersion),
    ] + (imageSide.map { [("image_side", "\($0)")] } ?? [])
  }
}

private func jsonArray(_ items: [String]) -> String { "[" + items.joined(separator: ", ") + "]" }

extension InferenceNetwork.Convolution {
  init(_ conv: Conv2d, relu: Bool) {
    self.init(name: conv.name, inputChannels: conv.inputChannels, outputChannels: conv.outputChannels,
              kernelSize: conv.kernelSize, stride: conv.stride, padding: conv.padding, dilation: conv.dilation,
              relu: relu, weight: rowMajor(conv.weight.value), bias: conv.bias.map { rowMajor($0.value) })
  }
}

extension InferenceNetwork.Dense {
  init(_ linear: Linear) {
    self.init(name: linear.name, inputs: linear.inFeatures, outputs: linear.outFeatures,
              weight: rowMajor(linear.weight.value), bias: rowMajor(linear.bias.value))
  }
}

/// A tensor's values in row-major (NCHW) order, whatever its layout.
func rowMajor(_ tensor: Tensor) -> [Float] {
  let plain = tensor.nchw()
  return withExtendedLifetime(plain) { Array(UnsafeBufferPointer(start: plain.data, count: plain.count)) }
}
