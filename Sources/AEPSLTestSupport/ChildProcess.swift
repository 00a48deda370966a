import Foundation

/// Runs `executable` with `arguments` to its end: exit status, standard output and standard
/// error, each on its own.
public func runCapturing(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
  let process = Process()
  process.executableURL = executable
  process.arguments = arguments
  let out = Pipe(), err = Pipe()
  process.standardOutput = out
  process.standardError = err
  try process.run()
  // Both pipes are drained at once: a child that fills one while we block on the other
  // would never finish.
  nonisolated(unsafe) var stderrData = Data()
  let group = DispatchGroup()
  DispatchQueue.global().async(group: group) { stderrData = err.fileHandleForReading.readDataToEndOfFile() }
  let stdout = out.fileHandleForReading.readDataToEndOfFile()
  group.wait()
  process.waitUntilExit()
  return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderrData, as: UTF8.self))
}

/// Runs `executable` with `arguments` to its end: exit status and its standard output and
/// error interleaved as a terminal would show them.
public func runMerged(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, output: String) {
  let process = Process()
  process.executableURL = executable
  process.arguments = arguments
  return try runMerged(process)
}

/// Starts `process` (configured, not yet started) and runs it to its end: exit status and its
/// standard output and error interleaved.
public func runMerged(_ process: Process) throws -> (status: Int32, output: String) {
  let pipe = Pipe()
  process.standardOutput = pipe
  process.standardError = pipe
  try process.run()
  // Read before waiting: a full pipe would otherwise block the child forever.
  let data = pipe.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
