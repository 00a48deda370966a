import AEPSLEngine
import Foundation

/// An `InferenceNetwork` as a PyTorch state dict in a safetensors file, for
/// scripts/aepsl_torch.py: plain names, batch norm folded, every tensor in PyTorch's layout.
///
///     backbone.<layer>.weight [O, I, k, k], backbone.<layer>.bias [O]   (in order)
///     score.weight [C + 1, K, 1, 1], score.bias [C + 1]                 (segmenter)
///     classifier.weight [C, K], classifier.bias [C]
///
/// The header's metadata holds the ONNX export's keys plus `layers`, a JSON list of the
/// backbone (type, name, kernel, stride, padding, dilation, relu, ceil_mode), from which the
/// script builds the module.
public enum TorchExport {
  public static func tensors(_ network: InferenceNetwork) -> [(String, Tensor)] {
    var out: [(String, Tensor)] = []
    func add(_ name: String, _ shape: [Int], _ values: [Float]) { out.append((name, Tensor(shape: shape, values: values))) }
    func conv(_ prefix: String, _ c: InferenceNetwork.Convolution) {
      add("\(prefix).weight", [c.outputChannels, c.inputChannels, c.kernelSize, c.kernelSize], c.weight)
      if let b = c.bias { add("\(prefix).bias", [c.outputChannels], b) }
    }
    for case .convolution(let c) in network.layers { conv("backbone.\(c.name)", c) }
    let classifier: InferenceNetwork.Dense
    switch network.head {
    case let .segmenter(score, dense):
      conv("score", score)
      classifier = dense
    case let .classifier(dense):
      classifier = dense
    }
    add("classifier.weight", [classifier.outputs, classifier.inputs], classifier.weight)
    add("classifier.bias", [classifier.outputs], classifier.bias)
    return out
  }

  /// The backbone as JSON, one object per layer in order.
  public static func layerList(_ network: InferenceNetwork) -> String {
    let items = network.layers.map { layer -> String in
      switch layer {
      case .convolution(let c):
        return "{\"type\": \"conv\", \"name\": \"\(c.name)\", \"in\": \(c.inputChannels), \"out\": \(c.outputChannels), "
          + "\"kernel\": \(c.kernelSize), \"stride\": \(c.stride), \"padding\": \(c.padding), "
          + "\"dilation\": \(c.dilation), \"relu\": \(c.relu), \"bias\": \(c.bias != nil)}"
      case let .maxPool(name, k, s, p, ceil):
        return "{\"type\": \"maxpool\", \"name\": \"\(name)\", \"kernel\": \(k), \"stride\": \(s), \"padding\": \(p), "
          + "\"ceil_mode\": \(ceil)}"
      }
    }
    return "[" + items.joined(separator: ", ") + "]"
  }

  /// Writes the state dict of `network` to `url`, atomically.
  public static func write(_ network: InferenceNetwork, to url: URL) throws {
    var metadata = Dictionary(network.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
    metadata["layers"] = layerList(network)
    try SafetensorsFile.write(tensors(network), metadata: metadata, to: url)
  }
}
