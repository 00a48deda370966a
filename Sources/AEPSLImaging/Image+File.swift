import AEPSLFiles
import Foundation

extension Image {
  /// Reads a JPEG or PNG file, recognised by its first bytes rather than its name.
  public init(contentsOf url: URL, colorMode: ColorMode = .asStored) throws {
    let data = try readFile(url)
    do {
      try self.init(decoding: data, as: ImageFormat.detect(data), colorMode: colorMode)
    } catch let error as AEPSLError {
      throw error.attributed(to: url)
    }
  }

  /// Writes atomically as JPEG or PNG, chosen by the file extension.
  public func write(to url: URL, jpegQuality: Int = 95) throws {
    guard let format = ImageFormat(pathExtension: url.pathExtension) else {
      throw AEPSLError(kind: .badArgument, file: url.path,
                         problem: "cannot tell the image format from the extension",
                         fix: "Name the file .jpg, .jpeg or .png")
    }
    do {
      let data = format == .jpeg ? try jpegData(quality: jpegQuality) : try pngData()
      try writeFileAtomically(data, to: url)
    } catch let error as AEPSLError {
      throw error.attributed(to: url)
    }
  }
}

extension LabelMap {
  /// Reads a palette or gray index PNG mask (see `init(pngData:)`).
  public init(contentsOf url: URL) throws {
    let data = try readFile(url)
    do {
      guard try ImageFormat.detect(data) == .png else {
        throw AEPSLError(kind: .unsupported, problem: "a label mask must be a PNG, not a JPEG",
                           fix: "JPEG compression changes class indices; save masks as palette PNGs")
      }
      try self.init(pngData: data)
    } catch let error as AEPSLError {
      throw error.attributed(to: url)
    }
  }

  /// Writes atomically as a palette PNG.
  public func write(to url: URL, palette: Palette = .voc) throws {
    do {
      try writeFileAtomically(pngData(palette: palette), to: url)
    } catch let error as AEPSLError {
      throw error.attributed(to: url)
    }
  }
}
