import AEPSLEngine
import Foundation

/// A seeded mutation fuzzer: takes seed files written by the project's own writers and
/// mutates them (bit flips, interesting bytes, cuts, duplicated and deleted ranges, numbers
/// in text replaced by extreme ones, splices of two seeds). Deterministic for a seed, so a
/// crash reproduces with the same AEPSL_FUZZ_SEED and iteration count.
struct Mutator {
  var rng: SeededGenerator
  let seeds: [[UInt8]]

  init(seed: UInt64, purpose: String, seeds: [Data]) {
    rng = SeededGenerator(seed: seed).split("fuzz \(purpose)")
    self.seeds = seeds.map { [UInt8]($0) }
  }

  mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(rng.next() % UInt64(n)) }

  static let interestingBytes: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x0A, 0x22, 0x27, 0x3C, 0x3E, 0x26, 0x2F, 0x2E, 0x5C]
  static let interestingText = ["-1", "0", "4294967296", "9223372036854775807", "99999999999999999999", "1e308", "-0",
                                "2.5", "NaN", "\"", "'", "<!ENTITY x \"y\">", "&x;", "&#0;", "&#x110000;", "]]>", "<![CDATA[",
                                "..", "/", "\u{0}", "\u{FFFD}", "(", ")", "{", "}", "[", "]", ",", ":", "True", "<f8", "|u1"]

  /// The next input: a seed with 1 to 4 mutations.
  mutating func next() -> Data {
    var bytes = seeds[below(seeds.count)]
    for _ in 0..<(1 + below(4)) { mutate(&bytes) }
    return Data(bytes)
  }

  mutating func mutate(_ b: inout [UInt8]) {
    if b.isEmpty { b = [UInt8(truncatingIfNeeded: rng.next())]; return }
    switch below(10) {
    case 0:  // flip a bit
      let i = below(b.count); b[i] ^= UInt8(1 << below(8))
    case 1:  // an interesting byte
      b[below(b.count)] = Self.interestingBytes[below(Self.interestingBytes.count)]
    case 2:  // a random byte
      b[below(b.count)] = UInt8(truncatingIfNeeded: rng.next())
    case 3:  // cut the end
      b.removeLast(below(b.count) + 1)
    case 4:  // delete a range
      let i = below(b.count); b.removeSubrange(i..<min(b.count, i + 1 + below(16)))
    case 5:  // duplicate a range
      let i = below(b.count); let chunk = b[i..<min(b.count, i + 1 + below(64))]
      b.insert(contentsOf: chunk, at: below(b.count + 1))
    case 6:  // overwrite a little-endian or big-endian integer with an extreme value
      let i = below(max(b.count - 3, 1))
      let values: [UInt32] = [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF, 65_500, 100_000]
      let v = values[below(values.count)]
      for k in 0..<min(4, b.count - i) { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(below(2) == 0 ? k : 3 - k))) }
    case 7:  // replace a number in text by an extreme one
      let digits = b.indices.filter { b[$0] >= 0x30 && b[$0] <= 0x39 }
      if digits.isEmpty { b[below(b.count)] ^= 0xFF; return }
      var start = digits[below(digits.count)], end = start
      while start > 0, b[start - 1] >= 0x30 && b[start - 1] <= 0x39 { start -= 1 }
      while end < b.count, b[end] >= 0x30 && b[end] <= 0x39 { end += 1 }
      b.replaceSubrange(start..<end, with: Array(Self.interestingText[below(4) + below(5)].utf8))
    case 8:  // insert interesting text
      b.insert(contentsOf: Array(Self.interestingText[below(Self.interestingText.count)].utf8), at: below(b.count + 1))
    default:  // splice with another seed
      let other = seeds[below(seeds.count)]
      let cut = below(b.count)
      b = Array(b[..<cut]) + Array(other[min(cut, other.count)...])
    }
  }
}

/// How long each fuzz target runs: AEPSL_FUZZ_ITERATIONS inputs (default per target), or
/// AEPSL_FUZZ_SECONDS seconds per target when set; AEPSL_FUZZ_SEED picks the mutations.
enum FuzzBudget {
  static let environment = ProcessInfo.processInfo.environment
  static let seed = environment["AEPSL_FUZZ_SEED"].flatMap(UInt64.init) ?? 7
  static let seconds = environment["AEPSL_FUZZ_SECONDS"].flatMap(Double.init)
  static func iterations(default value: Int) -> Int {
    environment["AEPSL_FUZZ_ITERATIONS"].flatMap(Int.init) ?? (seconds != nil ? Int.max : value)
  }
  /// The log every target appends its count to: AEPSL_FUZZ_LOG or <tmp>/aepsl-fuzz.log.
  static let log = URL(fileURLWithPath: environment["AEPSL_FUZZ_LOG"]
    ?? FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-fuzz.log").path)
  /// Before each input runs, it is written here, so that a crash leaves the culprit behind.
  static func currentInputFile(_ target: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("aepsl-fuzz-current-\(target).bin")
  }
}

/// What one fuzz target did.
struct FuzzReport: CustomStringConvertible {
  var target: String
  var tried = 0
  var accepted = 0
  var rejected = 0
  /// Errors of a type the reader does not document: each is a finding.
  var unexpected: [String] = []
  var seconds = 0.0
  var description: String {
    String(format: "fuzz %@: %d inputs tried (%d accepted, %d rejected with a clear error, %d unexpected) in %.1f s, seed %llu",
           target, tried, accepted, rejected, unexpected.count, seconds, FuzzBudget.seed)
  }
}

/// Runs `read` on mutated inputs; `expected` tells whether an error is one of the reader's own.
func fuzz(_ target: String, seeds: [Data], defaultIterations: Int, expected: (Error) -> Bool,
          read: (Data) throws -> Void) -> FuzzReport {
  var mutator = Mutator(seed: FuzzBudget.seed, purpose: target, seeds: seeds)
  var report = FuzzReport(target: target)
  let iterations = FuzzBudget.iterations(default: defaultIterations)
  let start = Date()
  let current = FuzzBudget.currentInputFile(target)
  // The seeds themselves first: they must read.
  var inputs = seeds.makeIterator()
  while report.tried < iterations {
    if let limit = FuzzBudget.seconds, Date().timeIntervalSince(start) > limit { break }
    let input = inputs.next() ?? mutator.next()
    try? input.write(to: current)
    report.tried += 1
    do {
      try read(input)
      report.accepted += 1
    } catch {
      if expected(error) { report.rejected += 1 } else if report.unexpected.count < 10 { report.unexpected.append("\(type(of: error)): \(error)") }
    }
  }
  try? FileManager.default.removeItem(at: current)
  report.seconds = Date().timeIntervalSince(start)
  print(report)
  let line = Data((ISO8601DateFormatter().string(from: Date()) + " " + report.description + "\n").utf8)
  logLock.lock()
  defer { logLock.unlock() }
  if let handle = try? FileHandle(forWritingTo: FuzzBudget.log) {
    _ = try? handle.seekToEnd()
    handle.write(line)
    try? handle.close()
  } else {
    try? line.write(to: FuzzBudget.log)
  }
  return report
}

/// Targets run in parallel: one writer at a time appends to the log.
private let logLock = NSLock()
