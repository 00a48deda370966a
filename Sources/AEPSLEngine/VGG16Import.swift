import AEPSLFiles
import Foundation

/// Initialises a VGG-16 network (`largefov`) from ImageNet weights saved as `.safetensors`,
/// the way DeepLab built its LargeFOV initial model.
///
/// Two key layouts of the same weights are accepted:
/// - torchvision's state dict (`safetensors.torch.save_file(torchvision.models.vgg16(
///   weights='IMAGENET1K_V1').state_dict(), path)`): `features.N.weight/.bias`,
///   `classifier.0.weight` [4096, 25088], `classifier.3.weight` [4096, 4096];
/// - timm's `vgg16.tv_in1k` (the same torchvision weights, published as model.safetensors on
///   the Hugging Face hub): the same `features.N`, `pre_logits.fc1.weight` [4096, 512, 7, 7],
///   `pre_logits.fc2.weight` [4096, 4096, 1, 1].
/// Both store fc6's 25,088 inputs in (channel, row, column) order, which is what lets the
/// weights be seen as a 7x7 convolution over pool5's 512 channels.
///
/// fc6 and fc7 (DeepLab-LargeFOV; Chen et al., ICLR 2015, section 4.1, "we subsample by
/// decimation"): fc6 becomes a 3x3 convolution with 1024 outputs, fc7 a 1x1 with 1024
/// inputs and outputs, by keeping
/// - outputs 0, 4, 8, ..., 4092 of fc6 and fc7 (every 4th, `fcChannelStep`), with their biases;
/// - fc7's inputs 0, 4, ..., 4092 (fc6's kept outputs, so the two stay consistent);
/// - fc6's taps at rows and columns 0, 3, 6 of the 7x7 window (`fc6Taps`), so the 3x3
///   kernel spans the 7x7 one; all 512 input channels.
/// In array terms: `fc6 = W6.reshape(4096, 512, 7, 7)[::4, :, ::3, ::3]`,
/// `fc7 = W7[::4, ::4]`, `b = b[::4]`. The released DeepLab init model (init.caffemodel) is a
/// Caffe binary without the script that made it; these indices are those of the net
/// surgery that DeepLab's reduced VGG-16 is reproduced with (ParseNet/SSD's
/// `VGG_ILSVRC_16_layers_fc_reduced`, "following what DeepLab did", and the PyTorch ports),
/// docs/INIT.md gives the sources. The dilation (12) is the network's, not the weights'.
public enum VGG16Import {
  public static let convolutionNames: [String] = [
    "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
    "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3",
  ]
  /// Positions of the convolutions in torchvision's `features` Sequential (ReLUs and
  /// poolings are numbered too).
  public static let featureIndices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
  /// fc6 and fc7 keep every 4th output (4096 -> 1024); fc7 every 4th input.
  public static let fcChannelStep = 4
  /// The rows (and columns) of fc6's 7x7 window that its 3x3 kernel keeps.
  public static let fc6Taps = [0, 3, 6]

  /// Where each layout keeps fc6 and fc7.
  public enum KeyLayout: String, Sendable, CaseIterable {
    case torchvision, timm
    var fc6: String { self == .torchvision ? "classifier.0" : "pre_logits.fc1" }
    var fc7: String { self == .torchvision ? "classifier.3" : "pre_logits.fc2" }

    /// The layout whose fc6 key the file has (torchvision when it has neither).
    static func detect(_ file: SafetensorsFile) -> KeyLayout {
      file.tensors["pre_logits.fc1.weight"] != nil ? .timm : .torchvision
    }
  }

  /// Copies the convolutions, and fc6/fc7 decimated, into the parameters of `parameters`
  /// that exist (a network without fc6/fc7 of DeepLab's shape takes only what it has);
  /// returns how many tensors of the file were not used (the 1000-class layer, at least).
  @discardableResult
  public static func load(from url: URL, into parameters: [Parameter]) throws -> Int {
    try load(SafetensorsFile(contentsOf: url), name: url.path, into: parameters)
  }

