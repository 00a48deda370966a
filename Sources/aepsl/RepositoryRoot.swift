import Foundation

/// The repository holding `script` (a path relative to the repository root): the first
/// directory containing it, from the working directory up, then from the executable's
/// directory up. Benchmarks use it to find their Python helpers.
func repositoryRoot(containing script: String) -> URL? {
  let fm = FileManager.default
  var starts = [URL(fileURLWithPath: fm.currentDirectoryPath)]
  if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
    starts.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
  }
  for start in starts {
    var dir = start.standardizedFileURL
    while true {
      if fm.fileExists(atPath: dir.appendingPathComponent(script).path) { return dir }
      let parent = dir.deletingLastPathComponent()
      if parent.path == dir.path { break }
      dir = parent
    }
  }
  return nil
}
