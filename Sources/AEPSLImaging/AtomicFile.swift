import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `data` to `url` so that readers see either the old file or the complete new one.
///
/// The bytes go to a temporary file in the same directory (rename is atomic only within a
/// file system), are fsynced, and the file is renamed over `url`. A run killed mid-write
/// therefore never leaves a truncated mask that a resumed stage would take as done.
public func writeAtomically(_ data: Data, to url: URL) throws {
  let path = url.path
  let directory = url.deletingLastPathComponent().path
  func failure(_ action: String, _ code: Int32) -> ImagingError {
    let fix: String
    switch code {
    case ENOENT: fix = "Create the directory \(directory) first"
    case EACCES, EPERM, EROFS: fix = "Make \(directory) writable or choose another output directory"
    case ENOSPC, EDQUOT: fix = "Free disk space and run the stage again"
    default: fix = "Check the path and the file system"
    }
    return ImagingError(kind: .fileSystem, file: path,
                        problem: "\(action) failed: \(String(cString: strerror(code)))", fix: fix)
  }

  // O_EXCL with mode 0666 rather than mkstemp, so the umask sets the permissions as for a
  // plain write (mkstemp creates 0600).
  var temporary = ""
  var fd: Int32 = -1
  for _ in 0..<16 {
    let tag = "\(getpid()).\(UInt32.random(in: .min ... .max))"
    temporary = "\(directory)/.\(url.lastPathComponent).\(tag).tmp"
    fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
    if fd >= 0 || errno != EEXIST { break }
  }
  guard fd >= 0 else { throw failure("creating a temporary file in \(directory)", errno) }
  var renamed = false
  defer { if !renamed { unlink(temporary) } }

  let writeErrno: Int32 = data.withUnsafeBytes { raw in
    guard let base = raw.baseAddress else { return 0 }
    var offset = 0
    while offset < raw.count {  // write(2) may write less than asked
      let written = write(fd, base + offset, raw.count - offset)
      if written < 0 {
        if errno == EINTR { continue }
        return errno
      }
      offset += written
    }
    return 0
  }
  if writeErrno != 0 {
    close(fd)
    throw failure("writing", writeErrno)
  }
  if fsync(fd) != 0 {
    let code = errno
    close(fd)
    throw failure("fsync", code)
  }
  if close(fd) != 0 { throw failure("closing", errno) }
  if rename(temporary, path) != 0 { throw failure("renaming the temporary file over it", errno) }
  renamed = true
}
