import AEPSLFiles
import AEPSLMethod
import Foundation

/// An `InferenceNetwork` as an ONNX model (opset 17, float32), with dynamic batch, height and
/// width.
///
///     segmenter:  image [N, 3, H, W] -> scores [N, C + 1, h, w]           (h, w: the score grid)
///                                       upsampled_scores [N, C + 1, H, W] (bilinear, on the grid)
///                                       confidences [N, C]                (sigmoid, classification branch)
///     classifier: image [N, 3, H, W] -> cams [N, C, h, w]                 (ReLU(sum_k w_ck A_k))
///                                       confidences [N, C]
///
/// Channel 0 of the scores is background, channel c the class `class_names[c - 1]`.
/// `upsampled_scores` is what `aepsl predict` computes before the softmax: the input padded
/// as `input_padding` says makes the grid fit it exactly; crop it back to the image.
public enum ONNXExport {
  public static func model(_ network: InferenceNetwork) -> ONNXModel {
    var b = GraphBuilder(graph: ONNXGraph(name: "aepsl_\(network.net)"))
    b.graph.inputs = [ONNXValueInfo(name: "image", dims: [.named("batch"), .fixed(3), .named("height"), .named("width")])]
    var x = "image"
    for layer in network.layers { x = b.add(layer, input: x) }
    let classes = network.classNames.count
    func onGrid(_ channels: Int) -> [ONNXValueInfo.Dimension] {
      [.named("batch"), .fixed(channels), .named("grid_height"), .named("grid_width")]
    }
    switch network.head {
    case let .segmenter(score, classifier):
      let scores = b.convolution(score, input: x, output: "scores")
      b.upsample(scores, like: "image", alignCorners: network.grid.alignCorners, output: "upsampled_scores")
      b.confidences(classifier, features: x)
      b.graph.outputs = [
        ONNXValueInfo(name: "scores", dims: onGrid(classes + 1)),
        ONNXValueInfo(name: "upsampled_scores", dims: [.named("batch"), .fixed(classes + 1), .named("height"), .named("width")]),
      ]
    case let .classifier(classifier):
      // The CAM of class c is the classifier's row c applied at every position of the
      // features: a 1x1 convolution without bias, then ReLU.
      let cam = InferenceNetwork.Convolution(
        name: "cam", inputChannels: classifier.inputs, outputChannels: classifier.outputs, kernelSize: 1, stride: 1,
        padding: 0, dilation: 1, relu: true, weight: classifier.weight, bias: nil)
      b.convolution(cam, input: x, output: "cams")
      b.confidences(classifier, features: x)
      b.graph.outputs = [ONNXValueInfo(name: "cams", dims: onGrid(classes))]
    }
    b.graph.outputs.append(ONNXValueInfo(name: "confidences", dims: [.named("batch"), .fixed(classes)]))
    return ONNXModel(graph: b.graph, producerVersion: aepslVersion, metadata: network.metadata, docString: docString(network))
  }

  /// Writes `network` as an ONNX file at `url`, atomically.
  public static func write(_ network: InferenceNetwork, to url: URL) throws {
    try writeFileAtomically(Data(model(network).serialized()), to: url)
  }

  static func docString(_ network: InferenceNetwork) -> String {
    switch network.head {
    case .segmenter:
      return "aepsl segmenter (\(network.net)): scores and upsampled_scores have background in channel 0 and "
        + "class_names[c - 1] in channel c; confidences are the classification branch's sigmoid. See metadata_props "
        + "for the input normalisation and padding."
    case .classifier:
      return "aepsl erasing classifier (\(network.net)): cams [N, C, h, w] (ReLU of the class weights over the last "
        + "features), confidences [N, C] (sigmoid). See metadata_props for the input normalisation."
    }
  }
}

/// Appends nodes and initializers, naming every value after the layer that makes it.
private struct GraphBuilder {
  var graph: ONNXGraph

