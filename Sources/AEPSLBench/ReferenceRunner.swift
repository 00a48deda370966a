import AEPSLFiles
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The reference implementations' side of the comparison benchmarks: one Python script,
/// scripts/bench_reference.py, with a subcommand per benchmark (engine: PyTorch; crf:
/// pydensecrf). The script finds or makes an interpreter with what its subcommand imports
/// (virtual environments at the repository root), so this side only finds the script, runs
/// it with python3 and reads the JSON object it prints last.
public struct ReferenceRunner {
  public static let script = "scripts/bench_reference.py"

  /// The script's full path.
  public let scriptURL: URL

  /// Finds the script from the working directory up, then from the executable's directory up.
  public init() throws {
    guard let root = repositoryRoot(containing: Self.script) else {
      throw AEPSLError(kind: .missingFile, file: Self.script, problem: "not found from the working directory or the executable",
                       fix: "Run from the repository.")
    }
    scriptURL = root.appendingPathComponent(Self.script)
  }

  /// Runs `python3 script subcommand arguments...`; its progress goes to our stderr. Returns
  /// the JSON object it prints last on stdout.
  public func run(_ subcommand: String, arguments: [String]) throws -> [String: Any] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", scriptURL.path, subcommand] + arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    fflush(nil)  // our lines first, then the script's
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
      throw AEPSLError(kind: .environment, file: scriptURL.path, problem: "\(subcommand) failed (status \(p.terminationStatus))",
                       fix: "See its messages above.")
    }
    let text = String(decoding: data, as: UTF8.self)
    guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
          let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    else {
      throw AEPSLError(file: scriptURL.path, problem: "\(subcommand) printed no JSON object",
                       fix: "Run it by hand to see what it printed.")
    }
    return object
  }
}

/// The repository holding `path` (relative to the repository root): the first directory
/// containing it, from the working directory up, then from the executable's directory up.
func repositoryRoot(containing path: String) -> URL? {
  let fm = FileManager.default
  var starts = [URL(fileURLWithPath: fm.currentDirectoryPath)]
  if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
    starts.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
  }
  for start in starts {
    var dir = start.standardizedFileURL
    while true {
      if fm.fileExists(atPath: dir.appendingPathComponent(path).path) { return dir }
      let parent = dir.deletingLastPathComponent()
      if parent.path == dir.path { break }
      dir = parent
    }
  }
  return nil
}
