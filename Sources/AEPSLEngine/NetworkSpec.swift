/// One layer of a backbone, as data.
public enum LayerSpec: Sendable, Equatable {
  /// A convolution followed by ReLU (and, in batch-normalised networks, by BatchNorm first).
  case conv(name: String, outputChannels: Int, kernelSize: Int, padding: Int, dilation: Int = 1)
  case maxPool(name: String, kernelSize: Int, stride: Int, padding: Int, ceilMode: Bool)
  case dropout(name: String, p: Float)
}

/// A backbone described by data and built once (`Sequential(spec:seed:)`): the list of
/// layers, whether each convolution is batch-normalised, and the output stride.
public struct BackboneSpec: Sendable, Equatable {
  public let name: String
  public let inputChannels: Int
  public let layers: [LayerSpec]
  /// Batch normalisation after every convolution (networks trained from scratch need it;
  /// docs/METHOD.md section 2).
  public let batchNorm: Bool

  public init(name: String, inputChannels: Int = 3, layers: [LayerSpec], batchNorm: Bool) {
    self.name = name
    self.inputChannels = inputChannels
    self.layers = layers
    self.batchNorm = batchNorm
  }

  /// Channels of the last feature map (where CAMs and the heads read from).
  public var featureChannels: Int {
    for case let .conv(_, c, _, _, _) in layers.reversed() { return c }
    return inputChannels
  }

  /// How many input pixels one feature-map cell spans along x and y: the product of the pools' strides.
  public var outputStride: Int {
    layers.reduce(1) { s, layer in
      if case let .maxPool(_, _, stride, _, _) = layer { return s * stride }
      return s
    }
  }

  /// Names the networks the command line knows.
  public static func named(_ name: String) -> BackboneSpec? {
    switch name {
    case "largefov": return .largeFOV
    case "tiny": return .tiny
    default: return nil
    }
  }

  public static let names = ["tiny", "largefov"]

  /// A VGG-style stage: `count` 3x3 convolutions named `<prefix>_1`, `<prefix>_2`, ...
  static func stage(_ prefix: String, _ count: Int, _ channels: Int, dilation: Int = 1) -> [LayerSpec] {
    (1...count).map { .conv(name: "\(prefix)_\($0)", outputChannels: channels, kernelSize: 3, padding: dilation, dilation: dilation) }
  }

  static func pool(_ name: String, stride: Int) -> LayerSpec {
    .maxPool(name: name, kernelSize: 3, stride: stride, padding: 1, ceilMode: true)
  }

  static func halve(_ name: String) -> LayerSpec {
    .maxPool(name: name, kernelSize: 2, stride: 2, padding: 0, ceilMode: false)
  }

  /// DeepLab-LargeFOV on VGG-16: pool4 and pool5 with stride 1, conv5 dilated by 2, fc6 a
  /// 3x3 convolution dilated by 12 with 1024 channels, fc7 1x1 with 1024; output stride 8.
  /// Layer names match torchvision's VGG-16 order so ImageNet weights load by position.
  public static let largeFOV = BackboneSpec(
    name: "largefov",
    layers: stage("conv1", 2, 64) + [pool("pool1", stride: 2)]
      + stage("conv2", 2, 128) + [pool("pool2", stride: 2)]
      + stage("conv3", 3, 256) + [pool("pool3", stride: 2)]
      + stage("conv4", 3, 512) + [pool("pool4", stride: 1)]
      + stage("conv5", 3, 512, dilation: 2) + [pool("pool5", stride: 1)]
      + [.conv(name: "fc6", outputChannels: 1024, kernelSize: 3, padding: 12, dilation: 12), .dropout(name: "drop6", p: 0.5),
         .conv(name: "fc7", outputChannels: 1024, kernelSize: 1, padding: 0), .dropout(name: "drop7", p: 0.5)],
    batchNorm: false)

  /// The same shape at a size that trains in minutes on two cores: VGG-like stages of
  /// 16-32-64-128 channels, three 2x2 stride-2 pools (output stride 8, 128 -> 16), and one
  /// dilated 3x3 layer of 256 channels; 9 convolutions, each batch-normalised.
  public static let tiny = BackboneSpec(
    name: "tiny",
    layers: stage("conv1", 2, 16) + [halve("pool1")]
      + stage("conv2", 2, 32) + [halve("pool2")]
      + stage("conv3", 2, 64) + [halve("pool3")]
      + stage("conv4", 2, 128)
      + [.conv(name: "fc6", outputChannels: 256, kernelSize: 3, padding: 2, dilation: 2)],
    batchNorm: true)
}
