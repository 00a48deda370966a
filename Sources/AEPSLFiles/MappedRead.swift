import Foundation

/// The bytes of `url`, memory-mapped so that a large file (a 500 MB checkpoint) is not read
/// into memory twice; a failure names the file.
public func readFileMapped(_ url: URL) throws -> Data {
  do {
    return try Data(contentsOf: url, options: .alwaysMapped)
  } catch {
    throw AEPSLError(file: url.path, problem: "cannot be read (\(error.localizedDescription))",
                     fix: "Check that the path is right and the file is readable.")
  }
}
