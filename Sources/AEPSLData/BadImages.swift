import AEPSLFiles
import AEPSLImaging
import Foundation

/// What a stage does with an image it cannot use (missing, truncated, corrupt, too small or
/// too large): stop with the error (`fail`, the default), or leave it out, count it and
/// list it in the stage's manifest (`skip`). `--on-bad-image` on the command line.
///
/// The default is `fail`: a training set that quietly shrinks changes results without
/// anyone noticing, and a run should be reproducible from its inputs. The error names the
/// file and suggests `--on-bad-image skip` for datasets known to hold a few broken files.
public enum BadImagePolicy: String, Sendable, Codable, CaseIterable {
  case fail
  case skip
}

/// An image a stage left out under `BadImagePolicy.skip`, and why.
public struct SkippedImage: Sendable, Codable, Equatable, CustomStringConvertible {
  public var id: String
  public var file: String
  public var reason: String

  public init(id: String, file: String, reason: String) {
    self.id = id; self.file = file; self.reason = reason
  }

  public var description: String { "\(id) (\(file)): \(reason)" }
}

/// Sizes a dataset image must have. Checked from the header, before any pixel memory is
/// allocated, so a file claiming 100000 x 100000 pixels costs nothing.
public enum ImageLimits {
  /// The smallest side: the networks' output stride. A smaller image gives less than one
  /// cell of the last feature map, so neither a CAM nor a segmentation means anything.
  public static let minimumSide = 8
  /// The most pixels: 64 Mi (8192 x 8192). An RGB float tensor of that size is 768 MiB;
  /// VOC images are at most 500 x 500.
  public static let maximumPixels = 64 << 20

  /// Throws a `AEPSLError` naming `file` when `width` x `height` is out of bounds.
  public static func check(width: Int, height: Int, file: String) throws {
    if width < minimumSide || height < minimumSide {
      throw AEPSLError(kind: .invalidData, file: file,
                         problem: "the image is \(width)x\(height) pixels, smaller than the \(minimumSide)-pixel minimum side",
                         fix: "Remove it from the list, or pass --on-bad-image skip to leave such images out")
    }
    if width.multipliedReportingOverflow(by: height).overflow || width * height > maximumPixels {
      throw AEPSLError(kind: .invalidData, file: file,
                         problem: "the image is \(width)x\(height) pixels, more than the limit of \(maximumPixels) pixels (8192 x 8192)",
                         fix: "Downscale it (VOC images are at most 500x500), or pass --on-bad-image skip to leave it out")
    }
  }
}
