import AEPSLData
import AEPSLTestSupport
import Foundation
import Testing

/// Issue 18, long runs stay flat: the short form of scripts/soak.sh (which runs thousands of
/// steps; BENCHMARKS.md has its curves). One process trains for a few hundred steps while
/// this test samples its resident memory and open descriptors; after warm-up neither grows.
@Suite("Long runs stay flat")
struct SoakTests {
  struct Sample {
    var seconds: Double
    var residentKiB: Int
    var descriptors: Int
  }

  /// VmRSS (KiB) and the number of open descriptors of `pid`; nil once it is gone.
  static func sample(_ pid: pid_t) -> (Int, Int)? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kib = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }),
          let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { return nil }
    return (kib, fds.count)
  }

  @Test(.enabled(if: builtAEPSLBinary != nil, "the aepsl binary is not beside the test bundle"))
  func trainingForHundredsOfStepsKeepsMemoryAndDescriptorsFlat() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-soak-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    try SyntheticDataset(configuration: .init(seed: 18, trainCount: 16, valCount: 2, size: 40)).write(to: dir, threads: 1)
    let p = Process()
    p.executableURL = try #require(builtAEPSLBinary)
    // 16 images in batches of 4 for 100 epochs: 400 steps, a training state saved each epoch.
    p.arguments = ["erase", "--dataset", dir.path, "--run", dir.appendingPathComponent("run").path, "--max-steps", "1",
                   "--epochs", "100", "--batch-size", "4", "--crop-size", "32", "--threads", "1", "--quiet"]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    let start = Date()
    try p.run()
    var samples: [Sample] = []
    while p.isRunning {
      if let (kib, fds) = Self.sample(p.processIdentifier) {
        samples.append(Sample(seconds: Date().timeIntervalSince(start), residentKiB: kib, descriptors: fds))
      }
      usleep(50_000)
    }
    p.waitUntilExit()
    #expect(p.terminationStatus == 0)
    try #require(samples.count >= 20, "only \(samples.count) samples: the run was too short to tell")
    // Warm-up: the first 30% (caches, oneDNN primitives, the loader's buffers).
    let after = Array(samples.dropFirst(samples.count * 3 / 10))
    let quarter = max(1, after.count / 4)
    let mean = { (s: ArraySlice<Sample>) in Double(s.map(\.residentKiB).reduce(0, +)) / Double(s.count) / 1024 }
    let (first, last) = (mean(after.prefix(quarter)), mean(after.suffix(quarter)))
    let fds = (after.prefix(quarter).map(\.descriptors).max()!, after.suffix(quarter).map(\.descriptors).max()!)
    print(String(format: "soak: %d samples over %.1f s; resident %.1f -> %.1f MiB after warm-up; descriptors %d -> %d",
                 samples.count, samples.last!.seconds, first, last, fds.0, fds.1))
    #expect(last - first < 4, "resident memory grew from \(first) to \(last) MiB after warm-up")
    #expect(fds.1 <= fds.0 + 2, "open descriptors grew from \(fds.0) to \(fds.1)")
  }
}
