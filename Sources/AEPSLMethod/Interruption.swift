import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C (SIGINT) and SIGTERM stop a stage cleanly: the signal only sets a flag; training
/// loops look at it between iterations, save a resumable state and throw
/// `InterruptedError`; per-image loops (CAMs, masks) stop between images, whose files are
/// each whole. A second signal ends the process at once (still safe: every artefact is
/// written to a temporary file and renamed, so a kill leaves nothing half-written).
public enum Interruption {
  fileprivate static let received = Atomic<Int32>(0)

  /// Installs the SIGINT and SIGTERM handlers (idempotent). Call it from a command, not from
  /// a library: a library must not take over a host's signals.
  public static func install() {
    _ = received.load(ordering: .relaxed)  // initialise before a handler can touch it
    signal(SIGINT, interruptionHandler)
    signal(SIGTERM, interruptionHandler)
    // A parent may have started us with the signals blocked (posix_spawn keeps its mask).
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
  }

  /// The signal that asked to stop, or nil.
  public static var requested: Int32? {
    let s = received.load(ordering: .relaxed)
    return s == 0 ? nil : s
  }

  /// Asks running loops to stop as if `signal` had arrived (for tests and embedders).
  public static func request(_ signal: Int32 = SIGINT) { received.store(signal, ordering: .relaxed) }

  /// Clears a request (for tests and embedders that carry on after an interruption).
  public static func reset() { received.store(0, ordering: .relaxed) }

  /// Throws `InterruptedError` when a stop was asked for; `detail` says what was kept.
  public static func check(stage: String, detail: @autoclosure () -> String) throws {
    if let signal = requested { throw InterruptedError(signal: signal, stage: stage, detail: detail()) }
  }
}

private let interruptionMessage: StaticString =
  "\naepsl: stopping at the next safe point and saving the state (signal again to quit at once)\n"

private func interruptionHandler(_ signal: Int32) {
  // Only async-signal-safe calls here: an atomic exchange, write(2), _exit(2).
  if Interruption.received.exchange(signal, ordering: .relaxed) != 0 { _exit(128 + signal) }
  _ = write(2, interruptionMessage.utf8Start, interruptionMessage.utf8CodeUnitCount)
}

/// A stage stopped by SIGINT or SIGTERM after saving what it had. Exit status 128 + signal.
public struct InterruptedError: Error, CustomStringConvertible, Sendable {
  public let signal: Int32
  public let stage: String
  /// What was kept, e.g. where the training state is.
  public let detail: String

  public init(signal: Int32, stage: String, detail: String) {
    self.signal = signal; self.stage = stage; self.detail = detail
  }

  /// 130 for SIGINT, 143 for SIGTERM, as shells report them.
  public var exitCode: Int32 { 128 + signal }

  public var description: String {
    let name = signal == SIGINT ? "SIGINT (Ctrl-C)" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)"
    return "\(stage): interrupted by \(name); \(detail). Run the same command again to resume."
  }
}
