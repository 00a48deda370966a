import AEPSLFiles
import Foundation

extension SyntheticDataset {
  /// What `prepare(directory:overwrite:)` found.
  public enum Preparation: Sendable, Equatable {
    /// The directory already holds exactly this dataset (its synth.json matches): nothing to write.
    case alreadyWritten
    /// The directory is new or empty, or held another synthetic dataset that was removed.
    case ready
  }

  /// Checks `directory` before this dataset is written into it, so that nothing else is
  /// overwritten: a directory holding this very dataset needs nothing; one holding a
  /// synthetic dataset made with other settings is cleared only with `overwrite`; any other
  /// non-empty directory is refused.
  public func prepare(directory: URL, overwrite: Bool) throws -> Preparation {
    let fm = FileManager.default
    if let existing = try? Data(contentsOf: directory.appendingPathComponent("synth.json")) {
      if existing == manifest() { return .alreadyWritten }
      guard overwrite else {
        throw AEPSLError(file: directory.path, problem: "holds a synthetic dataset made with other settings",
                         fix: "Pass --overwrite to replace it.")
      }
      for sub in ["JPEGImages", "Annotations", "SegmentationClass", "ImageSets", "classes.txt", "synth.json"] {
        try? fm.removeItem(at: directory.appendingPathComponent(sub))
      }
    } else if let contents = try? fm.contentsOfDirectory(atPath: directory.path), !contents.isEmpty {
      throw AEPSLError(file: directory.path, problem: "is not empty and is not a synthetic dataset",
                       fix: "Choose an empty or new directory.")
    }
    return .ready
  }
}
