import AEPSLEngine
import ArgumentParser
import Foundation

/// `aepsl weights`: the ImageNet weights `--init imagenet` uses, without PyTorch.
struct WeightsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "weights",
    abstract: "Download and check the ImageNet weights that --init imagenet starts largefov from.",
    discussion: """
      vgg16 is timm's vgg16.tv_in1k on the Hugging Face hub (torchvision's IMAGENET1K_V1 VGG-16 as \
      model.safetensors, 528 MB), pinned to one revision; HF_ENDPOINT points at a mirror. The cache \
      folder is $AEPSL_CACHE_DIR, else $XDG_CACHE_HOME/aepsl, else ~/.cache/aepsl. An interrupted \
      download resumes where it stopped; the file is checked (size, every tensor's name and shape, \
      the SHA-256 the hub reports) before it is renamed into place.
      """,
    subcommands: [Fetch.self, Path.self])

  struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Download (or resume) and verify the weights into the cache.")

    @Argument(help: "Which weights: vgg16.")
    var name = "vgg16"

    @Option(help: "Cache folder (default: $AEPSL_CACHE_DIR, $XDG_CACHE_HOME/aepsl or ~/.cache/aepsl).")
    var cacheDir: String?

    func run() throws {
      guard let source = PretrainedWeights.named(name) else { throw ValidationError("Unknown weights '\(name)'; known: vgg16.") }
      let dir = cacheDir.map { URL(fileURLWithPath: $0) } ?? PretrainedWeights.cacheDirectory
      let path = try source.cachedOrFetched(in: dir)
      print(path.path)
    }
  }

  struct Path: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print where the weights are (or would be) cached, and whether they are there.")

    @Argument(help: "Which weights: vgg16.")
    var name = "vgg16"

    func run() throws {
      guard let source = PretrainedWeights.named(name) else { throw ValidationError("Unknown weights '\(name)'; known: vgg16.") }
      let path = PretrainedWeights.cacheDirectory.appendingPathComponent(source.fileName)
      let present = FileManager.default.fileExists(atPath: path.path)
      print("\(path.path) (\(present ? "present" : "missing: aepsl weights fetch \(name)"))")
    }
  }
}
