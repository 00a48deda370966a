import AEPSLFiles
import Foundation

/// Saves and loads a network's parameters and buffers as one `.safetensors` file.
public enum Checkpoint {
  /// Writes parameters then buffers, in the given order, with `metadata`, atomically.
  public static func save(parameters: [Parameter], buffers: [Buffer], metadata: [String: String] = [:],
                          to url: URL) throws {
    let tensors = parameters.map { ($0.name, $0.value) } + buffers.map { ($0.name, $0.value) }
    try SafetensorsFile.write(tensors, metadata: metadata, to: url)
  }

  /// Loads a checkpoint into `parameters` and `buffers` and returns its metadata.
  ///
  /// Nothing is overwritten unless everything fits: every shape must match, and with
  /// `strict` every network name must be in the file and every file tensor in the network.
  /// Without `strict`, names on only one side are skipped (to start from a partial match).
  /// Loaded parameters get their `version` bumped so layers refresh cached copies.
  @discardableResult
  public static func load(from url: URL, into parameters: [Parameter], buffers: [Buffer],
                          strict: Bool = true) throws -> [String: String] {
    let file = try SafetensorsFile(contentsOf: url)
    let targets = parameters.map { ($0.name, $0.value) } + buffers.map { ($0.name, $0.value) }
    var problems: [String] = []
    var matched: [(Tensor, Tensor)] = []
    for (name, destination) in targets {
      guard let source = file.tensors[name] else {
        if strict { problems.append("\(name): missing from the file") }
        continue
      }
      if source.shape != destination.shape {
        problems.append("\(name): file has \(source.shape), network expects \(destination.shape)")
      } else {
        matched.append((source, destination))
      }
    }
    if strict {
      let expected = Set(targets.map(\.0))
      for name in file.order where !expected.contains(name) {
        problems.append("\(name): in the file but not in the network")
      }
    }
    guard problems.isEmpty else {
      throw AEPSLError(
        file: url.path,
        problem: "does not fit the network (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n  "
          + problems.joined(separator: "\n  "),
        fix: "Load it into the network configuration it was saved from (same network and number of classes).")
    }
    for (source, destination) in matched { copyValues(source, into: destination) }
    for parameter in parameters where file.tensors[parameter.name] != nil { parameter.version += 1 }
    return file.metadata
  }
}

/// Initialises the convolutions of a VGG-16 network from a torchvision state dict saved as
/// `.safetensors` (`safetensors.torch.save_file(torchvision.models.vgg16(weights=...).state_dict(), path)`).
///
/// torchvision numbers the layers of its `features` Sequential, ReLUs and poolings included;
/// the convolutions are at `featureIndices`. Keys the network does not use (the
/// `classifier.*` layers, or convolutions a smaller network lacks) are ignored and counted.
public enum VGG16Import {
  public static let convolutionNames: [String] = [
    "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
    "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3",
  ]
  public static let featureIndices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]

  /// Copies `features.N.weight`/`.bias` into the `<convname>.weight`/`.bias` parameters
  /// present in `parameters`; returns how many tensors of the file were ignored.
  @discardableResult
  public static func load(from url: URL, into parameters: [Parameter]) throws -> Int {
    let file = try SafetensorsFile(contentsOf: url)
    var byName: [String: Parameter] = [:]
    for p in parameters where byName[p.name] == nil { byName[p.name] = p }

    var problems: [String] = []
    var matched: [(Tensor, Parameter)] = []
    var used = Set<String>()
    var wanted = 0
    for (index, convolution) in zip(featureIndices, convolutionNames) {
      for suffix in ["weight", "bias"] {
        guard let parameter = byName["\(convolution).\(suffix)"] else { continue }
        wanted += 1
        let key = "features.\(index).\(suffix)"
        guard let source = file.tensors[key] else {
          problems.append("\(key) (for \(parameter.name)) is missing")
          continue
        }
        used.insert(key)
        if source.shape != parameter.value.shape {
          problems.append("\(key) -> \(parameter.name): file has \(source.shape), network expects \(parameter.value.shape)")
        } else {
          matched.append((source, parameter))
        }
      }
    }
    guard wanted > 0 else {
      throw AEPSLError(
        file: url.path, problem: "cannot initialise this network: it has none of the parameters conv1_1.weight ... conv5_3.bias",
        fix: "Use --init only with the VGG-16 (largefov) network.")
    }
    guard problems.isEmpty else {
      // vgg16_bn interleaves BatchNorm layers, so its feature indices differ.
      let looksBatchNorm = file.order.contains { $0.hasSuffix("running_mean") }
      throw AEPSLError(
        file: url.path,
        problem: "is not a torchvision VGG-16 state dict this network can use (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n  "
          + problems.joined(separator: "\n  "),
        fix: (looksBatchNorm ? "It looks like vgg16_bn, whose layers are numbered differently. " : "")
          + "Export plain VGG-16: safetensors.torch.save_file(torchvision.models.vgg16(weights='IMAGENET1K_V1').state_dict(), path).")
    }
    for (source, parameter) in matched {
      copyValues(source, into: parameter.value)
      parameter.version += 1
    }
    return file.order.count - used.count
  }
}

/// Copies a row-major tensor's values into `destination`, keeping the destination's layout.
private func copyValues(_ source: Tensor, into destination: Tensor) {
  let ordered = destination.layout == .nchw ? source.nchw() : source.to(destination.layout)
  // Keep `ordered` alive while its storage is read: it may be a fresh copy.
  withExtendedLifetime(ordered) { destination.data.update(from: ordered.data, count: destination.count) }
}
