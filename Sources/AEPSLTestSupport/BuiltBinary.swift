import Foundation

/// The `aepsl` executable that `swift test` builds beside the test bundle, for tests that
/// run it as a child process (kill and resume, mpirun); nil when it is not there.
public var builtAEPSLBinary: URL? {
  let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
  var dir = exe.deletingLastPathComponent()
  for _ in 0..<4 {
    let candidate = dir.appendingPathComponent("aepsl")
    if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    dir = dir.deletingLastPathComponent()
  }
  return nil
}