  mutating func node(_ op: String, _ name: String, _ inputs: [String], _ outputs: [String], _ attributes: [ONNXAttribute] = []) {
    graph.nodes.append(ONNXNode(op, name: name, inputs: inputs, outputs: outputs, attributes: attributes))
  }

  mutating func constant(_ name: String, dims: [Int], _ values: ONNXTensor.Values) -> String {
    graph.initializers.append(ONNXTensor(name: name, dims: dims, values: values))
    return name
  }

  mutating func add(_ layer: InferenceNetwork.Layer, input: String) -> String {
    switch layer {
    case .convolution(let c):
      return convolution(c, input: input, output: c.name)
    case let .maxPool(name, k, s, p, ceil):
      node("MaxPool", name, [input], [name], [
        .ints("kernel_shape", [k, k]), .ints("strides", [s, s]), .ints("pads", [p, p, p, p]), .int("ceil_mode", ceil ? 1 : 0),
      ])
      return name
    }
  }

  @discardableResult
  mutating func convolution(_ c: InferenceNetwork.Convolution, input: String, output: String) -> String {
    let w = constant("\(c.name).weight", dims: [c.outputChannels, c.inputChannels, c.kernelSize, c.kernelSize], .float(c.weight))
    var inputs = [input, w]
    if let bias = c.bias { inputs.append(constant("\(c.name).bias", dims: [c.outputChannels], .float(bias))) }
    let convOutput = c.relu ? "\(output).conv" : output
    node("Conv", c.name, inputs, [convOutput], [
      .ints("kernel_shape", [c.kernelSize, c.kernelSize]), .ints("strides", [c.stride, c.stride]),
      .ints("pads", [c.padding, c.padding, c.padding, c.padding]), .ints("dilations", [c.dilation, c.dilation]),
    ])
    if c.relu { node("Relu", "\(c.name).relu", [convOutput], [output]) }
    return output
  }

  /// sigmoid(W gap(features) + b) as `confidences`.
  mutating func confidences(_ d: InferenceNetwork.Dense, features: String) {
    node("GlobalAveragePool", "gap", [features], ["gap"])
    node("Flatten", "gap.flatten", ["gap"], ["gap.flat"], [.int("axis", 1)])
    let w = constant("\(d.name).weight", dims: [d.outputs, d.inputs], .float(d.weight))
    let b = constant("\(d.name).bias", dims: [d.outputs], .float(d.bias))
    node("Gemm", d.name, ["gap.flat", w, b], ["logits"], [.int("transB", 1)])
    node("Sigmoid", "confidences", ["logits"], ["confidences"])
  }

  /// Bilinear resize of `input` to the height and width of `reference`, as aepsl upsamples
  /// score maps (`resizeBilinear`: align corners on DeepLab's grid, half-pixel centres
  /// with clamping otherwise).
  mutating func upsample(_ input: String, like reference: String, alignCorners: Bool, output: String) {
    let (two, four, zero, axis) = (constant("const.2", dims: [1], .int64([2])), constant("const.4", dims: [1], .int64([4])),
                                   constant("const.0", dims: [1], .int64([0])), constant("const.axis0", dims: [1], .int64([0])))
    node("Shape", "\(output).input_shape", [input], ["\(output).input_shape"])
    node("Slice", "\(output).batch_channels", ["\(output).input_shape", zero, two, axis], ["\(output).batch_channels"])
    node("Shape", "\(output).reference_shape", [reference], ["\(output).reference_shape"])
    node("Slice", "\(output).height_width", ["\(output).reference_shape", two, four, axis], ["\(output).height_width"])
    node("Concat", "\(output).sizes", ["\(output).batch_channels", "\(output).height_width"], ["\(output).sizes"], [.int("axis", 0)])
    node("Resize", output, [input, "", "", "\(output).sizes"], [output], [
      .init("mode", .string("linear")),
      .init("coordinate_transformation_mode", .string(alignCorners ? "align_corners" : "half_pixel")),
    ])
  }
}