  /// As `load(from:into:)`, from a file already read; `name` is for error messages.
  @discardableResult
  public static func load(_ file: SafetensorsFile, name: String, into parameters: [Parameter]) throws -> Int {
    var byName: [String: Parameter] = [:]
    for p in parameters where byName[p.name] == nil { byName[p.name] = p }
    let layout = KeyLayout.detect(file)
    var problems: [String] = []
    var matched: [(Tensor, Parameter)] = []
    var used = Set<String>()

    for (index, convolution) in zip(featureIndices, convolutionNames) {
      for suffix in ["weight", "bias"] {
        guard let parameter = byName["\(convolution).\(suffix)"] else { continue }
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
    for (layer, key) in [("fc6", layout.fc6), ("fc7", layout.fc7)] {
      guard let weight = byName["\(layer).weight"], let bias = byName["\(layer).bias"] else { continue }
      guard let w = file.tensors["\(key).weight"], let b = file.tensors["\(key).bias"] else {
        problems.append("\(key).weight and \(key).bias (for \(layer)) are missing")
        continue
      }
      used.formUnion(["\(key).weight", "\(key).bias"])
      do {
        let decimated = layer == "fc6" ? try decimateFC6(weight: w, bias: b) : try decimateFC7(weight: w, bias: b)
        for (source, parameter) in [(decimated.weight, weight), (decimated.bias, bias)] {
          if source.shape == parameter.value.shape {
            matched.append((source, parameter))
          } else {
            problems.append("\(key) decimated gives \(source.shape), network's \(parameter.name) is \(parameter.value.shape)")
          }
        }
      } catch let error as DecimationError {
        problems.append("\(key): \(error.problem)")
      }
    }
    guard !matched.isEmpty || !problems.isEmpty else {
      throw AEPSLError(
        file: name, problem: "cannot initialise this network: it has none of the parameters conv1_1.weight ... fc7.bias",
        fix: "Use --init only with the VGG-16 (largefov) network.")
    }
    guard problems.isEmpty else {
      // vgg16_bn interleaves BatchNorm layers, so its feature indices differ.
      let looksBatchNorm = file.order.contains { $0.hasSuffix("running_mean") }
      throw AEPSLError(
        file: name,
        problem: "is not a VGG-16 state dict this network can use (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n  "
          + problems.joined(separator: "\n  "),
        fix: (looksBatchNorm ? "It looks like vgg16_bn, whose layers are numbered differently. " : "")
          + "Use `aepsl weights fetch vgg16` (timm's vgg16.tv_in1k), or export plain VGG-16: "
          + "safetensors.torch.save_file(torchvision.models.vgg16(weights='IMAGENET1K_V1').state_dict(), path).")
    }
    for (source, parameter) in matched {
      copyValues(source, into: parameter.value)
      parameter.version += 1
    }
    return file.order.count - used.count
  }

  struct DecimationError: Error { let problem: String }

  /// fc6 [4096, 25088] or [4096, 512, 7, 7] and its bias [4096] -> [1024, 512, 3, 3], [1024].
  public static func decimateFC6(weight: Tensor, bias: Tensor) throws -> (weight: Tensor, bias: Tensor) {
    let (outputs, channels, window) = (4096, 512, 7)
    guard weight.count == outputs * channels * window * window, weight.shape.first == outputs,
          bias.shape == [outputs] else {
      throw DecimationError(problem: "has weight \(weight.shape) and bias \(bias.shape); VGG-16's fc6 is [4096, 25088] (or [4096, 512, 7, 7]) and [4096]")
    }
    return (decimate(weight.nchw(), outputs: outputs, inputs: channels, inputStep: 1, window: window, taps: fc6Taps),
            decimate(bias.nchw(), outputs: outputs, inputs: 1, inputStep: 1, window: 1, taps: [0]))
  }

  /// fc7 [4096, 4096] or [4096, 4096, 1, 1] and its bias [4096] -> [1024, 1024, 1, 1], [1024].
  public static func decimateFC7(weight: Tensor, bias: Tensor) throws -> (weight: Tensor, bias: Tensor) {
    let features = 4096
    guard weight.count == features * features, weight.shape.first == features, bias.shape == [features] else {
      throw DecimationError(problem: "has weight \(weight.shape) and bias \(bias.shape); VGG-16's fc7 is [4096, 4096] (or [4096, 4096, 1, 1]) and [4096]")
    }
    return (decimate(weight.nchw(), outputs: features, inputs: features, inputStep: fcChannelStep, window: 1, taps: [0]),
            decimate(bias.nchw(), outputs: features, inputs: 1, inputStep: 1, window: 1, taps: [0]))
  }

  /// Reads `source` as [outputs, inputs, window, window] (row-major) and keeps outputs
  /// 0, step, 2 step, ... (step `fcChannelStep`), inputs 0, inputStep, ..., and the rows and
  /// columns `taps`: [outputs / step, inputs / inputStep, taps.count, taps.count] (a 1-D
  /// result for a bias, `inputs` = `window` = 1).
  public static func decimate(_ source: Tensor, outputs: Int, inputs: Int, inputStep: Int, window: Int,
                              taps: [Int]) -> Tensor {
    precondition(source.count == outputs * inputs * window * window && outputs % fcChannelStep == 0 && inputs % inputStep == 0)
    let (keptOutputs, keptInputs, k) = (outputs / fcChannelStep, inputs / inputStep, taps.count)
    let shape = inputs == 1 && window == 1 ? [keptOutputs] : [keptOutputs, keptInputs, k, k]
    let out = Tensor(shape: shape)
    var position = 0
    withExtendedLifetime(source) {
      for o in 0..<keptOutputs {
        for i in 0..<keptInputs {
          let base = ((o * fcChannelStep * inputs) + i * inputStep) * window * window
          for row in taps {
            for column in taps {
              out.data[position] = source.data[base + row * window + column]
              position += 1
            }
          }
        }
      }
    }
    return out
  }
}
