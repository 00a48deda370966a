/// The resolution both networks work at: every image is resized so that its longer side is
/// a given number of pixels before training crops are taken, CAMs computed or a segmenter
/// run, and outputs come back at the image's own size.
///
/// The default is the training crop size: image-level tags describe the whole image, so a
/// crop must show the whole image for the tags to be true of it. A 128-pixel crop of a
/// 256-pixel image shows a quarter of it and often none of a tagged object (RESULTS.md,
/// "the 256-px collapse"). `own` keeps each image's size (DeepLab's setting on VOC).
///
/// In a config file: "crop", "own", or a number of pixels.
public enum WorkingResolution: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
  /// The longer side becomes the training crop size.
  case crop
  /// Each image at its own size.
  case own
  /// The longer side becomes this many pixels.
  case side(Int)

  /// The longer side in pixels for a stage whose training crops are `crop` (nil: own size).
  public func longerSide(crop: Int) -> Int? {
    switch self {
    case .crop: return crop
    case .own: return nil
    case .side(let pixels): return pixels
    }
  }

  /// "crop", "own" or a whole number of at least 16 pixels; nil otherwise.
  public init?(text: String) {
    switch text {
    case "crop": self = .crop
    case "own": self = .own
    default:
      guard let pixels = Int(text), pixels >= 16 else { return nil }
      self = .side(pixels)
    }
  }

  public var description: String {
    switch self {
    case .crop: return "crop"
    case .own: return "own"
    case .side(let pixels): return "\(pixels)"
    }
  }

  public init(from decoder: Decoder) throws {
    let container = try decoder.singleValueContainer()
    if let pixels = try? container.decode(Int.self) {
      guard pixels >= 16 else {
        throw DecodingError.dataCorruptedError(in: container, debugDescription: "an image side must be at least 16 pixels, got \(pixels)")
      }
      self = .side(pixels)
      return
    }
    let text = try container.decode(String.self)
    guard let value = WorkingResolution(text: text) else {
      throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected \"crop\", \"own\" or a number of pixels, got \"\(text)\"")
    }
    self = value
  }

  public func encode(to encoder: Encoder) throws {
    var container = encoder.singleValueContainer()
    if case .side(let pixels) = self { try container.encode(pixels) } else { try container.encode(description) }
  }
}
