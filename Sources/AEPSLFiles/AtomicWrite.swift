import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `data` to `url` so that readers see either the old file or the whole new one.
///
/// The bytes go to a temporary file in the same directory (rename is only atomic within a
/// file system), are flushed with fsync, and the file is renamed over `url`; the directory
/// is then synced so the rename itself survives a crash. A killed run therefore never
/// leaves a truncated checkpoint that a resumed run would trust.
public func writeFileAtomically(_ data: Data, to url: URL) throws {
  let path = url.path
  let directory = url.deletingLastPathComponent().path
  func failure(_ what: String, _ code: Int32) -> AEPSLError {
    let reason = String(cString: strerror(code))
    let fix: String
    switch code {
    case ENOENT: fix = "Create the directory \(directory) first."
    case EACCES, EPERM, EROFS: fix = "Make \(directory) writable or choose another output directory."
    case ENOSPC, EDQUOT: fix = "Free disk space and run the stage again."
    default: fix = "Check the path and the file system, then run the stage again."
    }
    return AEPSLError(kind: .fileSystem, file: path, problem: "\(what) failed: \(reason)", fix: fix)
  }

  // open(O_EXCL) with 0666 rather than mkstemp, so the umask decides the permissions as it
  // would for a plain write (mkstemp always creates 0600).
  var temporary = ""
  var fd: Int32 = -1
  for _ in 0..<16 {
    temporary = "\(directory)/.\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
    fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
    if fd >= 0 || errno != EEXIST { break }
  }
  guard fd >= 0 else { throw failure("creating a temporary file in \(directory)", errno) }

  var renamed = false
  defer { if !renamed { unlink(temporary) } }

  let writeError: AEPSLError? = data.withUnsafeBytes { raw -> AEPSLError? in
    guard let base = raw.baseAddress else { return nil }
    var offset = 0
    // write(2) may write less than asked (and at most about 2 GB per call): loop.
    while offset < raw.count {
      let n = write(fd, base + offset, raw.count - offset)
      if n < 0 {
        if errno == EINTR { continue }
        return failure("writing", errno)
      }
      offset += n
    }
    return nil
  }
  if let writeError {
    close(fd)
    throw writeError
  }
  if fsync(fd) != 0 {
    let code = errno
    close(fd)
    throw failure("fsync", code)
  }
  if close(fd) != 0 { throw failure("closing", errno) }
  if rename(temporary, path) != 0 { throw failure("renaming \(temporary) to it", errno) }
  renamed = true

  // Best effort: some file systems refuse fsync on a directory, and the data is safe anyway.
  let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
  if directoryFD >= 0 {
    _ = fsync(directoryFD)
    close(directoryFD)
  }
}

/// Deletes the temporary files `writeFileAtomically` leaves behind when its process is
/// killed between creating and renaming one (".<name>.<pid>.<random>.tmp"), anywhere under
/// `directory`. Only files whose process no longer runs here and that were last written
/// `minimumAge` seconds ago or earlier are removed, so a stage running beside this one
/// (another shard or rank, on this machine or on another one sharing the file system) keeps
/// the file it is writing. Returns how many were removed. Nothing ever reads these files:
/// this only reclaims their space.
@discardableResult
public func removeStaleTemporaries(under directory: URL, minimumAge: TimeInterval = 600) -> Int {
  guard let walker = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.contentModificationDateKey])
  else { return 0 }
  var removed = 0
  for case let url as URL in walker {
    let name = url.lastPathComponent
    guard name.hasPrefix("."), name.hasSuffix(".tmp") else { continue }
    let parts = name.dropLast(4).split(separator: ".")
    // parts: name's own dot-separated pieces..., pid, random
    guard parts.count >= 3, let pid = Int32(parts[parts.count - 2]), UInt32(parts[parts.count - 1]) != nil else { continue }
    guard pid != getpid(), kill(pid, 0) != 0, errno == ESRCH,
          let written = try? url.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate,
          Date().timeIntervalSince(written) >= minimumAge else { continue }
    if unlink(url.path) == 0 { removed += 1 }
  }
  return removed
}
