import Foundation

/// ProgressReporter of a long loop on standard error: count, rate and time left, at most a few times
/// a second; `quiet` silences it; `jsonLog` receives one JSON object per report for machines.
public final class ProgressReporter: @unchecked Sendable {
  public struct Options: Sendable {
    public var quiet: Bool
    public var jsonLog: URL?
    public init(quiet: Bool = false, jsonLog: URL? = nil) {
      self.quiet = quiet
      self.jsonLog = jsonLog
    }
  }

  private let label: String
  private let total: Int
  private let unit: String
  private let options: Options
  private let start = Date()
  private var lastReport = Date.distantPast
  private var done = 0
  /// Items finished before this reporter started (a resumed epoch): counted as done, but
  /// not in the rate, which is of the work since the start.
  private let resumedAt: Int
  private let lock = NSLock()
  private let interactive = isatty(2) != 0

  public init(_ label: String, total: Int, unit: String = "items", options: Options = .init(), resumedAt: Int = 0) {
    self.label = label
    self.total = total
    self.unit = unit
    self.options = options
    self.resumedAt = resumedAt
    self.done = resumedAt
  }

  /// Records `count` more finished items, with an optional note (e.g. the current loss).
  public func advance(by count: Int = 1, note: String = "") {
    lock.lock()
    defer { lock.unlock() }
    done += count
    let now = Date()
    guard done >= total || now.timeIntervalSince(lastReport) >= (interactive ? 0.25 : 5) else { return }
    lastReport = now
    report(now: now, note: note)
  }

  /// Prints the final line.
  public func finish(note: String = "") {
    lock.lock()
    defer { lock.unlock() }
    report(now: Date(), note: note, final: true)
  }

  public var elapsed: TimeInterval { Date().timeIntervalSince(start) }

  private func report(now: Date, note: String, final: Bool = false) {
    let elapsed = max(now.timeIntervalSince(start), 1e-9)
    let rate = Double(done - resumedAt) / elapsed
    let left = rate > 0 ? Double(max(total - done, 0)) / rate : 0
    if !options.quiet {
      var line = "\(label)  \(done)/\(total) \(unit)  \(Self.format(rate: rate)) \(unit)/s"
      line += final ? "  took \(Self.clock(elapsed))" : "  \(Self.clock(left)) left"
      if !note.isEmpty { line += "  \(note)" }
      let text = interactive && !final ? "\r\u{1B}[2K" + line : line + "\n"
      FileHandle.standardError.write(Data((interactive && final ? "\r\u{1B}[2K" + text : text).utf8))
    }
    if let url = options.jsonLog {
      let record: [String: Any] = ["label": label, "done": done, "total": total, "unit": unit, "rate": rate,
                                   "elapsed": elapsed, "remaining": left, "note": note, "final": final]
      if let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) {
        appendLine(data, to: url)
      }
    }
  }

  private func appendLine(_ data: Data, to url: URL) {
    if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
    guard let h = try? FileHandle(forWritingTo: url) else { return }
    defer { try? h.close() }
    _ = try? h.seekToEnd()
    h.write(data + Data("\n".utf8))
  }

  static func format(rate: Double) -> String {
    rate >= 100 ? String(format: "%.0f", rate) : rate >= 1 ? String(format: "%.1f", rate) : String(format: "%.3f", rate)
  }

  /// h:mm:ss or m:ss.
  public static func clock(_ seconds: TimeInterval) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
  }
}
