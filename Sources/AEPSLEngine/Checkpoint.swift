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

/// Copies a row-major tensor's values into `destination`, keeping the destination's layout.
func copyValues(_ source: Tensor, into destination: Tensor) {
  let ordered = destination.layout == .nchw ? source.nchw() : source.to(destination.layout)
  // Keep `ordered` alive while its storage is read: it may be a fresh copy.
  withExtendedLifetime(ordered) { destination.data.update(from: ordered.data, count: destination.count) }
}
